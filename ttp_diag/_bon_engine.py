"""The fast exact Best-of-N engine: pools as a queries x pool-size matrix, sorted row-wise.

For a query with a pool of M candidates sorted by predicted score (rank k = 0 is the best), the
chance that rank k is the one chosen from a uniformly random N-subset is
``C(M - 1 - k, N - 1) / C(M, N)``. A :class:`~ttp_diag.table.ScoreTable` already holds each
query's rows contiguously (blocks), so instead of one global sort by (query, score):

* queries of one pool size M are viewed (equal pools: a reshape, no copy) or gathered (ragged
  pools: one fancy index per size) as a matrix of shape (queries, M), in chunks of ~256k rows so
  that temporaries stay in cache and memory stays bounded;
* each row is sorted by score (``argsort(axis=1)``: a small sort per query, no global sort);
* tied scores get their group's mean reward (only rows that have a tie are touched);
* every N is answered at once by one matrix product with the (M, len(ns)) table of selection
  weights, computed exactly from integer binomials and cached per (M, ns).

``tests/_bon_reference.py`` keeps the first engine; the tests hold this one to it at 1e-12.
"""

from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np

from ttp_diag.exceptions import ConfigError

from .table import ScoreTable, ScoreTableError

CHUNK_ROWS = 1 << 18


@lru_cache(maxsize=512)
def weight_table(m: int, ns: tuple[int, ...], clip: bool) -> np.ndarray:
    """Selection weights (m, len(ns)) by ascending score position (row m - 1 is the best).

    Exact: ``C(m - 1 - k, n - 1) / C(m, n)`` in integers, one correctly rounded division each.
    With ``clip``, N larger than the pool uses the whole pool (N = m).
    """
    w = np.zeros((m, len(ns)))
    for j, n in enumerate(ns):
        n = min(n, m) if clip else n
        if n > m:
            continue  # excluded by the pool check; an all-zero column if ever reached
        total = comb(m, n)
        c = comb(m - 1, n - 1)  # C(a, n - 1) for a = m - 1 - k, walked down exactly
        for k in range(m - n + 1):
            a = m - 1 - k
            w[a, j] = c / total  # ascending position of descending rank k is m - 1 - k
            if a > 0:
                c = c * (a - n + 1) // a
    return w


def _average_ties(r_sorted: np.ndarray, tied: np.ndarray) -> np.ndarray:
    """Replace each run of tied scores in every row by the run's mean reward."""
    new = np.ones(r_sorted.shape, dtype=bool)
    new[:, 1:] = ~tied
    gid = np.cumsum(new.ravel()) - 1
    means = np.bincount(gid, weights=r_sorted.ravel()) / np.bincount(gid)
    return means[gid].reshape(r_sorted.shape)


def _pool_utilities(s: np.ndarray, r: np.ndarray, w: np.ndarray, oracle: bool) -> np.ndarray:
    """Expected Best-of-N reward of each row of equal-size pools: (k, M) -> (k, len(ns))."""
    if oracle:  # selecting by the reward: sorted rewards, ties are equal values already
        return _weigh(np.sort(r, axis=1), w)
    r_sorted = np.take_along_axis(r, np.argsort(s, axis=1), axis=1)
    s_sorted = np.sort(s, axis=1)  # cheaper than a second take_along_axis
    tied = s_sorted[:, 1:] == s_sorted[:, :-1]
    rows = np.flatnonzero(tied.any(axis=1))
    if rows.size:
        r_sorted[rows] = _average_ties(r_sorted[rows], tied[rows])
    return _weigh(r_sorted, w)


def _weigh(r_sorted: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(k, M) @ (M, len(ns)) in slices small enough for single-threaded BLAS.

    OpenBLAS spreads a larger product over threads, which for so thin a product costs far more
    than it saves on a busy machine (28 ms against 0.1 ms per 256k rows on 2 shared cores;
    ``einsum`` without BLAS: 6 ms).
    """
    k, m = r_sorted.shape
    out = np.empty((k, w.shape[1]))
    step = max(16, _BLAS_SLICE // (m * w.shape[1]))
    for b in range(0, k, step):
        np.dot(r_sorted[b:b + step], w, out=out[b:b + step])
    return out


_BLAS_SLICE = 1 << 17  # rows x M x len(ns) per product: below OpenBLAS's threading threshold


def check_pool(st: ScoreTable, ns: np.ndarray, pool: str) -> None:
    """Refuse N larger than a pool (``pool="error"``), naming N, the pool and the fix."""
    if pool not in ("error", "clip"):
        raise ConfigError(f"pool must be 'error' or 'clip'; got {pool!r}.")
    if pool == "clip":
        return
    smallest = int(st.pool_sizes.min())
    too_big = ns[ns > smallest]
    if too_big.size:
        n = int(too_big.min())
        n_small = int((st.pool_sizes < n).sum())
        example = st.query_ids[int(np.argmin(st.pool_sizes))]
        raise ScoreTableError(
            f"N={n} is larger than the candidate pool of {n_small} query(ies) (smallest pool: "
            f"{smallest} candidates, query_id {example!r}). Use ns <= {smallest}, or pass "
            f"pool='clip' to use the whole pool when N exceeds it."
        )


def query_utilities(st: ScoreTable, score: str, ns: np.ndarray, pool: str) -> np.ndarray:
    """Exact expected reward of Best-of-N per query: (n_queries, len(ns)), sorted query order."""
    starts, sizes = st._starts, st._block_sizes
    r = st._arranged(st.reward)
    nq, nn = len(starts), len(ns)
    out = np.empty((nq, nn))
    if score == "random":
        out[st._block_rank] = (np.add.reduceat(r, starts) / sizes)[:, None]
        return out
    oracle = score == "oracle"
    s = r if oracle else st._arranged(st.values(score))
    ns_key = tuple(int(n) for n in ns)
    clip = pool == "clip"
    util = np.empty((nq, nn))
    if sizes.min() == sizes.max():  # equal pools: a reshape, no gather
        m = int(sizes[0])
        s2, r2 = s.reshape(nq, m), r.reshape(nq, m)
        w = weight_table(m, ns_key, clip)
        step = max(1, CHUNK_ROWS // m)
        for b in range(0, nq, step):
            util[b:b + step] = _pool_utilities(s2[b:b + step], r2[b:b + step], w, oracle)
    else:
        for m in np.unique(sizes):
            m = int(m)
            blocks = np.flatnonzero(sizes == m)
            w = weight_table(m, ns_key, clip)
            step = max(1, CHUNK_ROWS // m)
            cols = np.arange(m)
            for i in range(0, len(blocks), step):
                b = blocks[i:i + step]
                idx = starts[b][:, None] + cols
                util[b] = _pool_utilities(s[idx], r[idx], w, oracle)
    out[st._block_rank] = util
    return out


def user_sums(st: ScoreTable, util: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-user sum of query utilities (n_users, len(ns)) and query counts (n_users,).

    Sums and counts add up across parts of a table that keep each query whole, which is how
    :func:`ttp_diag.bon_curve_dataset` streams a file through this engine.
    """
    counts = np.bincount(st.user_of_query, minlength=st.n_users).astype(float)
    sums = np.stack([np.bincount(st.user_of_query, weights=util[:, j], minlength=st.n_users)
                     for j in range(util.shape[1])], axis=1)
    return sums, counts
