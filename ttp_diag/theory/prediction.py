"""Predicting a reward model's Best-of-N curve from its diagnostics and one calibration.

:func:`predict_bon_curve` is the paper's recipe (Appendix C.1): calibrate ``mu`` and ``c sigma``
once from the oracle curve, measure (alpha, beta, rho_plus, rho_minus) of the reward model and
substitute them into Proposition 4.4 (or Eq. 30 with ``rho_collapsed``).
:func:`predict_bon_curve_per_query` resolves the same law per query (each query's rho_q sigma_q
instead of four population averages), which drops the variance-homogeneity assumption A.7.
:func:`n_to_close_gap` inverts a prediction: the smallest N that reaches a share of the oracle's
gain. All of them extrapolate past the pool size: the laws are functions of any N >= 1.

The diagnostics and calibration objects are read by attribute, so this module needs no pandas.
"""

from __future__ import annotations

import numpy as np

from ttp_diag.exceptions import ConfigError, ConfigTypeError

from .extremes import curve_shape
from .laws import total_correlation

_DIAG_FIELDS = ("alpha", "beta", "rho_plus", "rho_minus")


def _check_objects(diagnostics, calibration, where: str) -> None:
    """Name the argument when a Diagnostics and a Calibration are swapped or of the wrong type.

    Checked by attribute (duck typing), so any object carrying the fields is accepted.
    """
    def kind(obj) -> str:
        if all(hasattr(obj, k) for k in _DIAG_FIELDS):
            return "Diagnostics"
        if all(hasattr(obj, k) for k in ("mu", "c_sigma")):
            return "Calibration"
        return type(obj).__name__

    if (diagnostics is not None and kind(diagnostics) == "Calibration"
            and (calibration is None or kind(calibration) == "Diagnostics")):
        raise ConfigTypeError(
            f"{where}: the arguments look swapped: the second argument (diagnostics) is a "
            f"Calibration and the third (calibration) is a "
            f"{kind(calibration) if calibration is not None else 'None'}. Call "
            f"{where}(ns, diagnostics, calibration), e.g. {where}(ns, td.diagnose(table, score), "
            f"td.calibrate(ns, oracle_utility)).")
    if diagnostics is not None and kind(diagnostics) != "Diagnostics":
        raise ConfigTypeError(
            f"{where}: diagnostics (the second argument) must be a Diagnostics from "
            f"td.diagnose(table, score) with {list(_DIAG_FIELDS)}; got {kind(diagnostics)}.")
    if calibration is not None and kind(calibration) != "Calibration":
        raise ConfigTypeError(
            f"{where}: calibration (the third argument) must be a Calibration from "
            f"td.calibrate(ns, oracle_utility) with mu and c_sigma; got {kind(calibration)}.")


def _resolve(diagnostics, calibration, params: dict, refined: bool):
    _check_objects(diagnostics, calibration, "predict_bon_curve")
    vals = dict(params)
    if calibration is not None:
        for k in ("mu", "c_sigma", "shape"):
            if vals.get(k) is None:
                vals[k] = getattr(calibration, k)
    if diagnostics is not None:
        for k in _DIAG_FIELDS:
            if vals.get(k) is None:
                vals[k] = getattr(diagnostics, k)
        if vals.get("rho_collapsed") is None:
            vals["rho_collapsed"] = diagnostics.rho_collapsed if refined else 0.0
    if vals.get("shape") is None:
        vals["shape"] = "sqrt_log"
    if vals.get("rho_collapsed") is None:
        vals["rho_collapsed"] = 0.0
    missing = [k for k in ("mu", "c_sigma") + _DIAG_FIELDS if vals.get(k) is None]
    if missing:
        raise ConfigError(
            f"predict_bon_curve needs {missing}: pass a Diagnostics (alpha, beta, rho_plus, "
            f"rho_minus) and a Calibration (mu, c_sigma), or give the numbers as keywords."
        )
    return vals


