"""The paper's scaling laws as plain functions of N.

Notation follows the paper: ``mu`` is the mean true reward of the policy (random selection),
``sigma`` the spread of true rewards among candidates, ``c`` the constant of the sub-Gaussian
maximum bound, ``rho`` a correlation between predicted and true reward, ``alpha`` the collapse rate
(fraction of users with rho_u < 0.1) and ``beta`` the hacking rate (fraction of the non-collapsed
users' queries with rho_q < 0).

* :func:`oracle_bound` -- Theorem 3.1, ``mu + sigma * c * sqrt(ln N)``.
* :func:`correlation_scaling` -- Lemma 4.2, ``mu + rho * sigma * c * g(N)``.
* :func:`effective_correlation` -- ``(1 - beta) rho_plus - beta |rho_minus|``.
* :func:`unified_law` -- Proposition 4.4, ``mu + (1 - alpha) rho_eff * c_sigma * g(N)``.
* :func:`collapsed_refinement` -- Eq. (30), ``mu + [(1 - alpha) rho_eff + alpha rho_collapsed]
  * c_sigma * g(N)``.

Every law takes a ``shape`` (see :func:`ttp_diag.theory.curve_shape`), so the exact Gaussian
shape can stand beside the paper's sqrt(ln N).
"""

from __future__ import annotations

import numpy as np

from ttp_diag.exceptions import ConfigError

from .extremes import DEFAULT_SHAPE, curve_shape


