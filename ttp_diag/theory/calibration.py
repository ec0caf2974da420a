"""Calibrating the scale of the scaling laws once, from an oracle curve.

The paper fits ``mu`` and the scale ``c * sigma`` of ``U_oracle(N) = mu + c sigma g(N)`` to the
oracle Best-of-N curve of a task and reuses them for every reward model. :func:`calibrate` does the
same by ordinary least squares on the design ``[1, g(N)]`` and reports R^2 and t-based confidence
intervals of both parameters.

One default, shared by the API and the command line: when the score table is given
(``calibrate(ns, table=table)``), ``mu`` is fixed at the table's exact random-selection utility
(every shape has g(1) = 0, so predictions start at random for N = 1) and only the scale is
fitted, as in the paper's Appendix C.1. Fitting mu as well spends a parameter on a number that is
known exactly and, with the sqrt(ln N) shape, bends the fit (issue 8: it fails a 2% relMAE test
on simulations where the fixed-mu fit passes). ``calibrate(ns, oracle_utility)`` without a table
keeps fitting mu unless ``mu=`` is given.

The fit is done on values divided by their largest magnitude, so utilities near 1e308 do not
overflow to NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttp_diag.exceptions import ConfigError

from .._summary import Result
from .extremes import DEFAULT_SHAPE, SHAPES, curve_shape


@dataclass(frozen=True)
class Calibration(Result):
    """Result of :func:`calibrate`: ``U_oracle(N) ~ mu + c_sigma * g(N)``."""

    mu: float
    c_sigma: float
    r2: float
    shape: str
    mu_ci: tuple
    c_sigma_ci: tuple
    ci_level: float
    ns: np.ndarray
    observed: np.ndarray
    mu_fixed: bool = False

    def predict(self, ns) -> np.ndarray:
        """The calibrated oracle curve at ``ns`` (any N >= 1, also past the pool size)."""
        return self.mu + self.c_sigma * np.asarray(curve_shape(ns, self.shape), dtype=float)

    @property
    def residuals(self) -> np.ndarray:
        return self.observed - self.predict(self.ns)

    def c_given_sigma(self, sigma: float) -> float:
        """The constant c implied by a measured sigma: ``c_sigma / sigma``."""
        if not sigma > 0:
            raise ConfigError(f"sigma must be > 0 to separate c from c*sigma; got {sigma}.")
        return self.c_sigma / sigma

    def _summary_frame(self) -> list[dict]:
        """One row per parameter (mu, c_sigma, r2) with estimate and interval."""
        return [
            {"quantity": "mu", "estimate": self.mu, "ci_low": self.mu_ci[0],
             "ci_high": self.mu_ci[1], "source": "fixed" if self.mu_fixed else "fitted"},
            {"quantity": "c_sigma", "estimate": self.c_sigma, "ci_low": self.c_sigma_ci[0],
             "ci_high": self.c_sigma_ci[1], "source": "fitted"},
            {"quantity": "r2", "estimate": self.r2, "ci_low": float("nan"),
             "ci_high": float("nan"), "source": "fit"},
        ]

    def _text(self) -> str:
        lvl = f"{self.ci_level:.0%}" if np.isfinite(self.ci_level) else "no"
        return (f"Calibration ({self.shape}, {len(self.ns)} N values, {lvl} t intervals)\n"
                f"  mu      = {self.mu:.6g}  [{self.mu_ci[0]:.6g}, {self.mu_ci[1]:.6g}]"
                f"  ({'fixed at the random utility' if self.mu_fixed else 'fitted'})\n"
                f"  c_sigma = {self.c_sigma:.6g}  [{self.c_sigma_ci[0]:.6g}, "
                f"{self.c_sigma_ci[1]:.6g}]\n  R^2     = {self.r2:.4f}")

    def to_dict(self) -> dict:
        return {
            "mu": self.mu, "c_sigma": self.c_sigma, "r2": self.r2, "shape": self.shape,
            "mu_ci": list(self.mu_ci), "c_sigma_ci": list(self.c_sigma_ci),
            "ci_level": self.ci_level, "mu_fixed": self.mu_fixed,
            "ns": self.ns.tolist(), "observed": self.observed.tolist(),
        }


def calibrate(ns, oracle_utility=None, shape: str = DEFAULT_SHAPE, *, ci: float | None = 0.95,
              mu: float | str | None = None, table=None, split: str | None = "val",
              pool: str | None = None) -> Calibration:
    """Fit the scale ``c * sigma`` (and optionally ``mu``) of the oracle law to an oracle curve.

    Parameters
    ----------
    ns : array_like
        Candidate counts of the observed curve (at least two distinct values; three or more for
        finite confidence intervals).
    oracle_utility : array_like, optional
        Observed oracle Best-of-N utilities at ``ns``; computed exactly from ``table`` when
        omitted.
    shape : {"sqrt_log", "gaussian", "kl"}, default "sqrt_log"
        Curve shape g(N).
    ci : float or None, default 0.95
        Level in (0, 1) of the t-based confidence intervals; None: NaN intervals.
    mu : float, "random", "fit" or None
        A number fixes mu; ``"random"`` fixes it at the table's exact random-selection utility;
        ``"fit"`` fits it. Default: ``"random"`` when ``table`` is given, else ``"fit"``.
    table : pandas.DataFrame, optional
        Score table supplying the oracle curve and the random utility.
    split, pool
        Passed to :func:`ttp_diag.bon_curve` when ``table`` is given.

    Returns
    -------
    Calibration
        With ``mu``, ``c_sigma``, ``r2``, ``mu_ci``, ``c_sigma_ci``, ``predict(ns)`` and a tidy
        ``summary``. With no residual degrees of freedom the intervals are ``(-inf, inf)``.

    Examples
    --------
    >>> ns = np.array([1, 5, 10, 20, 30])
    >>> cal = calibrate(ns, 0.1 + 0.05 * np.sqrt(np.log(ns)))
    >>> round(cal.mu, 6), round(cal.c_sigma, 6), round(cal.r2, 6)
    (0.1, 0.05, 1.0)
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
    >>> calibrate([1, 2, 4, 8], table=t).mu_fixed
    True
    """
    if shape not in SHAPES:
        raise ConfigError(f"unknown curve shape {shape!r}; use one of {SHAPES}.")
    from .._checks import check_ci

    ci = check_ci(ci)
    if isinstance(mu, str) and mu not in ("random", "fit"):
        raise ConfigError(f"mu must be a number, 'random', 'fit' or None; got {mu!r}.")
    if table is not None:
        # lazy: the theory layer stays free of the engine unless a table is passed
        from ..bon import bon_curves
        ns_int = [int(n) for n in np.asarray(ns).ravel()]
        if pool is None:
            sizes = table.groupby("query_id").size()
            pool = "clip" if max(ns_int) > int(sizes.min()) else "error"
        curves = bon_curves(table, ["random", "oracle"], ns_int, split=split, pool=pool)
        if oracle_utility is None:
            oracle_utility = curves.loc[curves["selector"] == "oracle", "utility"].to_numpy()
        if mu is None or mu == "random":
            mu = float(curves.loc[curves["selector"] == "random", "utility"].iloc[0])
    elif oracle_utility is None:
        raise ConfigError("pass oracle_utility (the observed oracle curve) or table=.")
    elif mu == "random":
        raise ConfigError("mu='random' needs table= (the random utility is computed from it); "
                         "or pass mu as a number.")
    if mu == "fit":
        mu = None
    ns = np.asarray(ns, dtype=float).ravel()
    y = np.asarray(oracle_utility, dtype=float).ravel()
    if ns.shape != y.shape:
        raise ConfigError(f"ns ({ns.size} values) and oracle_utility ({y.size} values) must have "
                         f"the same length.")
    if not np.all(np.isfinite(y)):
        raise ConfigError(f"oracle_utility has NaN or inf values: {y.tolist()}.")
    if mu is not None and not np.isfinite(float(mu)):
        raise ConfigError(f"mu must be finite; got {mu}.")
    g = np.asarray(curve_shape(ns, shape), dtype=float)
    n_params = 1 if mu is not None else 2
    if np.unique(g).size < 2 and mu is None:
        raise ConfigError(f"need at least two distinct N to fit mu and c*sigma; got ns="
                         f"{ns.tolist()}.")
    # divide by the largest magnitude first: squares of values near 1e308 overflow
    scale = float(max(np.max(np.abs(y)), abs(float(mu)) if mu is not None else 0.0))
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    ys = y / scale
    if mu is not None:
        X = g[:, None]
        target = ys - float(mu) / scale
    else:
        X = np.column_stack([np.ones_like(g), g])
        target = ys
    coef, *_ = np.linalg.lstsq(X, target, rcond=None)
    fitted = X @ coef
    resid = target - fitted
    ss_res = float(resid @ resid)
    ss_tot = float(((ys - ys.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    dof = len(y) - n_params
    if ci is None:
        half = np.full(n_params, np.nan)
    elif dof > 0:
        s2 = ss_res / dof
        cov = s2 * np.linalg.inv(X.T @ X)
        from scipy import special  # lazily: scipy.special costs ~70 ms at import

        half = special.stdtrit(dof, 0.5 + ci / 2.0) * np.sqrt(np.diag(cov)) * scale
    else:
        half = np.full(n_params, np.inf)
    coef = coef * scale
    if mu is not None:
        mu_hat, cs = float(mu), float(coef[0])
        mu_ci = (mu_hat, mu_hat)
        cs_ci = (cs - half[0], cs + half[0])
    else:
        mu_hat, cs = float(coef[0]), float(coef[1])
        mu_ci = (mu_hat - half[0], mu_hat + half[0])
        cs_ci = (cs - half[1], cs + half[1])
    if cs < 0:
        import warnings

        warnings.warn(
            f"the oracle curve falls as N grows (c*sigma = {cs:.4g} < 0, R^2 = {r2:.2f}, "
            f"oracle_utility {np.round(y, 4).tolist()} at N = {ns.astype(int).tolist()}): the "
            f"best of N candidates cannot get worse with more candidates, so predictions from "
            f"this calibration are meaningless; pass the oracle curve in the order of ns, with "
            f"a reward where higher is better.", UserWarning, stacklevel=2)
    return Calibration(mu=mu_hat, c_sigma=cs, r2=float(r2), shape=shape,
                       mu_ci=tuple(map(float, mu_ci)), c_sigma_ci=tuple(map(float, cs_ci)),
                       ci_level=float(ci) if ci is not None else float("nan"), ns=ns,
                       observed=y, mu_fixed=mu is not None)