def predict_bon_curve(ns, diagnostics=None, calibration=None, *, mu=None, c_sigma=None,
                      alpha=None, beta=None, rho_plus=None, rho_minus=None, rho_collapsed=None,
                      shape=None, refined: bool = False) -> np.ndarray:
    """Predicted Best-of-N utility from the unified scaling law.

    ``U(N) = mu + [(1 - alpha) ((1 - beta) rho_plus - beta |rho_minus|)
    + alpha rho_collapsed] c_sigma g(N)``

    Parameters
    ----------
    ns : array_like
        Candidate counts N >= 1 (may exceed the pool size: the law extrapolates).
    diagnostics : Diagnostics, optional
        Supplies alpha, beta, rho_plus, rho_minus (and rho_collapsed with ``refined=True``).
    calibration : Calibration, optional
        Supplies mu, c_sigma and shape.
    mu, c_sigma, alpha, beta, rho_plus, rho_minus, rho_collapsed, shape
        Explicit values; they override the objects. ``rho_collapsed`` defaults to 0
        (Proposition 4.4); ``shape`` to ``"sqrt_log"``.
    refined : bool, default False
        With a Diagnostics object, use its measured rho_collapsed (Eq. 30).

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> np.round(predict_bon_curve([1, 30], mu=0.1, c_sigma=0.05, alpha=0.2, beta=0.25,
    ...                            rho_plus=0.6, rho_minus=-0.2), 4)
    array([0.1   , 0.1295])
    """
    v = _resolve(diagnostics, calibration, dict(mu=mu, c_sigma=c_sigma, alpha=alpha, beta=beta,
                                                rho_plus=rho_plus, rho_minus=rho_minus,
                                                rho_collapsed=rho_collapsed, shape=shape),
                 refined)
    rho = total_correlation(v["alpha"], v["beta"], v["rho_plus"], v["rho_minus"],
                            v["rho_collapsed"])
    g = np.asarray(curve_shape(ns, v["shape"]), dtype=float)
    return float(v["mu"]) + rho * float(v["c_sigma"]) * g


def predict_bon_curve_per_query(ns, diagnostics, calibration) -> np.ndarray:
    """Query-resolved prediction: ``mean_u mean_q [mu_q + rho_q c sigma_q g(N)]``.

    ``c = c_sigma / sigma`` is the constant implied by the calibration and the diagnostics' mean
    within-query spread. Each query contributes its own correlation and spread, so queries with
    a large spread weigh more, as they do in the exact curve.

    Parameters
    ----------
    ns : array_like
        Candidate counts N >= 1.
    diagnostics : Diagnostics
        Needs ``per_query`` with ``user_id``, ``rho_q``, ``mu_q``, ``sigma_q`` and ``sigma``.
    calibration : Calibration
        Supplies c_sigma and shape.

    Returns
    -------
    numpy.ndarray
    """
    _check_objects(diagnostics, calibration, "predict_bon_curve_per_query")
    pq = diagnostics.per_query
    c = calibration.c_given_sigma(diagnostics.sigma)
    g = np.asarray(curve_shape(ns, calibration.shape), dtype=float)
    users = np.unique(np.asarray(pq["user_id"]), return_inverse=True)[1]
    n_users = users.max() + 1
    per_q_gain = np.asarray(pq["rho_q"], dtype=float) * np.asarray(pq["sigma_q"], dtype=float)
    q_per_user = np.bincount(users, minlength=n_users)
    gain_u = np.bincount(users, weights=per_q_gain, minlength=n_users) / q_per_user
    mu_u = np.bincount(users, weights=np.asarray(pq["mu_q"], dtype=float),
                       minlength=n_users) / q_per_user
    return float(mu_u.mean()) + c * float(gain_u.mean()) * g


