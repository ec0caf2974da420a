"""Calibrating the scale of the scaling laws once, from an oracle curve.

The paper fits ``mu`` and the scale ``c * sigma`` of ``U_oracle(N) = mu + c sigma g(N)`` to the
oracle Best-of-N curve of a task and reuses them for every reward model. :func:`calibrate` does the
same by ordinary least squares on the design ``[1, g(N)]`` and reports R^2 and t-based confidence
intervals of both parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .extremes import SHAPES, curve_shape


@dataclass(frozen=True)
class Calibration:
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
            raise ValueError(f"sigma must be > 0 to separate c from c*sigma; got {sigma}.")
        return self.c_sigma / sigma

    def to_dict(self) -> dict:
        return {
            "mu": self.mu, "c_sigma": self.c_sigma, "r2": self.r2, "shape": self.shape,
            "mu_ci": list(self.mu_ci), "c_sigma_ci": list(self.c_sigma_ci),
            "ci_level": self.ci_level, "mu_fixed": self.mu_fixed,
            "ns": self.ns.tolist(), "observed": self.observed.tolist(),
        }


def calibrate(ns, oracle_utility, shape: str = "sqrt_log", *, ci: float = 0.95,
              mu: float | None = None) -> Calibration:
    """Fit ``mu`` and the scale ``c * sigma`` of the oracle law to an observed oracle curve.

    Parameters
    ----------
    ns : array_like
        Candidate counts of the observed curve (at least two distinct values; three or more for
        finite confidence intervals).
    oracle_utility : array_like
        Observed oracle Best-of-N utilities at ``ns``.
    shape : {"sqrt_log", "gaussian", "kl"}, default "sqrt_log"
        Curve shape g(N).
    ci : float, default 0.95
        Level of the t-based confidence intervals of the parameters.
    mu : float, optional
        Fix ``mu`` (e.g. at the exact random-selection utility) and fit only the scale.

    Returns
    -------
    Calibration
        With ``mu``, ``c_sigma``, ``r2``, ``mu_ci``, ``c_sigma_ci`` and ``predict(ns)``. With no
        residual degrees of freedom the intervals are ``(-inf, inf)``.

    Examples
    --------
    >>> ns = np.array([1, 5, 10, 20, 30])
    >>> cal = calibrate(ns, 0.1 + 0.05 * np.sqrt(np.log(ns)))
    >>> round(cal.mu, 6), round(cal.c_sigma, 6), round(cal.r2, 6)
    (0.1, 0.05, 1.0)
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown curve shape {shape!r}; use one of {SHAPES}.")
    ns = np.asarray(ns, dtype=float).ravel()
    y = np.asarray(oracle_utility, dtype=float).ravel()
    if ns.shape != y.shape:
        raise ValueError(f"ns ({ns.size} values) and oracle_utility ({y.size} values) must have "
                         f"the same length.")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"oracle_utility has NaN or inf values: {y.tolist()}.")
    g = np.asarray(curve_shape(ns, shape), dtype=float)
    n_params = 1 if mu is not None else 2
    if np.unique(g).size < 2 and mu is None:
        raise ValueError(f"need at least two distinct N to fit mu and c*sigma; got ns="
                         f"{ns.tolist()}.")
    if mu is not None:
        X = g[:, None]
        target = y - float(mu)
    else:
        X = np.column_stack([np.ones_like(g), g])
        target = y
    coef, *_ = np.linalg.lstsq(X, target, rcond=None)
    fitted = X @ coef
    resid = target - fitted
    ss_res = float(resid @ resid)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    dof = len(y) - n_params
    if dof > 0:
        s2 = ss_res / dof
        cov = s2 * np.linalg.inv(X.T @ X)
        from scipy import special  # lazily: scipy.special costs ~70 ms at import

        half = special.stdtrit(dof, 0.5 + ci / 2.0) * np.sqrt(np.diag(cov))
    else:
        half = np.full(n_params, np.inf)
    if mu is not None:
        mu_hat, cs = float(mu), float(coef[0])
        mu_ci = (mu_hat, mu_hat)
        cs_ci = (cs - half[0], cs + half[0])
    else:
        mu_hat, cs = float(coef[0]), float(coef[1])
        mu_ci = (mu_hat - half[0], mu_hat + half[0])
        cs_ci = (cs - half[1], cs + half[1])
    return Calibration(mu=mu_hat, c_sigma=cs, r2=float(r2), shape=shape,
                       mu_ci=tuple(map(float, mu_ci)), c_sigma_ci=tuple(map(float, cs_ci)),
                       ci_level=float(ci), ns=ns, observed=y, mu_fixed=mu is not None)
