"""Exact Best-of-N expectations over every N-subset of each query's candidate pool.

For a query with a pool of M candidates sorted by predicted score (rank k = 1 is the best), the
chance that the candidate at rank k is the one chosen from a uniformly random N-subset is
``C(M - k, N - 1) / C(M, N)``: it must be in the subset and the other N - 1 members must all
rank below it. The expected true reward of Best-of-N is the weighted sum of the rewards under
these weights. Candidates with tied scores are broken uniformly at random, which is the same as
giving every member of a tied group the group's mean reward. No Monte Carlo, no seed.

The whole table is processed in one vectorised pass: one sort by (query, score), one weight
vector per N, one ``bincount`` per N. Population utility is the paper's average: the mean over
users of each user's mean over queries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from .table import SPECIAL_SELECTORS, Prepared, ScoreTableError, prepare, validate_score_table


def _as_int_ns(ns) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(ns))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"ns must be a non-empty 1-D list of candidate counts; got {ns!r}.")
    if not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ValueError(f"ns must be whole numbers >= 1 (candidates per query); got {list(arr)}.")
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
    m = np.asarray(pool_size, dtype=float)
    k = np.asarray(rank, dtype=float)
    n = np.asarray(n, dtype=float)
    below = m - 1.0 - k  # candidates ranked below this one
    ok = below >= n - 1.0
    below_ok = np.where(ok, below, n - 1.0)
    log_w = (
        gammaln(below_ok + 1.0) - gammaln(n) - gammaln(below_ok - n + 2.0)
        - (gammaln(m + 1.0) - gammaln(n + 1.0) - gammaln(m - n + 1.0))
    )
    return np.where(ok, np.exp(log_w), 0.0)


def _query_utilities(prep: Prepared, scores: np.ndarray | str, ns: np.ndarray,
                     pool: str) -> np.ndarray:
    """Exact expected reward of Best-of-N for every query: array (n_queries, len(ns))."""
    q, r, sizes = prep.q_codes, prep.reward, prep.pool_sizes
    nq = prep.n_queries
    out = np.empty((nq, len(ns)))
    if isinstance(scores, str) and scores == "random":
        mean = np.bincount(q, weights=r, minlength=nq) / sizes
        out[:] = mean[:, None]
        return out
    s = r if isinstance(scores, str) else scores  # "oracle" selects by the reward itself
    order = np.lexsort((-s, q))
    q_sorted = q[order]
    s_sorted = s[order]
    r_sorted = r[order]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.arange(len(q_sorted)) - starts[q_sorted]
    # Tied scores: each member of a tied group gets the group's mean reward.
    new_group = np.ones(len(q_sorted), dtype=bool)
    new_group[1:] = (q_sorted[1:] != q_sorted[:-1]) | (s_sorted[1:] != s_sorted[:-1])
    gid = np.cumsum(new_group) - 1
    if gid[-1] + 1 < len(gid):  # only pay for the averaging when ties exist
        r_sorted = (np.bincount(gid, weights=r_sorted) / np.bincount(gid))[gid]
    # Weights depend only on (pool size, rank, N), and tables have few distinct pool sizes: build
    # a small lookup table per N and index it, instead of evaluating gammaln on every row.
    pool_sizes = np.unique(sizes)
    size_slot = np.zeros(pool_sizes.max() + 1, dtype=np.int64)
    size_slot[pool_sizes] = np.arange(pool_sizes.size)
    offsets = np.concatenate(([0], np.cumsum(pool_sizes)[:-1]))
    lut_m = np.repeat(pool_sizes, pool_sizes)
    lut_k = np.arange(lut_m.size) - np.repeat(offsets, pool_sizes)
    row_slot = offsets[size_slot[sizes[q_sorted]]] + rank
    for j, n in enumerate(ns):
        n_lut = np.minimum(n, lut_m) if pool == "clip" else n
        w = selection_weights(lut_m, lut_k, n_lut)[row_slot]
        out[:, j] = np.bincount(q_sorted, weights=w * r_sorted, minlength=nq)
    return out


def _check_pool(prep: Prepared, ns: np.ndarray, pool: str) -> None:
    if pool not in ("error", "clip"):
        raise ValueError(f"pool must be 'error' or 'clip'; got {pool!r}.")
    if pool == "clip":
        return
    smallest = int(prep.pool_sizes.min())
    too_big = ns[ns > smallest]
    if too_big.size:
        n = int(too_big.min())
        n_small = int((prep.pool_sizes < n).sum())
        example = prep.query_ids[int(np.argmin(prep.pool_sizes))]
        raise ScoreTableError(
            f"N={n} is larger than the candidate pool of {n_small} query(ies) (smallest pool: "
            f"{smallest} candidates, query_id {example!r}). Use ns <= {smallest}, or pass "
            f"pool='clip' to use the whole pool when N exceeds it."
        )


def _selector_values(table: pd.DataFrame, score) -> tuple[str, np.ndarray | str]:
    if isinstance(score, str):
        if score in SPECIAL_SELECTORS:
            return score, score
        return score, table[score].to_numpy(dtype=float)
    raise TypeError(
        f"score must be a column name, 'oracle' or 'random'; got {type(score).__name__}. To "
        f"evaluate a derived selector, add it as a column: table.assign(score_new=...)."
    )


def _score_queries(table: pd.DataFrame, score: str, ns: np.ndarray, pool: str):
    """The shared core of every public entry point: (selector name, Prepared, utilities)."""
    prep = prepare(table)
    _check_pool(prep, ns, pool)
    name, values = _selector_values(table, score)
    return name, prep, _query_utilities(prep, values, ns, pool)


def bon_per_query(table: pd.DataFrame, score: str, ns, *, split: str | None = "val",
                  pool: str = "error", validate: bool = True) -> pd.DataFrame:
    """Exact expected Best-of-N reward of every query.

    Parameters
    ----------
    table : pandas.DataFrame
        A score table (see :mod:`ttp_diag.table`).
    score : str
        Score column to select by, ``"oracle"`` (select by the reward) or ``"random"``.
    ns : sequence of int
        Candidate counts N.
    split : str or None, default "val"
        Split to analyse when the table has a ``split`` column.
    pool : {"error", "clip"}, default "error"
        What to do when N exceeds a query's pool: raise, or use the whole pool.
    validate : bool, default True
        Validate the table first (skip only for tables that were validated already).

    Returns
    -------
    pandas.DataFrame
        Columns ``selector``, ``user_id``, ``query_id``, ``n``, ``utility``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"user_id": "u", "query_id": "q", "cand_id": [0, 1, 2],
    ...                   "reward": [0.0, 0.3, 0.6], "score_a": [3.0, 2.0, 1.0]})
    >>> bon_per_query(t, "score_a", [1, 2, 3])["utility"].round(3).tolist()
    [0.3, 0.1, 0.0]
    """
    ns = _as_int_ns(ns)
    if validate:
        table = validate_score_table(table, scores=[score], split=split)
    name, prep, util = _score_queries(table, score, ns, pool)
    nq, nn = util.shape
    return pd.DataFrame({
        "selector": name,
        "user_id": np.repeat(prep.user_ids[prep.user_of_query], nn),
        "query_id": np.repeat(prep.query_ids, nn),
        "n": np.tile(ns, nq),
        "utility": util.ravel(),
    })


def _user_sums(prep: Prepared, util: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-user sum of query utilities (n_users, len(ns)) and query counts (n_users,).

    Sums and counts add up across partitions of a table that keep each user's queries whole,
    which is how :func:`bon_curve_dataset` reuses this engine unchanged.
    """
    counts = np.bincount(prep.user_of_query, minlength=prep.n_users).astype(float)
    sums = np.stack([np.bincount(prep.user_of_query, weights=util[:, j], minlength=prep.n_users)
                     for j in range(util.shape[1])], axis=1)
    return sums, counts


