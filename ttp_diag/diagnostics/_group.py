"""Vectorised per-group statistics (correlation, spread, ranks) over integer group codes.

Values are divided by their largest magnitude before any square is taken: correlations are
scale-free, and rewards or scores near 1e308 would otherwise overflow to inf and make every
group look "constant" (issue 9). Spreads are scaled back afterwards.
"""

from __future__ import annotations

import numpy as np


def _unit_scale(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``x / max|x|`` and that scale (1 for an all-zero array)."""
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    if not np.isfinite(scale) or scale == 0.0:
        return x, 1.0
    return x / scale, scale


def group_corr(codes: np.ndarray, x: np.ndarray, y: np.ndarray,
               n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of x and y within each group; (rho, undefined mask)."""
    x, _ = _unit_scale(np.asarray(x, dtype=float))
    y, _ = _unit_scale(np.asarray(y, dtype=float))
    cnt = np.bincount(codes, minlength=n_groups).astype(float)
    safe = np.maximum(cnt, 1.0)
    mx = np.bincount(codes, weights=x, minlength=n_groups) / safe
    my = np.bincount(codes, weights=y, minlength=n_groups) / safe
    dx = x - mx[codes]
    dy = y - my[codes]
    sxx = np.bincount(codes, weights=dx * dx, minlength=n_groups)
    syy = np.bincount(codes, weights=dy * dy, minlength=n_groups)
    sxy = np.bincount(codes, weights=dx * dy, minlength=n_groups)
    # A spread at rounding level of the values counts as constant: their correlation is noise.
    scale_x = np.bincount(codes, weights=x * x, minlength=n_groups) + 1e-300
    scale_y = np.bincount(codes, weights=y * y, minlength=n_groups) + 1e-300
    undefined = (sxx <= 1e-24 * scale_x) | (syy <= 1e-24 * scale_y) | (cnt < 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(undefined, 0.0, sxy / np.sqrt(sxx * syy))
    return np.clip(rho, -1.0, 1.0), undefined


def group_mean(codes: np.ndarray, x: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of x within each group, overflow-safe."""
    xs, scale = _unit_scale(np.asarray(x, dtype=float))
    cnt = np.maximum(np.bincount(codes, minlength=n_groups), 1)
    return np.bincount(codes, weights=xs, minlength=n_groups) / cnt * scale


def group_std(codes: np.ndarray, x: np.ndarray, n_groups: int, ddof: int = 1) -> np.ndarray:
    """Standard deviation of x within each group, overflow-safe."""
    xs, scale = _unit_scale(np.asarray(x, dtype=float))
    cnt = np.bincount(codes, minlength=n_groups).astype(float)
    mean = np.bincount(codes, weights=xs, minlength=n_groups) / np.maximum(cnt, 1.0)
    ss = np.bincount(codes, weights=(xs - mean[codes]) ** 2, minlength=n_groups)
    return np.sqrt(ss / np.maximum(cnt - ddof, 1.0)) * scale


def group_rank(codes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """1-based rank of x within its group, ties given their average rank (as scipy's rankdata).

    Examples
    --------
    >>> group_rank(np.array([0, 0, 0, 1, 1]), np.array([3.0, 1.0, 3.0, 5.0, 2.0])).tolist()
    [2.5, 1.0, 2.5, 2.0, 1.0]
    """
    x = np.asarray(x, dtype=float)
    order = np.lexsort((x, codes))
    cs, xs = codes[order], x[order]
    n = len(x)
    start_of_group = np.ones(n, dtype=bool)
    start_of_group[1:] = cs[1:] != cs[:-1]
    group_start = np.maximum.accumulate(np.where(start_of_group, np.arange(n), 0))
    pos = np.arange(n) - group_start + 1.0
    new_tie = start_of_group.copy()
    new_tie[1:] |= xs[1:] != xs[:-1]
    tid = np.cumsum(new_tie) - 1
    avg = np.bincount(tid, weights=pos) / np.bincount(tid)
    out = np.empty(n)
    out[order] = avg[tid]
    return out
