"""One home for the package's statistics: intervals, resampling, paired tests, agreement.

Every layer (the Best-of-N curves, the selector comparison, the diagnostics' bootstrap and the
evaluation tables of ``ttp-diag evaluate``) draws its intervals and tests from here, so one
quantity gets one number and one rule. Pure numpy/scipy.

Resampling
    * :func:`resample_counts` - a bootstrap over users as a (n_boot, n_users) matrix of how
      often each user is drawn. Computing every statistic of a table from the *same* matrix
      gives shared (common-random-number) resamples: two methods measured on the same users
      are compared on the same draws, and a paired difference or a correlation across methods
      is bootstrapped consistently.
    * :func:`two_level_indices` - users with replacement, then each drawn user's queries with
      replacement (the bootstrap of :func:`ttp_diag.diagnose`).
    * :func:`bootstrap_mean_ci` - percentile interval of the mean over users, missing values
      allowed (a user without a value carries no weight in that column).
    * :func:`percentile_interval` - the percentile interval of replicates (NaN-aware).

Proportions and tests
    * :func:`wilson_interval` - score interval of a binomial proportion.
    * :func:`sign_flip_test` - paired randomisation test on per-user differences (exact by
      enumeration for up to 12 users).
    * :func:`format_p_value` - a p-value as text, saying when it sits at the resolution limit
      of a Monte Carlo test ("p < 0.001, 1,000 draws").

Agreement
    * :func:`pair_wins` - the one tie rule of pairwise accuracy and win rates: a tie is half a
      success (``ties="half"``, default) or a failure (``ties="strict"``, the paper's
      ``s(chosen) > s(rejected)``).
    * :func:`correlations` - Kendall tau, Spearman rho and Pearson r (scipy), NaN below 3
      points or for a constant variable.
    * :func:`bootstrap_correlations` - the same across points (methods, reward models) whose
      coordinates are means over users, with a bootstrap over users on shared resamples.
    * :func:`correlation_difference` - does one predictor track an outcome better than
      another on the same points? The paired difference of the two correlations, bootstrapped
      on one resample matrix.

Minimum sample. An interval over fewer than :data:`MIN_USERS_FOR_CI` (5) users would claim a
precision the data cannot give (one user: zero width); such intervals are NaN with a warning.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ._checks import check_boot_memory, check_ci, check_n_boot, check_seed
from .exceptions import ConfigError, DataError

__all__ = [
    "MIN_USERS_FOR_CI",
    "resample_counts",
    "two_level_indices",
    "percentile_interval",
    "bootstrap_mean_ci",
    "cluster_ratio_ci",
    "wilson_interval",
    "sign_flip_test",
    "paired_difference",
    "format_p_value",
    "pair_wins",
    "correlations",
    "bootstrap_correlations",
    "correlation_difference",
    "correlations_rows",
    "CORRELATIONS",
]

#: Fewest users a bootstrap interval over users is computed from; fewer give NaN and a warning.
MIN_USERS_FOR_CI = 5

#: Names of the three agreement statistics, in the order :func:`correlations` returns them.
CORRELATIONS = ("kendall_tau", "spearman_rho", "pearson_r")


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def resample_counts(n_users: int, n_boot: int = 1000, seed=0) -> np.ndarray:
    """How often each user is drawn in each of ``n_boot`` bootstrap resamples of the users.

    Parameters
    ----------
    n_users : int
        Number of users (resampled with replacement, ``n_users`` draws per resample).
    n_boot : int, default 1000
    seed : int, None or numpy.random.Generator, default 0
        A Generator is used (and advanced) as is, so a caller can draw several things from
        one stream.

    Returns
    -------
    numpy.ndarray
        Integer matrix (n_boot, n_users); every row sums to ``n_users``. The mean over users of
        resample ``b`` is ``counts[b] @ values / n_users``.

    Examples
    --------
    >>> c = resample_counts(4, n_boot=3, seed=0)
    >>> c.shape, c.sum(axis=1).tolist()
    ((3, 4), [4, 4, 4])
    """
    n_boot = check_n_boot(n_boot)
    if int(n_users) < 1:
        raise DataError(f"resample_counts: n_users={n_users}; a bootstrap needs at least one "
                        f"user.")
    n = int(n_users)
    # the (n_boot, n_users) count matrix plus a few draws per resample, refused before allocating
    check_boot_memory(n_boot, n + 2)
    return _rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def two_level_indices(user: np.ndarray, n_users: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One bootstrap draw over users, then over each drawn user's queries.

    Parameters
    ----------
    user : numpy.ndarray
        User code (0 .. n_users - 1) of each query.
    n_users : int
    rng : numpy.random.Generator

    Returns
    -------
    (indices, slot)
        Indices into the queries, and the pseudo-user slot (0 .. n_users - 1) of each: slot
        ``i`` holds the queries of the ``i``-th drawn user, resampled with replacement.

    Examples
    --------
    >>> idx, slot = two_level_indices(np.array([0, 0, 1]), 2, np.random.default_rng(0))
    >>> len(idx) == len(slot), int(slot.max()) <= 1
    (True, True)
    """
    order = np.argsort(user, kind="stable")
    counts = np.bincount(user, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    drawn = rng.integers(0, n_users, n_users)
    c = counts[drawn]
    slot = np.repeat(np.arange(n_users), c)
    within = np.floor(rng.random(slot.size) * c[slot]).astype(np.int64)
    return order[starts[drawn][slot] + within], slot


def percentile_interval(reps, ci: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap replicates along ``axis``, ignoring NaN replicates.

    Examples
    --------
    >>> lo, hi = percentile_interval(np.arange(101.0), 0.9)
    >>> round(float(lo), 6), round(float(hi), 6)
    (5.0, 95.0)
    """
    ci = check_ci(ci, allow_none=False)
    tail = (1.0 - ci) / 2.0
    reps = np.asarray(reps, dtype=float)
    with warnings.catch_warnings():
        # an all-NaN quantity (e.g. capture with no reward signal) has a NaN interval
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanquantile(reps, tail, axis=axis),
                np.nanquantile(reps, 1.0 - tail, axis=axis))


def _too_few(n_users: int, what: str, stacklevel: int = 3) -> bool:
    if n_users >= MIN_USERS_FOR_CI:
        return False
    warnings.warn(
        f"{what}: a bootstrap interval over {n_users} user(s) is not meaningful (it needs at "
        f"least {MIN_USERS_FOR_CI}); ci_low and ci_high are NaN. Analyse more users, or pass "
        f"ci=None.", RuntimeWarning, stacklevel=stacklevel)
    return True


def weighted_means(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Means over users of every resample: ``(n_boot, k)`` from counts and (n_users, k) values.

    A NaN value means "this user has no value here": it carries no weight, and a resample
    that drew none of the column's users gives NaN.

    Examples
    --------
    >>> weighted_means(np.array([[2, 0, 1]]), np.array([[1.0], [5.0], [np.nan]])).tolist()
    [[1.0]]
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    have = np.isfinite(values)
    counts = np.asarray(counts, dtype=float)
    num = counts @ np.where(have, values, 0.0)
    den = counts @ have.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_mean_ci(per_user, *, ci: float = 0.95, n_boot: int = 1000, seed=0,
                      counts: np.ndarray | None = None,
                      what: str = "bootstrap_mean_ci") -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over users, resampling users.

    Parameters
    ----------
    per_user : array (n_users,) or (n_users, k)
        One value per user (and column); NaN = the user has no value in that column.
    ci : float, default 0.95
    n_boot : int, default 1000
    seed : int, None or numpy.random.Generator, default 0
    counts : numpy.ndarray, optional
        A :func:`resample_counts` matrix to reuse (shared resamples); ``n_boot`` and ``seed``
        are then ignored.
    what : str
        Name used in the warning for too few users.

    Returns
    -------
    (low, high)
        Arrays of length k. NaN, with a RuntimeWarning, for fewer than 5 users with a value.

    Examples
    --------
    >>> low, high = bootstrap_mean_ci(np.arange(10.0), ci=0.9, n_boot=200)
    >>> bool(low[0] < 4.5 < high[0])
    True
    """
    ci = check_ci(ci, allow_none=False)
    per_user = np.asarray(per_user, dtype=float)
    if per_user.ndim == 1:
        per_user = per_user[:, None]
    n_have = np.isfinite(per_user).sum(axis=0)
    if _too_few(int(n_have.min()) if n_have.size else 0, what):
        nan = np.full(per_user.shape[1], np.nan)
        return nan, nan.copy()
    if counts is None:
        counts = resample_counts(per_user.shape[0], n_boot, seed)
    elif counts.shape[1] != per_user.shape[0]:
        raise DataError(f"bootstrap_mean_ci: counts has {counts.shape[1]} users but per_user "
                        f"{per_user.shape[0]}; draw the counts for the same users.")
    if np.isfinite(per_user).all():
        boots = counts @ per_user / per_user.shape[0]
        tail = (1.0 - ci) / 2.0
        return np.quantile(boots, tail, axis=0), np.quantile(boots, 1.0 - tail, axis=0)
    return percentile_interval(weighted_means(counts, per_user), ci)


def cluster_ratio_ci(successes, clusters, *, ci: float = 0.95, n_boot: int = 2000,
                     seed=0) -> tuple[float, float]:
    """Percentile interval of a pooled proportion, resampling clusters (e.g. queries).

    The pairs of one query share candidates and are not independent; resampling whole
    queries (with replacement, ``resample_counts`` over clusters) gives the interval of the
    pooled ``sum(successes) / n`` that a Wilson interval over pairs makes too narrow.

    Parameters
    ----------
    successes : array (n,)
        1 = success, 0 = failure, 0.5 = tie counted as half.
    clusters : array (n,)
        The cluster of each trial (any labels).
    ci : float, default 0.95
    n_boot : int, default 2000
    seed : int, None or numpy.random.Generator, default 0

    Examples
    --------
    >>> lo, hi = cluster_ratio_ci(np.array([1, 1, 0, 1, 0, 1.]), np.array([0, 0, 1, 1, 2, 2]))
    >>> bool(0 <= lo <= 4 / 6 <= hi <= 1)
    True
    """
    import pandas as pd

    x = np.asarray(successes, dtype=float)
    codes, uniq = pd.factorize(pd.Series(np.asarray(clusters)).astype(str))
    if len(x) != len(codes) or len(x) == 0:
        raise DataError(f"cluster_ratio_ci: {len(x)} outcomes and {len(codes)} cluster labels; "
                        "pass one cluster label per outcome (at least one).")
    k = np.bincount(codes, weights=x)
    n = np.bincount(codes).astype(float)
    c = resample_counts(len(uniq), n_boot, seed)
    lo, hi = percentile_interval((c @ k) / (c @ n), ci)
    return float(lo), float(hi)


def wilson_interval(successes, n, ci: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n``.

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at 0 or ``n``
    successes. ``successes`` may be fractional (ties counted as one half).

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(8, 10)]  # statsmodels: (0.4902, 0.9433)
    [0.4902, 0.9433]
    """
    from scipy.special import ndtri

    ci = check_ci(ci, allow_none=False)
    if not (np.isfinite(n) and n > 0):
        raise DataError(f"wilson_interval: n={n}; a proportion needs n >= 1 trials.")
    if not (0 <= successes <= n):
        raise DataError(f"wilson_interval: successes={successes} is outside [0, n={n}].")
    z = float(ndtri(1.0 - (1.0 - ci) / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


#: Users up to which :func:`sign_flip_test` enumerates all 2**n sign patterns.
EXACT_SIGN_FLIP_USERS = 12


def sign_flip_test(d, *, n_flips: int = 2000, seed=0) -> tuple[np.ndarray, int | None]:
    """Two-sided paired sign-flip randomisation test of "mean difference = 0".

    Under the null each user's mean difference is as likely to have either sign. Exact (all
    ``2**n`` patterns) for up to 12 users; otherwise ``n_flips`` random patterns with the +1
    correction of a Monte Carlo test, so the smallest possible p is ``1 / (n_flips + 1)``.

    Parameters
    ----------
    d : array (n_users,) or (n_users, k)
        Per-user differences.
    n_flips : int, default 2000
    seed : int, None or numpy.random.Generator

    Returns
    -------
    (p, draws)
        p-values (length k; 1.0 where every difference is exactly 0) and the number of random
        sign patterns behind them (None when enumerated exactly).

    Examples
    --------
    >>> p, draws = sign_flip_test(np.array([1.0, 2.0, 3.0]))  # 2 of 8 patterns are as extreme
    >>> float(p[0]), draws
    (0.25, None)
    """
    d = np.asarray(d, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    nu = d.shape[0]
    obs = np.abs(d.mean(axis=0))
    if nu <= EXACT_SIGN_FLIP_USERS:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=nu)))
        stat = np.abs(signs @ d / nu)
        p, draws = (stat >= obs - 1e-15).mean(axis=0), None
    else:
        n_flips = check_boot_memory(check_n_boot(n_flips, name="n_flips"), 2 * nu,
                                    name="n_flips", what="sign patterns")
        signs = _rng(seed).choice((-1.0, 1.0), size=(n_flips, nu))
        stat = np.abs(signs @ d / nu)
        p, draws = (1 + (stat >= obs - 1e-15).sum(axis=0)) / (1 + n_flips), n_flips
    # a difference that is exactly 0 for every user (e.g. N = 1) is no evidence at all
    return np.where(np.all(d == 0, axis=0), 1.0, p), draws


def paired_difference(a_user, b_user, *, ci: float | None = 0.95, n_boot: int = 2000,
                      seed=0) -> dict:
    """Mean over users of the paired difference ``a - b``, its interval and test.

    The interval is a percentile bootstrap over users (one resample matrix for every column);
    the p-value is :func:`sign_flip_test` on the per-user differences, drawn from the same
    random stream after the resamples.

    Parameters
    ----------
    a_user, b_user : array (n_users,) or (n_users, k)
        Per-user values of the two things compared, on the same users.
    ci : float or None, default 0.95
    n_boot : int, default 2000
        Bootstrap resamples and (beyond 12 users) random sign patterns.
    seed : int, None or numpy.random.Generator

    Returns
    -------
    dict
        ``diff``, ``ci_low``, ``ci_high``, ``p_value`` (arrays of length k; NaN interval and p,
        with a warning, for fewer than 5 users), ``n_users``, ``p_draws`` (random sign patterns
        behind p; None when exact).

    Examples
    --------
    >>> r = paired_difference(np.arange(6.0) + 1, np.zeros(6), n_boot=200)
    >>> float(r["diff"][0]), float(r["p_value"][0])  # 2 of 64 sign patterns as extreme
    (3.5, 0.03125)
    """
    a = np.asarray(a_user, dtype=float)
    b = np.asarray(b_user, dtype=float)
    if a.shape != b.shape:
        raise DataError(f"paired_difference: a has shape {a.shape} but b {b.shape}; pass "
                        f"values of the same users.")
    d = (a - b).reshape(a.shape[0], -1)
    nu = d.shape[0]
    out = {"diff": d.mean(axis=0), "n_users": nu, "p_draws": None}
    nan = np.full(d.shape[1], np.nan)
    if _too_few(nu, "paired_difference"):
        out.update(ci_low=nan, ci_high=nan.copy(), p_value=nan.copy())
        return out
    rng = _rng(seed)
    if ci is not None:
        lo, hi = bootstrap_mean_ci(d, ci=ci, counts=resample_counts(nu, n_boot, rng))
    else:
        lo, hi = nan, nan.copy()
    p, draws = sign_flip_test(d, n_flips=n_boot, seed=rng)
    out.update(ci_low=lo, ci_high=hi, p_value=p, p_draws=draws)
    return out


def format_p_value(p: float, n_draws: int | None = None) -> str:
    """A p-value as text; at the resolution limit of a Monte Carlo test it says so.

    With ``n_draws`` random draws and the +1 correction the smallest p is
    ``1 / (n_draws + 1)``: reaching it means "p below about that", not "p equals that".

    Examples
    --------
    >>> format_p_value(0.0231)
    'p = 0.023'
    >>> format_p_value(1 / 1001, 1000)
    'p < 0.001, 1,000 draws'
    >>> format_p_value(0.0004)
    'p < 0.001'
    """
    if p is None or not np.isfinite(p):
        return "p not available"
    if n_draws is not None and p <= 1.0 / (int(n_draws) + 1) + 1e-12:
        limit = 1.0 / int(n_draws)
        return f"p < {_fmt_limit(limit)}, {int(n_draws):,} draws"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def _fmt_limit(x: float) -> str:
    digits = max(3, -int(math.floor(math.log10(x))))
    return f"{x:.{digits}f}".rstrip("0").rstrip(".")


def pair_wins(a, b, ties: str = "half") -> np.ndarray:
    """Per pair: 1 if ``a > b``, 0 if ``a < b``, and a tie 1/2 (``"half"``) or 0 (``"strict"``).

    The one tie rule of pairwise accuracy (RM ranking accuracy, policy accuracy) and of win
    rates. ``"half"`` (default) makes a constant scorer score the chance level 0.5;
    ``"strict"`` is the paper's ``s(chosen) > s(rejected)``, under which it scores 0.

    Examples
    --------
    >>> pair_wins([2, 1, 0], [1, 1, 3]).tolist(), pair_wins([2, 1], [1, 1], "strict").tolist()
    ([1.0, 0.5, 0.0], [1.0, 0.0])
    """
    if ties not in ("half", "strict"):
        raise ConfigError(f"ties={ties!r}; use 'half' (a tie is half a success) or 'strict' "
                          f"(the paper's s(chosen) > s(rejected)).")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise DataError(f"pair_wins: {a.size} chosen scores but {b.size} rejected scores; "
                        f"pass one of each per pair.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("pair_wins: scores contain NaN or inf; score every pair before "
                        "computing accuracies.")
    w = (a > b).astype(float)
    if ties == "half":
        w += 0.5 * (a == b)
    return w


def correlations(x, y) -> dict[str, float]:
    """Kendall tau (tau-b), Spearman rho and Pearson r of paired points (scipy).

    NaN for fewer than 3 points (no correlation rests on two) or a constant variable.

    Examples
    --------
    >>> {k: round(v, 3) for k, v in correlations([1, 2, 3, 4], [1, 3, 2, 4]).items()}
    {'kendall_tau': 0.667, 'spearman_rho': 0.8, 'pearson_r': 0.8}
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return dict.fromkeys(CORRELATIONS, float("nan"))
    return {"kendall_tau": float(stats.kendalltau(x, y).statistic),
            "spearman_rho": float(stats.spearmanr(x, y).statistic),
            "pearson_r": float(stats.pearsonr(x, y).statistic)}


def correlations_rows(x, y) -> np.ndarray:
    """:func:`correlations` of every row pair of two (n_rows, n_points) matrices, vectorised.

    Kendall tau-b as ``sum sx*sy / sqrt(sum sx^2 * sum sy^2)`` over point pairs (sx, sy the
    signs of the differences), Spearman as the Pearson r of average ranks, Pearson directly;
    the same values as scipy's. Rows with a missing point fall back to :func:`correlations`.
    Returns (n_rows, 3) in the order of :data:`CORRELATIONS`.

    Examples
    --------
    >>> correlations_rows(np.array([[1.0, 2, 3, 4]]), np.array([[1.0, 3, 2, 4]])).round(3)
    array([[0.667, 0.8  , 0.8  ]])
    """
    from scipy.stats import rankdata

    x, y = np.atleast_2d(np.asarray(x, dtype=float)), np.atleast_2d(np.asarray(y, dtype=float))
    out = np.full((x.shape[0], 3), np.nan)
    n = x.shape[1]
    if n < 3:
        return out
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    for r in np.flatnonzero(~ok):
        out[r] = [correlations(x[r], y[r])[k] for k in CORRELATIONS]
    xs, ys = x[ok], y[ok]
    if not len(xs):
        return out

    def pearson(a, b):
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)

    i, j = np.triu_indices(n, 1)
    sx, sy = np.sign(xs[:, i] - xs[:, j]), np.sign(ys[:, i] - ys[:, j])
    den = np.sqrt((sx * sx).sum(axis=1) * (sy * sy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(den > 0, (sx * sy).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)
    rho = pearson(rankdata(xs, axis=1), rankdata(ys, axis=1))
    res = np.column_stack([tau, rho, pearson(xs, ys)])
    const = (np.ptp(xs, axis=1) == 0) | (np.ptp(ys, axis=1) == 0)
    res[const] = np.nan
    out[ok] = np.clip(res, -1.0, 1.0)
    return out


def bootstrap_correlations(x_user, y_user, *, ci: float | None = 0.95, n_boot: int = 1000,
                           seed=0, counts: np.ndarray | None = None) -> dict:
    """Correlation across points whose coordinates are means over users, with its interval.

    Parameters
    ----------
    x_user, y_user : array (n_users, n_points)
        Per-user values of the two variables at every point (a method, a reward model); NaN =
        missing. A user counts for a point only where both values exist. Each point's
        coordinates are the means over its users; each resample redraws the users (shared by
        every point and both variables) and recomputes the means and the correlations.
    ci : float or None, default 0.95
    n_boot, seed, counts
        As in :func:`bootstrap_mean_ci`.

    Returns
    -------
    dict
        ``estimate``, ``ci_low``, ``ci_high`` (dicts over :data:`CORRELATIONS`), ``n_points``
        (points with at least one user) and ``n_users`` (users with a value somewhere), and
        ``replicates`` (n_boot, 3) (None without ``ci``).

    Examples
    --------
    >>> x = np.array([[1.0, 2, 3, 4]] * 6)
    >>> r = bootstrap_correlations(x, x[:, ::-1], n_boot=50)
    >>> r["estimate"]["kendall_tau"], r["ci_low"]["kendall_tau"], r["n_points"]
    (-1.0, -1.0, 4)
    """
    x = np.asarray(x_user, dtype=float)
    y = np.asarray(y_user, dtype=float)
    if x.shape != y.shape or x.ndim != 2:
        raise DataError(f"bootstrap_correlations: x_user {x.shape} and y_user {y.shape} must "
                        f"be matrices of the same shape (users x points).")
    both = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(both, x, np.nan), np.where(both, y, np.nan)
    ones = np.ones((1, x.shape[0]))
    mx, my = weighted_means(ones, x)[0], weighted_means(ones, y)[0]
    points = np.isfinite(mx)
    n_users = int(both.any(axis=1).sum())
    out = {"estimate": correlations(mx[points], my[points]), "n_points": int(points.sum()),
           "n_users": n_users, "replicates": None}
    nan = dict.fromkeys(CORRELATIONS, float("nan"))
    out["ci_low"], out["ci_high"] = dict(nan), dict(nan)
    if ci is None or out["n_points"] < 3:
        return out
    if _too_few(n_users, "bootstrap_correlations"):
        return out
    if counts is None:
        counts = resample_counts(x.shape[0], n_boot, seed)
    bx, by = weighted_means(counts, x), weighted_means(counts, y)
    reps = correlations_rows(bx[:, points], by[:, points])
    lo, hi = percentile_interval(reps, ci)
    out["ci_low"] = dict(zip(CORRELATIONS, map(float, lo), strict=True))
    out["ci_high"] = dict(zip(CORRELATIONS, map(float, hi), strict=True))
    out["replicates"] = reps
    return out


def correlation_difference(x_user, z_user, y_user, *, ci: float = 0.95, n_boot: int = 1000,
                           seed=0) -> dict:
    """corr(x, y) - corr(z, y) across points, on the same points and the same user resamples.

    Answers "does predictor x track outcome y better than predictor z?" (e.g. rho_eff against
    ranking accuracy as predictors of generation quality across reward models). Only points
    where all three have a value for a user are used; one resample matrix serves both
    correlations, so the interval of the difference is paired.

    Parameters
    ----------
    x_user, z_user, y_user : array (n_users, n_points)
        Per-user values of the two predictors and the outcome at every point; NaN = missing.
    ci, n_boot, seed
        As in :func:`bootstrap_correlations`.

    Returns
    -------
    dict
        ``x``, ``z`` (the :func:`bootstrap_correlations` results of each predictor),
        ``difference``, ``ci_low``, ``ci_high`` (dicts over :data:`CORRELATIONS`),
        ``n_points``, ``n_users``.

    Examples
    --------
    >>> y = np.tile(np.arange(5.0), (6, 1))
    >>> r = correlation_difference(y, -y, y, n_boot=50)
    >>> r["difference"]["pearson_r"], r["ci_low"]["pearson_r"]
    (2.0, 2.0)
    """
    x, z, y = (np.asarray(a, dtype=float) for a in (x_user, z_user, y_user))
    if not (x.shape == z.shape == y.shape) or x.ndim != 2:
        raise DataError(f"correlation_difference: x_user {x.shape}, z_user {z.shape} and "
                        f"y_user {y.shape} must be matrices of one shape (users x points).")
    all3 = np.isfinite(x) & np.isfinite(z) & np.isfinite(y)
    x, z, y = (np.where(all3, a, np.nan) for a in (x, z, y))
    counts = resample_counts(x.shape[0], n_boot, seed)
    rx = bootstrap_correlations(x, y, ci=ci, counts=counts)
    rz = bootstrap_correlations(z, y, ci=ci, counts=counts)
    diff = {k: rx["estimate"][k] - rz["estimate"][k] for k in CORRELATIONS}
    nan = dict.fromkeys(CORRELATIONS, float("nan"))
    out = {"x": rx, "z": rz, "difference": diff, "ci_low": dict(nan), "ci_high": dict(nan),
           "n_points": rx["n_points"], "n_users": rx["n_users"]}
    if rx["replicates"] is not None and rz["replicates"] is not None:
        lo, hi = percentile_interval(rx["replicates"] - rz["replicates"], ci)
        out["ci_low"] = dict(zip(CORRELATIONS, map(float, lo), strict=True))
        out["ci_high"] = dict(zip(CORRELATIONS, map(float, hi), strict=True))
    return out
