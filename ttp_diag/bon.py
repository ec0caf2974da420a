"""Exact Best-of-N expectations over every N-subset of each query's candidate pool.

For a query with a pool of M candidates sorted by predicted score (rank k = 1 is the best), the
chance that the candidate at rank k is the one chosen from a uniformly random N-subset is
``C(M - k, N - 1) / C(M, N)``: it must be in the subset and the other N - 1 members must all
rank below it. The expected true reward of Best-of-N is the weighted sum of the rewards under
these weights. Candidates with tied scores are broken uniformly at random, which is the same as
giving every member of a tied group the group's mean reward. No Monte Carlo, no seed.

The engine (:mod:`ttp_diag._bon_engine`) sorts each query's pool on its own, as rows of a
queries x pool-size matrix, and answers every N with one matrix product; the table is validated
and laid out once as a :class:`~ttp_diag.table.ScoreTable`, which every function here accepts in
place of a DataFrame. Population utility is the paper's average: the mean over users of each
user's mean over queries. :func:`ttp_diag.bon_curve_dataset` (in :mod:`ttp_diag.dataset`)
streams a Parquet file through the same engine.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError, ConfigTypeError

from ._bon_engine import check_pool, query_utilities, user_sums
from ._checks import check_ci, check_n_boot, check_names, check_seed
from .stats import MIN_USERS_FOR_CI, bootstrap_mean_ci
from .table import ScoreTable, as_score_table

__all__ = ["MIN_USERS_FOR_CI", "selection_weights", "bon_per_query", "bootstrap_user_ci",
           "bon_curve", "bon_curves"]


def _as_int_ns(ns) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(ns))
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(f"ns must be a non-empty 1-D list of candidate counts; got {ns!r}.")
    if not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ConfigError(f"ns must be whole numbers >= 1 (candidates per query); got {list(arr)}.")
    return arr.astype(np.int64)


def selection_weights(pool_size, rank, n) -> np.ndarray:
    """Probability that the candidate at 0-based ``rank`` of a pool is chosen by Best-of-``n``.

    ``C(pool_size - 1 - rank, n - 1) / C(pool_size, n)``, vectorised over arrays of equal shape;
    0 where the candidate cannot be the best of any n-subset.

    Examples
    --------
    >>> selection_weights(4, np.arange(4), 2)  # 3/6, 2/6, 1/6, 0
    array([0.5       , 0.33333333, 0.16666667, 0.        ])
    """
    from scipy.special import gammaln  # lazily: scipy.special costs ~70 ms at import

    m = np.asarray(pool_size, dtype=float)
    k = np.asarray(rank, dtype=float)
    n = np.asarray(n, dtype=float)
    for name, v, lo in (("pool_size", m, 1), ("n", n, 1), ("rank", k, 0)):
        if v.size and not (np.all(np.isfinite(v)) and np.all(v == np.round(v))
                           and np.all(v >= lo)):
            from .exceptions import ConfigError

            raise ConfigError(f"selection_weights: {name} must be whole numbers >= {lo}; got "
                              f"{np.unique(v)[:5].tolist()}.")
    if k.size and m.size and np.any(np.broadcast_to(k >= m, np.broadcast(k, m).shape)):
        from .exceptions import ConfigError

        raise ConfigError("selection_weights: rank must be below pool_size (0-based ranks of "
                          "the pool's candidates).")
    below = m - 1.0 - k  # candidates ranked below this one
    ok = below >= n - 1.0
    below_ok = np.where(ok, below, n - 1.0)
    log_w = (
        gammaln(below_ok + 1.0) - gammaln(n) - gammaln(below_ok - n + 2.0)
        - (gammaln(m + 1.0) - gammaln(n + 1.0) - gammaln(m - n + 1.0))
    )
    return np.where(ok, np.exp(log_w), 0.0)


def _score_queries(table, score, ns: np.ndarray, *, split, pool: str | None, validate: bool):
    """The shared core of every public entry point: (selector name, ScoreTable, utilities).

    ``pool=None`` is the package's one pool rule (also :class:`ttp_diag.BestOfN`'s, through
    :func:`ttp_diag.bestofn.resolve_pool`): ``"clip"`` exactly when some N exceeds the
    smallest pool, else ``"error"``.
    """
    if not isinstance(score, str):
        raise ConfigTypeError(
            f"score must be a column name, 'oracle' or 'random'; got {type(score).__name__}. To "
            f"evaluate a derived selector, add it as a column: table.assign(score_new=...)."
        )
    # validate=False has always meant "this table is checked and filtered already".
    st = as_score_table(table, scores=[score], split=split if validate else None,
                        validate=validate)
    if pool is None:
        pool = "clip" if int(np.max(ns)) > int(st.pool_sizes.min()) else "error"
    check_pool(st, ns, pool)
    return score, st, query_utilities(st, score, ns, pool)


def bon_per_query(table: pd.DataFrame | ScoreTable, score: str, ns, *,
                  split: str | None = "val", pool: str | None = None,
                  validate: bool = True) -> pd.DataFrame:
    """Exact expected Best-of-N reward of every query.

    Parameters
    ----------
    table : pandas.DataFrame or ScoreTable
        A score table (see :mod:`ttp_diag.table`).
    score : str
        Score column to select by, ``"oracle"`` (select by the reward) or ``"random"``.
    ns : sequence of int
        Candidate counts N.
    split : str or None, default "val"
        Split to analyse when the table has a ``split`` column.
    pool : {"error", "clip"}, optional
        What to do when N exceeds a query's pool: raise, or use the whole pool; default (None):
        ``"clip"`` exactly when some N exceeds the smallest pool (the rule of
        :class:`ttp_diag.BestOfN`).
    validate : bool, default True
        Validate the table first (skip only for tables that were validated already).

    Returns
    -------
    pandas.DataFrame
        Columns ``selector``, ``user_id``, ``query_id``, ``n``, ``utility``; queries in sorted
        ``query_id`` order.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"user_id": "u", "query_id": "q", "cand_id": [0, 1, 2],
    ...                   "reward": [0.0, 0.3, 0.6], "score_a": [3.0, 2.0, 1.0]})
    >>> bon_per_query(t, "score_a", [1, 2, 3])["utility"].round(3).tolist()
    [0.3, 0.1, 0.0]
    """
    ns = _as_int_ns(ns)
    name, st, util = _score_queries(table, score, ns, split=split, pool=pool, validate=validate)
    nq, nn = util.shape
    return pd.DataFrame({
        "selector": name,
        "user_id": np.repeat(st.user_ids[st.user_of_query], nn),
        "query_id": np.repeat(st.query_ids, nn),
        "n": np.tile(ns, nq),
        "utility": util.ravel(),
    })


def bootstrap_user_ci(per_user: np.ndarray, *, ci: float = 0.95, n_boot: int = 1000,
                      seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over users, resampling users with replacement.

    ``per_user`` is an array (n_users, k); returns (low, high), each of length k. With fewer
    than ``MIN_USERS_FOR_CI`` (5) users a resampling interval would claim a precision the data
    cannot give (one user: zero width), so both bounds are NaN and a RuntimeWarning says why.
    The statistics live in :func:`ttp_diag.stats.bootstrap_mean_ci`; this name is kept for
    existing callers.

    Examples
    --------
    >>> low, high = bootstrap_user_ci(np.arange(10.0)[:, None], ci=0.9, n_boot=200)
    >>> bool(low[0] < 4.5 < high[0])
    True
    """
    ci = check_ci(ci, allow_none=False)
    n_boot = check_n_boot(n_boot, ci=ci)
    seed = check_seed(seed)
    return bootstrap_mean_ci(per_user, ci=ci, n_boot=n_boot, seed=seed,
                             what="bootstrap_user_ci")


