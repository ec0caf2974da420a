"""The first exact Best-of-N engine, kept verbatim as the reference the fast engine is tested to.

One global ``lexsort`` by (query, -score), one weight vector per N from ``gammaln``, one
``bincount`` per N. It is simple enough to check by eye and was itself pinned to brute-force
enumeration of every N-subset (tests/test_bon.py); :mod:`ttp_diag._bon_engine` must equal it to
1e-12 (tests/test_bon_engine.py). Test code: not shipped in the package; no validation here
(the tests pass valid tables).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# gammaln, as first written
from ttp_diag.bon import selection_weights as reference_selection_weights
from ttp_diag.table import Prepared


def reference_prepare(table: pd.DataFrame) -> Prepared:
    """Integer codes of a table, as the first engine built them (queries and users sorted)."""
    q_codes, query_ids = pd.factorize(table["query_id"], sort=True)
    q_codes = q_codes.astype(np.int64, copy=False)
    users = table["user_id"].to_numpy()
    first_row = np.zeros(len(query_ids), dtype=np.int64)
    first_row[q_codes] = np.arange(len(q_codes))
    u_codes_q, user_ids = pd.factorize(pd.Series(users[first_row]), sort=True)
    return Prepared(
        q_codes=q_codes,
        query_ids=np.asarray(query_ids),
        user_of_query=u_codes_q.astype(np.int64, copy=False),
        user_ids=np.asarray(user_ids),
        reward=table["reward"].to_numpy(dtype=float),
        pool_sizes=np.bincount(q_codes, minlength=len(query_ids)),
    )


def reference_query_utilities(table: pd.DataFrame, score: str, ns, pool: str = "error"):
    """(Prepared, utilities (n_queries, len(ns))) with queries in sorted query_id order."""
    prep = reference_prepare(table)
    ns = np.asarray(ns, dtype=np.int64)
    q, r, sizes = prep.q_codes, prep.reward, prep.pool_sizes
    nq = prep.n_queries
    out = np.empty((nq, len(ns)))
    if score == "random":
        out[:] = (np.bincount(q, weights=r, minlength=nq) / sizes)[:, None]
        return prep, out
    s = r if score == "oracle" else table[score].to_numpy(dtype=float)
    order = np.lexsort((-s, q))
    q_sorted, s_sorted, r_sorted = q[order], s[order], r[order]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.arange(len(q_sorted)) - starts[q_sorted]
    new_group = np.ones(len(q_sorted), dtype=bool)
    new_group[1:] = (q_sorted[1:] != q_sorted[:-1]) | (s_sorted[1:] != s_sorted[:-1])
    gid = np.cumsum(new_group) - 1
    if gid[-1] + 1 < len(gid):
        r_sorted = (np.bincount(gid, weights=r_sorted) / np.bincount(gid))[gid]
    pool_sizes = np.unique(sizes)
    size_slot = np.zeros(pool_sizes.max() + 1, dtype=np.int64)
    size_slot[pool_sizes] = np.arange(pool_sizes.size)
    offsets = np.concatenate(([0], np.cumsum(pool_sizes)[:-1]))
    lut_m = np.repeat(pool_sizes, pool_sizes)
    lut_k = np.arange(lut_m.size) - np.repeat(offsets, pool_sizes)
    row_slot = offsets[size_slot[sizes[q_sorted]]] + rank
    for j, n in enumerate(ns):
        n_lut = np.minimum(n, lut_m) if pool == "clip" else n
        w = reference_selection_weights(lut_m, lut_k, n_lut)[row_slot]
        out[:, j] = np.bincount(q_sorted, weights=w * r_sorted, minlength=nq)
    return prep, out


def reference_bon_curve(table: pd.DataFrame, score: str, ns, *, pool: str = "error",
                        per_user: bool = False) -> np.ndarray:
    """Population curve (len(ns),) or per-user curves (n_users, len(ns)), users sorted."""
    prep, util = reference_query_utilities(table, score, ns, pool)
    counts = np.bincount(prep.user_of_query, minlength=prep.n_users).astype(float)
    sums = np.stack([np.bincount(prep.user_of_query, weights=util[:, j], minlength=prep.n_users)
                     for j in range(util.shape[1])], axis=1)
    users = sums / counts[:, None]
    return users if per_user else users.mean(axis=0)
