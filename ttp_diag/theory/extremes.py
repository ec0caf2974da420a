"""Expected maxima of i.i.d. samples and the curve shapes g(N) of the scaling laws.

Every Best-of-N law in this package has the form ``U(N) = mu + k * g(N)`` where ``k`` is a
scale (``c * sigma`` times a correlation) and ``g`` is one of three shapes:

``"sqrt_log"``
    ``sqrt(ln N)``: the paper's shape (Theorem 3.1, Lemma 4.2), with the constant ``c`` absorbed
    into the scale. It is the large-N asymptote of the Gaussian maximum up to ``c = sqrt(2)``.
``"gaussian"``
    ``E[max of N i.i.d. N(0, 1)]``, exact (Harter 1961). Under joint normality of true and
    predicted reward the Best-of-N curve is *exactly* ``mu + rho * sigma * g(N)``, so the scale
    is ``sigma`` itself (``c = 1``).
``"kl"``
    ``sqrt(2 * (ln N - (N - 1) / N))``: the square root of twice the KL divergence between the
    Best-of-N distribution and the base policy, the usual KL-based upper bound shape.

All three are 0 at N = 1, so ``U(1) = mu`` (random selection) for every law.
"""

from __future__ import annotations

import numpy as np

from ttp_diag.exceptions import ConfigError

SHAPES = ("sqrt_log", "gaussian", "kl")
#: The one default curve shape (the paper's sqrt(ln N)) of every function, class and command
#: that takes one; outputs that depend on it name the shape they used.
DEFAULT_SHAPE = "sqrt_log"

_SQRT2 = np.sqrt(2.0)


def _as_ns(ns, name: str = "ns") -> np.ndarray:
    """Validate candidate counts: finite reals >= 1 (real N is allowed for smooth curves)."""
    arr = np.asarray(ns, dtype=float)
    if arr.size == 0:
        raise ConfigError(f"{name} is empty; pass at least one candidate count N >= 1.")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(
            f"{name} contains NaN or inf ({arr.ravel().tolist()}); pass finite N >= 1.")
    if np.any(arr < 1):
        bad = arr[arr < 1].ravel().tolist()
        raise ConfigError(f"{name} must be >= 1 (got {bad}); N is the number of candidates "
                          "sampled.")
    return arr


def _expected_max_scalar(n: float) -> float:
    """E[max of n i.i.d. N(0,1)] = integral x * n * phi(x) * Phi(x)^(n-1) dx, for real n >= 1."""
    if n == 1.0:
        return 0.0
    from scipy import integrate, special  # here: scipy.optimize/special are slow at start-up

    def integrand(x: float) -> float:
        # log form keeps Phi(x)^(n-1) accurate far in the left tail for large n
        return x * np.exp(np.log(n) + special.log_ndtr(x) * (n - 1.0) - 0.5 * x * x) / np.sqrt(
            2.0 * np.pi
        )

    # The density of the maximum is concentrated around sqrt(2 ln n); split the range there.
    centre = np.sqrt(2.0 * np.log(n))
    pieces = [(-np.inf, -8.0), (-8.0, centre), (centre, centre + 10.0), (centre + 10.0, np.inf)]
    total = 0.0
    for lo, hi in pieces:
        val, _ = integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
        total += val
    return float(total)


def expected_max_normal(ns) -> np.ndarray | float:
    """Exact expected maximum of N i.i.d. standard normal variables.

    Parameters
    ----------
    ns : int, float or array_like
        Candidate counts, N >= 1. Non-integer N is allowed (the integral is smooth in N), which is
        handy for drawing curves.

    Returns
    -------
    float or numpy.ndarray
        ``E[max(Z_1, ..., Z_N)]``, 0 at N = 1; same shape as ``ns``.

    Notes
    -----
    Computed by adaptive quadrature of ``x N phi(x) Phi(x)^(N-1)``; agrees with Harter's (1961)
    tables to better than 1e-6.

    Examples
    --------
    >>> round(float(expected_max_normal(2)), 5)  # 1/sqrt(pi)
    0.56419
    >>> np.round(expected_max_normal([1, 10, 100]), 5)
    array([0.     , 1.53875, 2.50759])
    """
    arr = _as_ns(ns)
    uniq, inverse = np.unique(arr.ravel(), return_inverse=True)
    vals = np.array([_expected_max_scalar(float(n)) for n in uniq])
    out = vals[inverse].reshape(arr.shape)
    return float(out) if out.ndim == 0 else out


def curve_shape(ns, shape: str = DEFAULT_SHAPE) -> np.ndarray | float:
    """The curve shape g(N) of a Best-of-N law ``U(N) = mu + scale * g(N)``.

    Parameters
    ----------
    ns : array_like
        Candidate counts, N >= 1.
    shape : {"sqrt_log", "gaussian", "kl"}
        ``"sqrt_log"``: sqrt(ln N) (the paper); ``"gaussian"``: exact E[max of N standard
        normals]; ``"kl"``: sqrt(2 (ln N - (N-1)/N)).

    Returns
    -------
    float or numpy.ndarray
        g(N), 0 at N = 1.

    Examples
    --------
    >>> np.round(curve_shape([1, 10], "sqrt_log"), 4)
    array([0.    , 1.5174])
    >>> np.round(curve_shape([1, 10], "kl"), 4)
    array([0.    , 1.6749])
    """
    arr = _as_ns(ns)
    if shape == "sqrt_log":
        out = np.sqrt(np.log(arr))
    elif shape == "gaussian":
        out = np.asarray(expected_max_normal(arr), dtype=float)
    elif shape == "kl":
        out = np.sqrt(np.maximum(2.0 * (np.log(arr) - (arr - 1.0) / arr), 0.0))
    else:
        raise ConfigError(f"unknown curve shape {shape!r}; use one of {SHAPES}.")
    return float(out) if np.ndim(out) == 0 else out