def n_to_close_gap(share, diagnostics=None, calibration=None, n_ref: int = 30, *,
                   rho_total: float | None = None, shape: str | None = None,
                   n_max: int = 10**7):
    """Smallest N whose predicted gain over random reaches ``share`` of the oracle's gain at n_ref.

    Solves ``rho_total * g(N) >= share * g(n_ref)`` for the smallest whole N. A reward model with
    ``rho_total <= 0`` never closes any positive share; the answer is then ``inf``, as it is when
    N would exceed ``n_max``.

    Parameters
    ----------
    share : float or array_like
        Target share(s) of the oracle gap, in (0, 1].
    diagnostics : Diagnostics, optional
        Supplies ``rho_total`` (Eq. 30 correlation).
    calibration : Calibration, optional
        Supplies the shape (the scale cancels).
    n_ref : int, default 30
        The oracle reference budget.
    rho_total, shape : optional
        Explicit values overriding the objects.
    n_max : int
        Largest N searched.

    Returns
    -------
    float or numpy.ndarray
        Whole N as floats (``inf`` where unreachable).

    Examples
    --------
    >>> n_to_close_gap(0.5, rho_total=0.5, shape="sqrt_log", n_ref=30)
    30.0
    >>> n_to_close_gap(0.5, rho_total=-0.1, shape="sqrt_log")
    inf
    """
    _check_objects(diagnostics, calibration, "n_to_close_gap")
    if rho_total is None:
        if diagnostics is None:
            raise ConfigError("pass diagnostics or rho_total.")
        rho_total = diagnostics.rho_total
    if shape is None:
        shape = calibration.shape if calibration is not None else "sqrt_log"
    from .._checks import check_int, check_real

    rho_total = check_real(rho_total, "rho_total", low=-1, high=1, what="a correlation")
    n_ref = check_int(n_ref, "n_ref", what="a reference candidate count")
    n_max = check_int(n_max, "n_max", what="a largest candidate count")
    shares = np.atleast_1d(np.asarray(share, dtype=float))
    if shares.size == 0 or np.any(~np.isfinite(shares)) or np.any(shares <= 0) or np.any(
            shares > 1):
        raise ConfigError(
            f"share must be a fraction of the oracle gap in (0, 1], e.g. 0.5; got "
            f"{shares.tolist()}.")
    target = shares * float(curve_shape(n_ref, shape))
    out = np.full(shares.shape, np.inf)
    if rho_total > 0:
        need = target / rho_total
        # g is increasing in N: bisection on whole N for each target
        g_max = float(curve_shape(n_max, shape))
        for i, t in enumerate(need):
            if t > g_max:
                continue
            lo, hi = 1, n_max
            while lo < hi:
                mid = (lo + hi) // 2
                if float(curve_shape(mid, shape)) >= t * (1 - 1e-12):
                    hi = mid
                else:
                    lo = mid + 1
            out[i] = float(lo)
    return float(out[0]) if np.ndim(share) == 0 else out


def _hinge_of_max_scalar(n: float, knot: float) -> float:
    """E[(M_n - knot)_+] for M_n the maximum of n i.i.d. standard normals (quadrature)."""
    from scipy import integrate, special

    def integrand(x: float) -> float:
        dens = np.exp(np.log(n) + special.log_ndtr(x) * (n - 1.0) - 0.5 * x * x) / np.sqrt(
            2.0 * np.pi)
        return (x - knot) * dens

    hi = max(knot, np.sqrt(2.0 * np.log(max(n, 2.0)))) + 12.0
    val, _ = integrate.quad(integrand, knot, hi, epsabs=1e-13, epsrel=1e-11, limit=200)
    tail, _ = integrate.quad(integrand, hi, np.inf, epsabs=1e-13, limit=50)
    return float(val + tail)


def expected_hinge_of_max(ns, knots) -> np.ndarray:
    """Expected piecewise-linear basis at the maximum of N standard normals.

    Row ``i`` is ``[E M_N, E (M_N - k_1)_+, ..., E (M_N - k_K)_+]`` for ``N = ns[i]``, where
    ``M_N`` is the largest of N i.i.d. standard normal variables. With the concomitant curve
    ``E[r | z] = mu + b_0 z + sum_j b_j (z - k_j)_+`` of a selector's normal score ``z``, the
    Best-of-N utility of drawing N candidates from the same population is
    ``mu + b . (row(N) - row(1))`` (David & Nagaraja 2003, Sec. 6.8; Yang 1977): the law of
    Proposition 4.4 with the Gaussian shape is the case without knots, ``b_0 = rho sigma``.

    Parameters
    ----------
    ns : array_like
        Candidate counts N >= 1 (real N allowed).
    knots : sequence of float
        Knots ``k_j`` of the hinge terms (may be empty).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(ns), 1 + len(knots))``.

    Examples
    --------
    >>> np.round(expected_hinge_of_max([1, 10], [0.0]), 4)  # E(Z)_+ = 1/sqrt(2 pi) at N = 1
    array([[0.    , 0.3989],
           [1.5388, 1.5389]])
    """
    from .extremes import _as_ns, expected_max_normal

    arr = np.atleast_1d(_as_ns(ns)).astype(float)
    knots = [float(k) for k in knots]
    out = np.empty((arr.size, 1 + len(knots)))
    out[:, 0] = np.atleast_1d(expected_max_normal(arr))
    for j, k in enumerate(knots):
        out[:, j + 1] = [_hinge_of_max_scalar(float(n), k) for n in arr]
    return out
