"""Agreement and efficiency metrics between curves."""

from __future__ import annotations

import warnings

import numpy as np

from ttp_diag.exceptions import ConfigError


def _pair(pred, obs):
    pred = np.asarray(pred, dtype=float).ravel()
    obs = np.asarray(obs, dtype=float).ravel()
    if pred.shape != obs.shape:
        raise ConfigError(f"pred ({pred.size}) and obs ({obs.size}) must have the same length.")
    if pred.size == 0:
        raise ConfigError("pred and obs are empty.")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(obs))):
        raise ConfigError("pred and obs must be finite.")
    return pred, obs


def rel_mae(pred, obs) -> float:
    """Relative mean absolute error ``mean(|pred - obs| / |obs|)`` (the paper's relMAE).

    Examples
    --------
    >>> rel_mae([1.1, 1.8], [1.0, 2.0])
    0.1
    """
    pred, obs = _pair(pred, obs)
    if np.all(obs == 0):
        raise ConfigError(
            f"relMAE is undefined: every observed utility is 0 ({obs.size} values), i.e. there is "
            f"no reward signal (are all rewards 0?). Check the reward column; gains over random "
            f"(gain_error, capture_error) need no division by the observed utility.")
    if np.any(obs == 0):
        where = np.flatnonzero(obs == 0).tolist()
        raise ConfigError(f"relMAE is undefined where an observed value is 0 (positions {where}); "
                         f"use gain_error or an absolute error instead.")
    return float(round(np.mean(np.abs(pred - obs) / np.abs(obs)), 15))


def r_squared(pred, obs) -> float:
    """Coefficient of determination of observed values by predictions, ``1 - SS_res / SS_tot``.

    A perfectly flat observed curve has SS_tot = 0 and no defined R^2: NaN is returned with a
    ``RuntimeWarning`` saying so.

    Examples
    --------
    >>> r_squared([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    pred, obs = _pair(pred, obs)
    ss_tot = float(((obs - obs.mean()) ** 2).sum())
    if ss_tot == 0:
        warnings.warn("R^2 is undefined for a flat observed curve (zero variance); returning NaN.",
                      RuntimeWarning, stacklevel=2)
        return float("nan")
    return 1.0 - float(((obs - pred) ** 2).sum()) / ss_tot


def _curves(selector, oracle, random) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three curves as float arrays of one length (``random`` may be one number)."""
    from .exceptions import ConfigError

    sel = np.asarray(selector, dtype=float)
    orc = np.asarray(oracle, dtype=float)
    rnd = np.asarray(random, dtype=float)
    if sel.shape != orc.shape or (rnd.ndim and rnd.shape != orc.shape):
        raise ConfigError(f"selector, oracle and random must be curves of the same length (one "
                          f"value per N; random may be one number); got lengths "
                          f"{sel.size}, {orc.size} and {rnd.size}.")
    return sel, orc, np.broadcast_to(rnd, orc.shape)


def capture_rate(selector, oracle, random):
    """Share of the oracle's gain over random that a selector captures, per N.

    ``(selector - random) / (oracle - random)``. At N = 1 every selector equals random and the
    share is undefined (0/0): those entries are NaN by definition. Use :func:`mean_capture_rate`
    for one number.

    Examples
    --------
    >>> capture_rate([0.1, 0.15], [0.1, 0.2], [0.1, 0.1]).round(6).tolist()
    [nan, 0.5]
    """
    sel, orc, rnd = _curves(selector, oracle, random)
    gap = orc - rnd
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(gap) > 1e-15, (sel - rnd) / gap, np.nan)


def mean_capture_rate(selector, oracle, random) -> float:
    """Gain-weighted capture over all N: ``sum(selector - random) / sum(oracle - random)``.

    Examples
    --------
    >>> mean_capture_rate([0.1, 0.15, 0.2], [0.1, 0.2, 0.3], 0.1)
    0.5
    """
    sel, orc, rnd = _curves(selector, oracle, random)
    gap = float((orc - rnd).sum())
    if gap <= 0:
        raise ConfigError("the oracle never beats random on these N (no reward spread within "
                         "queries, e.g. all rewards 0); capture is undefined.")
    return float(round((sel - rnd).sum() / gap, 15))


def _gain_pair(pred, obs, random):
    pred, obs = _pair(pred, obs)
    rnd = np.broadcast_to(np.asarray(random, dtype=float), obs.shape)
    if not np.all(np.isfinite(rnd)):
        raise ConfigError("random must be finite.")
    return pred, obs, rnd


def gain_error(pred, obs, random) -> float:
    """Error of a predicted curve relative to the observed gain over random.

    ``sum |pred - obs| / sum |obs - random|`` over N. It asks how much of the *gain* the
    prediction gets wrong, where relMAE divides by the whole utility (mostly the random
    baseline) and so rewards a flat "no gain" prediction. A flat prediction (``pred = random``)
    scores exactly 1: that is the baseline to beat.

    Examples
    --------
    >>> gain_error([0.1, 0.19, 0.21], [0.1, 0.2, 0.2], 0.1)
    0.1
    >>> gain_error([0.1, 0.1, 0.1], [0.1, 0.2, 0.2], 0.1)  # flat baseline
    1.0
    """
    pred, obs, rnd = _gain_pair(pred, obs, random)
    gain = float(np.abs(obs - rnd).sum())
    if gain == 0:
        raise ConfigError(
            "gain_error is undefined: the observed curve never differs from random (zero gain; "
            "with all rewards 0 there is no reward signal). Report the absolute error instead.")
    return float(round(np.abs(pred - obs).sum() / gain, 15))


def capture_error(pred, obs, oracle, random) -> float:
    """Predicted minus observed capture (share of the oracle's gain over random), signed.

    ``mean_capture_rate(pred) - mean_capture_rate(obs)``. A flat prediction has capture 0, so
    its capture error is minus the observed capture: that is the baseline.

    Examples
    --------
    >>> capture_error([0.1, 0.14, 0.2], [0.1, 0.15, 0.2], [0.1, 0.2, 0.3], 0.1)
    -0.033333333333333
    """
    pred, obs, rnd = _gain_pair(pred, obs, random)
    orc = np.asarray(oracle, dtype=float).ravel()
    if orc.shape != obs.shape or not np.all(np.isfinite(orc)):
        raise ConfigError("oracle must be finite and as long as obs.")
    return float(round(mean_capture_rate(pred, orc, rnd) - mean_capture_rate(obs, orc, rnd), 15))