def bon_curve(table: pd.DataFrame | ScoreTable, score: str, ns, *, split: str | None = "val",
              per_user: bool = False, ci: float | None = None, n_boot: int = 1000,
              seed: int | None = 0, pool: str | None = None,
              validate: bool = True) -> pd.DataFrame:
    """Exact expected Best-of-N utility curve of a selector.

    Parameters
    ----------
    table : pandas.DataFrame or ScoreTable
        A score table (see :mod:`ttp_diag.table`); pass a :class:`ScoreTable` to analyse one
        table many times without validating it again.
    score : str
        Score column (``"score_det"``), ``"oracle"`` or ``"random"``.
    ns : sequence of int
        Candidate counts N, e.g. ``[1, 5, 10, 15, 20, 30]``.
    split : str or None, default "val"
        Split to analyse when the table has a ``split`` column.
    per_user : bool, default False
        Return each user's curve (mean over the user's queries) instead of the population's.
    ci : float, optional
        Confidence level in (0, 1) (e.g. 0.95) of a percentile bootstrap over users, resampling
        users with replacement; adds ``ci_low`` and ``ci_high`` (NaN, with a warning, for fewer
        than 5 users). Ignored with ``per_user=True``.
    n_boot, seed : int
        Bootstrap replicates and seed (the curve itself is exact and needs no seed).
    pool : {"error", "clip"}, optional
        ``"error"``: N larger than a query's pool raises an error naming N and the pool size;
        ``"clip"`` uses the whole pool for such queries (short-form pools shrink after
        de-duplication). Default (None): ``"clip"`` exactly when some N exceeds the smallest
        pool, the rule :class:`ttp_diag.BestOfN` uses too.
    validate : bool, default True
        Validate the table first.

    Returns
    -------
    pandas.DataFrame
        Columns ``selector``, ``n``, ``utility`` (+ ``ci_low``, ``ci_high``); with
        ``per_user=True`` columns ``selector``, ``user_id``, ``n``, ``utility``.

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=4, n_queries=3, n_candidates=8, seed=1)
    >>> curve = bon_curve(t, "oracle", [1, 4, 8])
    >>> bool(curve["utility"].is_monotonic_increasing)
    True
    """
    ns = _as_int_ns(ns)
    ci = check_ci(ci)
    if ci is not None:
        n_boot, seed = check_n_boot(n_boot, ci=ci), check_seed(seed)
    name, st, util = _score_queries(table, score, ns, split=split, pool=pool, validate=validate)
    sums, counts = user_sums(st, util)
    users = sums / counts[:, None]
    if per_user:
        return pd.DataFrame({
            "selector": name,
            "user_id": np.repeat(st.user_ids, len(ns)),
            "n": np.tile(ns, st.n_users),
            "utility": users.ravel(),
        })
    out = pd.DataFrame({"selector": name, "n": ns, "utility": users.mean(axis=0)})
    if ci is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # re-raised below at the caller
            low, high = bootstrap_user_ci(users, ci=ci, n_boot=n_boot, seed=seed)
        if st.n_users < MIN_USERS_FOR_CI:
            warnings.warn(
                f"bon_curve({name!r}, ci={ci}): {st.n_users} user(s) are too few for a bootstrap "
                f"interval over users (need {MIN_USERS_FOR_CI}); ci_low and ci_high are NaN. "
                f"Analyse more users, or pass ci=None.", RuntimeWarning, stacklevel=2)
        out["ci_low"] = low
        out["ci_high"] = high
    return out


def bon_curves(table: pd.DataFrame | ScoreTable, scores, ns, **kwargs) -> pd.DataFrame:
    """:func:`bon_curve` for several selectors, stacked into one tidy frame.

    The table is validated and laid out once, then every selector reuses it.

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=4, n_queries=3, n_candidates=8, seed=1)
    >>> sorted(bon_curves(t, ["random", "oracle"], [1, 8])["selector"].unique())
    ['oracle', 'random']
    """
    scores = check_names(scores, "scores", what="selector")
    split = kwargs.pop("split", "val")
    validate = kwargs.pop("validate", True)
    st = as_score_table(table, scores=list(scores), split=split if validate else None,
                        validate=validate)
    return pd.concat([bon_curve(st, s, ns, split=None, validate=validate, **kwargs)
                      for s in scores], ignore_index=True)
