"""The fast engine against the first engine (tests/_bon_reference.py), to 1e-12.

Random tables with many ties, ragged pools, N above some pools (pool="clip"), shuffled rows,
queries whose rows are not contiguous, string and integer ids; plus the exact weight table.
"""

from math import comb

import numpy as np
import pandas as pd
import pytest
from _bon_reference import reference_bon_curve, reference_query_utilities

import ttp_diag as td
from ttp_diag._bon_engine import weight_table


def random_table(rng, *, n_users=7, max_q=6, min_pool=2, max_pool=12, tie_levels=4,
                 int_ids=False, float_scores=False):
    rows = []
    for u in range(n_users):
        for q in range(int(rng.integers(1, max_q + 1))):
            m = int(rng.integers(min_pool, max_pool + 1))
            if float_scores:
                scores = rng.normal(size=m)
            else:
                scores = rng.integers(0, tie_levels, m).astype(float)  # many ties
            rewards = np.round(rng.random(m), 2)  # ties in the reward too (oracle)
            cands = rng.permutation(m) * 3 + 1  # neither 0..m-1 nor sorted
            for c in range(m):
                qid = u * 100 + q if int_ids else f"u{u}q{q}"
                uid = u if int_ids else f"u{u}"
                rows.append((uid, qid, int(cands[c]), rewards[c], scores[c]))
    return pd.DataFrame(rows, columns=["user_id", "query_id", "cand_id", "reward", "score_a"])


def scatter(table, rng):
    """Rows in an order where most queries are not contiguous."""
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def check_equal(table, ns, pool):
    for score in ("score_a", "oracle", "random"):
        pq = td.bon_per_query(table, score, ns, pool=pool)
        _, want = reference_query_utilities(table, score, ns, pool)
        np.testing.assert_allclose(pq["utility"].to_numpy(), want.ravel(), rtol=0, atol=1e-12)
        got = td.bon_curve(table, score, ns, pool=pool)["utility"].to_numpy()
        np.testing.assert_allclose(got, reference_bon_curve(table, score, ns, pool=pool),
                                   rtol=0, atol=1e-12)
        pu = td.bon_curve(table, score, ns, pool=pool, per_user=True)["utility"].to_numpy()
        np.testing.assert_allclose(
            pu, reference_bon_curve(table, score, ns, pool=pool, per_user=True).ravel(),
            rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_equals_reference_ragged_ties_clip(seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, int_ids=seed % 2 == 1, float_scores=seed % 4 == 3)
    check_equal(table, [1, 2, 3, 5, 8, 12, 40], pool="clip")
    check_equal(scatter(table, rng), [1, 2, 3, 7, 12], pool="clip")


@pytest.mark.parametrize("seed", range(4))
def test_equals_reference_equal_pools_and_row_order(seed):
    rng = np.random.default_rng(100 + seed)
    table = random_table(rng, min_pool=9, max_pool=9, n_users=11, int_ids=seed % 2 == 0)
    ns = [1, 2, 4, 9]
    check_equal(table, ns, pool="error")
    shuffled = scatter(table, rng)
    check_equal(shuffled, ns, pool="error")
    # row order never changes the answer
    a = td.bon_per_query(table, "score_a", ns)
    b = td.bon_per_query(shuffled, "score_a", ns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-12)


def test_non_contiguous_query_and_non_default_index():
    t = random_table(np.random.default_rng(5), n_users=3, max_q=3)
    # move one query's first row to the end: that query is split in two runs
    q0 = t.index[t["query_id"] == t["query_id"].iloc[0]][0]
    t = pd.concat([t.drop(index=q0), t.loc[[q0]]])
    t.index = np.arange(len(t))[::-1] * 7  # an index that is neither sorted nor 0..n-1
    check_equal(t, [1, 2, 5], pool="clip")


def test_large_pool_against_reference():
    rng = np.random.default_rng(3)
    m = 700
    t = pd.DataFrame({"user_id": np.repeat(["a", "b"], m), "query_id": np.repeat(["qa", "qb"], m),
                      "cand_id": np.tile(np.arange(m), 2), "reward": rng.random(2 * m),
                      "score_a": np.round(rng.normal(size=2 * m), 1)})
    check_equal(t, [1, 2, 10, 100, 350, 700], pool="error")


def test_weight_table_is_exact():
    for m in (1, 2, 7, 30):
        ns = tuple(range(1, m + 3))
        w = weight_table(m, ns, True)
        for j, n in enumerate(ns):
            n = min(n, m)
            want = [comb(m - 1 - k, n - 1) / comb(m, n) for k in range(m)][::-1]
            np.testing.assert_array_equal(w[:, j], want)  # bit-exact, ascending positions
            assert w[:, j].sum() == pytest.approx(1.0, abs=1e-15)
    assert not weight_table(5, (6,), False).any()


def test_score_table_reused_equals_dataframe():
    t = td.simulate_score_table(n_users=9, n_queries=4, n_candidates=10, seed=2)
    st = td.ScoreTable(t)
    for s in ("score_det", "score_prob", "oracle", "random"):
        pd.testing.assert_frame_equal(td.bon_curve(st, s, [1, 3, 10]),
                                      td.bon_curve(t, s, [1, 3, 10]))
    pd.testing.assert_frame_equal(td.bon_curves(st, ["oracle", "score_det"], [1, 5]),
                                  td.bon_curves(t, ["oracle", "score_det"], [1, 5]))