def _check_rate(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0.0 or value > 1.0:
        raise ConfigError(f"{name} must be a rate in [0, 1]; got {value}.")
    return value


def _check_corr(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or abs(value) > 1.0 + 1e-12:
        raise ConfigError(f"{name} must be a correlation in [-1, 1]; got {value}.")
    return value


def _check_finite(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ConfigError(f"{name} must be finite; got {value}.")
    return value


def oracle_bound(ns, mu: float, sigma: float, c: float = float(np.sqrt(2.0)), shape=DEFAULT_SHAPE):
    """Oracle Best-of-N utility bound (Theorem 3.1): ``mu + sigma * c * g(N)``.

    With the default ``c = sqrt(2)`` and ``shape="sqrt_log"`` this is the sub-Gaussian upper bound
    on the expected maximum; with ``shape="gaussian"`` and ``c = 1`` it is the exact oracle curve
    of Gaussian rewards.

    Parameters
    ----------
    ns : array_like
        Candidate counts N >= 1.
    mu, sigma : float
        Mean and sub-Gaussian scale of the true reward of one candidate (sigma >= 0).
    c : float, default sqrt(2)
        The constant of the bound.
    shape : {"sqrt_log", "gaussian", "kl"}

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> np.round(oracle_bound([1, 10], mu=0.1, sigma=0.05), 4)
    array([0.1   , 0.2073])
    """
    mu = _check_finite(mu, "mu")
    sigma = _check_finite(sigma, "sigma")
    if sigma < 0:
        raise ConfigError(f"sigma must be >= 0; got {sigma}.")
    return mu + sigma * float(c) * np.asarray(curve_shape(ns, shape), dtype=float)


def correlation_scaling(ns, mu: float, sigma: float, rho: float, c: float = float(np.sqrt(2.0)),
                        shape=DEFAULT_SHAPE):
    """Best-of-N utility of a reward model with correlation ``rho`` (Lemma 4.2).

    ``U(N) = mu + rho * sigma * c * g(N)``: positive rho gives an increasing curve, rho = 0 a flat
    one and negative rho a decreasing one.

    Examples
    --------
    >>> np.round(correlation_scaling([1, 10], mu=0.1, sigma=0.05, rho=-0.5), 4)
    array([0.1   , 0.0464])
    """
    rho = _check_corr(rho, "rho")
    mu = _check_finite(mu, "mu")
    # the oracle gain scaled by rho: U(N) - mu = rho * (U_oracle(N) - mu)
    return mu + rho * (oracle_bound(ns, mu, sigma, c=c, shape=shape) - mu)


def effective_correlation(beta: float, rho_plus: float, rho_minus: float) -> float:
    """Effective correlation of non-collapsed users: ``(1 - beta) rho_plus - beta |rho_minus|``.

    Parameters
    ----------
    beta : float
        Hacking rate in [0, 1].
    rho_plus : float
        Mean per-query correlation on non-hacked queries.
    rho_minus : float
        Mean per-query correlation on hacked queries (its absolute value is used, as in the paper).

    Examples
    --------
    >>> effective_correlation(0.25, 0.6, -0.2)
    0.4
    """
    beta = _check_rate(beta, "beta")
    rho_plus = _check_corr(rho_plus, "rho_plus")
    rho_minus = _check_corr(rho_minus, "rho_minus")
    return float(round((1.0 - beta) * rho_plus - beta * abs(rho_minus), 15))


def total_correlation(alpha: float, beta: float, rho_plus: float, rho_minus: float,
                      rho_collapsed: float = 0.0) -> float:
    """Population correlation scaling the oracle gain, ``(1-alpha) rho_eff + alpha rho_coll``.

    With ``rho_collapsed = 0`` this is the factor of Proposition 4.4; otherwise of Eq. (30).

    Examples
    --------
    >>> total_correlation(0.2, 0.25, 0.6, -0.2, rho_collapsed=-0.03)
    0.314
    """
    alpha = _check_rate(alpha, "alpha")
    rho_collapsed = _check_corr(rho_collapsed, "rho_collapsed")
    rho_eff = effective_correlation(beta, rho_plus, rho_minus)
    return float(round((1.0 - alpha) * rho_eff + alpha * rho_collapsed, 15))


def unified_law(ns, *, mu: float, c_sigma: float, alpha: float, beta: float, rho_plus: float,
                rho_minus: float, shape: str = DEFAULT_SHAPE) -> np.ndarray:
    """Unified scaling law (Proposition 4.4).

    ``U(N) = mu + (1 - alpha) [(1 - beta) rho_plus - beta |rho_minus|] c_sigma g(N)``

    Parameters
    ----------
    ns : array_like
        Candidate counts N >= 1.
    mu : float
        Mean true reward (random selection).
    c_sigma : float
        The product ``c * sigma`` (calibrate it once from an oracle curve, see
        :func:`ttp_diag.theory.calibrate`).
    alpha, beta : float
        Collapse and hacking rates.
    rho_plus, rho_minus : float
        Mean per-query correlations on non-hacked and hacked queries of non-collapsed users.
    shape : {"sqrt_log", "gaussian", "kl"}

    Examples
    --------
    >>> np.round(unified_law([1, 30], mu=0.1, c_sigma=0.05, alpha=0.2, beta=0.25,
    ...                      rho_plus=0.6, rho_minus=-0.2), 4)
    array([0.1   , 0.1295])
    """
    return collapsed_refinement(ns, mu=mu, c_sigma=c_sigma, alpha=alpha, beta=beta,
                                rho_plus=rho_plus, rho_minus=rho_minus, rho_collapsed=0.0,
                                shape=shape)


def collapsed_refinement(ns, *, mu: float, c_sigma: float, alpha: float, beta: float,
                         rho_plus: float, rho_minus: float, rho_collapsed: float,
                         shape: str = DEFAULT_SHAPE) -> np.ndarray:
    """Unified law with the collapsed users' own correlation (the paper's Eq. 30).

    ``U(N) = mu + [(1 - alpha) rho_eff + alpha rho_collapsed] c_sigma g(N)``

    Examples
    --------
    >>> np.round(collapsed_refinement([1, 30], mu=0.1, c_sigma=0.05, alpha=0.2, beta=0.25,
    ...                               rho_plus=0.6, rho_minus=-0.2, rho_collapsed=-0.03), 5)
    array([0.1    , 0.12895])
    """
    mu = _check_finite(mu, "mu")
    c_sigma = _check_finite(c_sigma, "c_sigma")
    rho = total_correlation(alpha, beta, rho_plus, rho_minus, rho_collapsed)
    return mu + rho * c_sigma * np.asarray(curve_shape(ns, shape), dtype=float)