def _user_means(prep: Prepared, util: np.ndarray) -> np.ndarray:
    """Per-user mean over queries: array (n_users, len(ns))."""
    sums, counts = _user_sums(prep, util)
    return sums / counts[:, None]


def bootstrap_user_ci(per_user: np.ndarray, *, level: float = 0.95, n_boot: int = 1000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over users, resampling users with replacement.

    ``per_user`` is an array (n_users, k); returns (low, high), each of length k.
    """
    if not 0 < level < 1:
        raise ValueError(f"ci must be a confidence level in (0, 1), e.g. 0.95; got {level}.")
    n_users = per_user.shape[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=n_boot)
    boots = counts @ per_user / n_users
    tail = (1.0 - level) / 2.0
    return np.quantile(boots, tail, axis=0), np.quantile(boots, 1.0 - tail, axis=0)


def bon_curve(table: pd.DataFrame, score: str, ns, *, split: str | None = "val",
              per_user: bool = False, ci: float | None = None, n_boot: int = 1000,
              seed: int = 0, pool: str = "error", validate: bool = True) -> pd.DataFrame:
    """Exact expected Best-of-N utility curve of a selector.

    Parameters
    ----------
    table : pandas.DataFrame
        A score table (see :mod:`ttp_diag.table`).
    score : str
        Score column (``"score_det"``), ``"oracle"`` or ``"random"``.
    ns : sequence of int
        Candidate counts N, e.g. ``[1, 5, 10, 15, 20, 30]``.
    split : str or None, default "val"
        Split to analyse when the table has a ``split`` column.
    per_user : bool, default False
        Return each user's curve (mean over the user's queries) instead of the population's.
    ci : float, optional
        Confidence level (e.g. 0.95) of a percentile bootstrap over users, resampling users with
        replacement; adds ``ci_low`` and ``ci_high``. Ignored with ``per_user=True``.
    n_boot, seed : int
        Bootstrap replicates and seed (the curve itself is exact and needs no seed).
    pool : {"error", "clip"}, default "error"
        N larger than a query's pool raises an error naming N and the pool size; ``"clip"``
        uses the whole pool for such queries (short-form pools shrink after de-duplication).
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
    if validate:
        table = validate_score_table(table, scores=[score], split=split)
    name, prep, util = _score_queries(table, score, ns, pool)
    users = _user_means(prep, util)
    if per_user:
        return pd.DataFrame({
            "selector": name,
            "user_id": np.repeat(prep.user_ids, len(ns)),
            "n": np.tile(ns, prep.n_users),
            "utility": users.ravel(),
        })
    out = pd.DataFrame({"selector": name, "n": ns, "utility": users.mean(axis=0)})
    if ci is not None:
        low, high = bootstrap_user_ci(users, level=ci, n_boot=n_boot, seed=seed)
        out["ci_low"] = low
        out["ci_high"] = high
    return out


def bon_curves(table: pd.DataFrame, scores, ns, **kwargs) -> pd.DataFrame:
    """:func:`bon_curve` for several selectors, stacked into one tidy frame.

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=4, n_queries=3, n_candidates=8, seed=1)
    >>> sorted(bon_curves(t, ["random", "oracle"], [1, 8])["selector"].unique())
    ['oracle', 'random']
    """
    if isinstance(scores, str):
        scores = [scores]
    split = kwargs.pop("split", "val")
    table = validate_score_table(table, scores=list(scores), split=split)
    return pd.concat([bon_curve(table, s, ns, split=None, validate=False, **kwargs)
                      for s in scores], ignore_index=True)


def bon_curve_dataset(source, score: str, ns, *, split: str | None = "val",
                      users_per_chunk: int = 50_000, pool: str = "error",
                      progress: bool = False) -> pd.DataFrame:
    """:func:`bon_curve` for a Parquet file or dataset too large for memory.

    Reads the ``user_id`` column first, then the table in chunks of whole users (a query belongs
    to one user, so every chunk holds whole queries), runs the same exact engine on each chunk and
    adds the per-user sums. The result equals ``bon_curve(pd.read_parquet(source), ...)``.

    Parameters
    ----------
    source : str, path or pyarrow.dataset.Dataset
        A Parquet file, a directory of Parquet files, or a dataset.
    score, ns, split, pool
        As in :func:`bon_curve`.
    users_per_chunk : int
        Users read at once; memory grows with it.
    progress : bool
        Print one line per chunk.

    Returns
    -------
    pandas.DataFrame
        Columns ``selector``, ``n``, ``utility``.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    ns = _as_int_ns(ns)
    dataset = source if isinstance(source, ds.Dataset) else ds.dataset(str(source),
                                                                       format="parquet")
    names = set(dataset.schema.names)
    columns = ["user_id", "query_id", "cand_id", "reward"]
    if score not in SPECIAL_SELECTORS:
        columns.append(score)
    if split is not None and "split" in names:
        columns.append("split")
    missing = [c for c in columns if c not in names]
    if missing:
        raise ScoreTableError(f"dataset is missing column(s) {missing}; it has "
                              f"{sorted(names)}.")
    users = pd.unique(dataset.to_table(columns=["user_id"]).column("user_id").to_pandas())
    total_sums, total_counts = None, 0.0
    n_chunks = (len(users) + users_per_chunk - 1) // users_per_chunk
    for i in range(n_chunks):
        chunk_users = users[i * users_per_chunk:(i + 1) * users_per_chunk]
        flt = pc.field("user_id").isin(list(chunk_users))
        part = dataset.to_table(columns=columns, filter=flt).to_pandas()
        try:
            part = validate_score_table(part, scores=[score], split=split)
        except ScoreTableError as exc:
            if "no rows with split" in str(exc):
                continue  # this chunk's users have no rows of the requested split
            raise
        _, prep, util = _score_queries(part, score, ns, pool)
        sums, counts = _user_sums(prep, util)
        means = sums / counts[:, None]
        total_sums = means.sum(axis=0) if total_sums is None else total_sums + means.sum(axis=0)
        total_counts += len(counts)
        if progress:
            print(f"chunk {i + 1}/{n_chunks}: {len(part):,} rows, {len(counts):,} users")
    if total_sums is None:
        raise ScoreTableError(f"no rows with split == {split!r} in the dataset.")
    return pd.DataFrame({"selector": score, "n": ns, "utility": total_sums / total_counts})
