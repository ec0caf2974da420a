"""Exact Best-of-N engine against brute-force enumeration of every N-subset."""

import itertools
from math import comb

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ttp_diag as td


def brute_force_query(scores, rewards, n):
    """Average over every n-subset of the reward of its top-scored member (ties: uniform)."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(scores)), n))
    for sub in subsets:
        best = max(scores[i] for i in sub)
        tied = [rewards[i] for i in sub if scores[i] == best]
        total += sum(tied) / len(tied)
    return total / len(subsets)


def random_table(rng, n_users=3, max_q=3, min_pool=2, max_pool=7, tie_levels=3):
    rows = []
    for u in range(n_users):
        for q in range(rng.integers(1, max_q + 1)):
            m = rng.integers(min_pool, max_pool + 1)
            scores = rng.integers(0, tie_levels, m).astype(float)  # many ties
            rewards = np.round(rng.random(m), 2)
            for c in range(m):
                rows.append((f"u{u}", f"u{u}q{q}", c, rewards[c], scores[c]))
    return pd.DataFrame(rows, columns=["user_id", "query_id", "cand_id", "reward", "score_a"])


def brute_force_curve(table, n, score="score_a"):
    per_user = {}
    for (u, _q), g in table.groupby(["user_id", "query_id"]):
        s = g["reward"].tolist() if score == "oracle" else g[score].tolist()
        m = min(n, len(g))
        per_user.setdefault(u, []).append(brute_force_query(s, g["reward"].tolist(), m))
    return np.mean([np.mean(v) for v in per_user.values()])


def test_selection_weights_sum_to_one_and_match_combinatorics():
    for m in range(1, 12):
        for n in range(1, m + 1):
            w = td.selection_weights(m, np.arange(m), n)
            assert w.sum() == pytest.approx(1.0, abs=1e-12)
            expect = [comb(m - 1 - k, n - 1) / comb(m, n) for k in range(m)]
            np.testing.assert_allclose(w, expect, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_bon_curve_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng)
    ns = [1, 2, 3, 5, 7]
    for score in ("score_a", "oracle"):
        got = td.bon_curve(table, score, ns, pool="clip")["utility"].to_numpy()
        want = [brute_force_curve(table, n, score) for n in ns]
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_per_query_and_per_user_agree_with_population():
    table = random_table(np.random.default_rng(11), n_users=4)
    ns = [1, 2]
    pq = td.bon_per_query(table, "score_a", ns)
    pu = td.bon_curve(table, "score_a", ns, per_user=True)
    pop = td.bon_curve(table, "score_a", ns)
    by_user = pq.groupby(["user_id", "n"])["utility"].mean().reset_index()
    merged = by_user.merge(pu, on=["user_id", "n"])
    np.testing.assert_allclose(merged["utility_x"], merged["utility_y"])
    np.testing.assert_allclose(pu.groupby("n")["utility"].mean().to_numpy(), pop["utility"])
    assert list(pop.columns) == ["selector", "n", "utility"]


def test_random_is_the_pool_mean_and_independent_of_n():
    table = random_table(np.random.default_rng(2))
    rnd = td.bon_curve(table, "random", [1, 2])["utility"].to_numpy()
    want = table.groupby(["user_id", "query_id"])["reward"].mean().groupby("user_id").mean().mean()
    np.testing.assert_allclose(rnd, want)


def test_pool_too_small_error_names_n_and_pool():
    table = random_table(np.random.default_rng(0), min_pool=2, max_pool=3)
    with pytest.raises(td.ScoreTableError, match=r"N=4 is larger than the candidate pool.*"
                                                 r"smallest pool: 2.*pool='clip'"):
        td.bon_curve(table, "score_a", [1, 4], pool="error")
    clipped = td.bon_curve(table, "score_a", [3, 4, 50], pool="clip")["utility"].to_numpy()
    np.testing.assert_allclose(clipped[1:], clipped[0])  # every pool is used whole from N=3


def test_bootstrap_ci_brackets_the_curve_and_is_seeded():
    t = td.simulate_score_table(n_users=30, n_queries=4, n_candidates=10, seed=5)
    a = td.bon_curve(t, "score_prob", [1, 5, 10], ci=0.9, n_boot=400, seed=1)
    b = td.bon_curve(t, "score_prob", [1, 5, 10], ci=0.9, n_boot=400, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert np.all(a["ci_low"] <= a["utility"]) and np.all(a["utility"] <= a["ci_high"])
    with pytest.raises(ValueError, match="confidence level"):
        td.bon_curve(t, "score_prob", [1], ci=95)


def test_bad_ns_and_selector():
    t = random_table(np.random.default_rng(0))
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        td.bon_curve(t, "score_a", [0, 2])
    with pytest.raises(ValueError, match="whole numbers"):
        td.bon_curve(t, "score_a", [1.5])
    with pytest.raises(td.ScoreTableError, match="score column 'a' not found.*'score_a'"):
        td.bon_curve(t, "a", [1])


pools = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 20)),  # (score level, reward in 1/20)
    min_size=2, max_size=8)


def _table_from_pools(pool_list):
    rows = []
    for qi, pool in enumerate(pool_list):
        for ci, (s, r) in enumerate(pool):
            rows.append((f"u{qi % 2}", f"q{qi}", ci, r / 20.0, float(s)))
    return pd.DataFrame(rows, columns=["user_id", "query_id", "cand_id", "reward", "score_a"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pools, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_properties(pool_list, rnd):
    t = _table_from_pools(pool_list)
    t = t[t.groupby("query_id")["cand_id"].transform("size") >= 2]
    if t["score_a"].nunique() < 2:
        return  # constant score columns are rejected by design (tested elsewhere)
    m_min = int(t.groupby("query_id").size().min())
    ns = list(range(1, m_min + 1))
    base = td.bon_curve(t, "score_a", ns)["utility"].to_numpy()
    # N = 1 is random selection
    assert base[0] == pytest.approx(td.bon_curve(t, "random", [1])["utility"].iloc[0])
    # row order does not matter
    shuffled = t.sample(frac=1.0, random_state=rnd.randint(0, 10**6))
    np.testing.assert_allclose(td.bon_curve(shuffled, "score_a", ns)["utility"], base,
                               atol=1e-12)
    # strictly monotone transforms of the score do not matter
    mono = t.assign(score_a=np.exp(3 * t["score_a"]) - 7)
    np.testing.assert_allclose(td.bon_curve(mono, "score_a", ns)["utility"], base, atol=1e-12)
    # the oracle curve never decreases and dominates every selector
    orc = td.bon_curve(t, "oracle", ns)["utility"].to_numpy()
    assert np.all(np.diff(orc) >= -1e-12)
    assert np.all(orc >= base - 1e-12)
    # N = pool on equal pools: the argmax (ties averaged) of each pool
    if t.groupby("query_id").size().nunique() == 1:
        m = m_min
        full = td.bon_curve(t, "score_a", [m])["utility"].iloc[0]
        per_q = t.groupby("query_id").apply(
            lambda g: g.loc[g["score_a"] == g["score_a"].max(), "reward"].mean())
        users = t.drop_duplicates("query_id").set_index("query_id")["user_id"]
        want = per_q.groupby(users.loc[per_q.index].to_numpy()).mean().mean()
        assert full == pytest.approx(want, abs=1e-12)


def test_bon_curve_dataset_equals_in_memory(tmp_path):
    t = td.simulate_score_table(n_users=13, n_queries=3, n_candidates=6, seed=9)
    path = tmp_path / "t.parquet"
    t.to_parquet(path, row_group_size=50)
    for score in ("score_det", "oracle", "random"):
        want = td.bon_curve(t, score, [1, 3, 6])
        # batch sizes that split queries at every possible offset, and one query per batch
        for rows in (1, 5, 7, 50, 10**6):
            got = td.bon_curve_dataset(path, score, [1, 3, 6], rows_per_batch=rows)
            np.testing.assert_allclose(got["utility"], want["utility"], rtol=1e-12)
            assert list(got.columns) == ["selector", "n", "utility"]


def test_bon_curve_dataset_ragged_split_and_directory(tmp_path):
    t = random_table(np.random.default_rng(4), n_users=9, max_q=5, max_pool=9)
    t["split"] = np.where(t["query_id"].str.endswith("0"), "train", "val")
    (tmp_path / "d").mkdir()
    half = len(t) // 2
    t.iloc[:half].to_parquet(tmp_path / "d" / "part-0.parquet")  # a query may span two files
    t.iloc[half:].to_parquet(tmp_path / "d" / "part-1.parquet")
    for split in ("val", None):
        want = td.bon_curve(t, "score_a", [1, 2, 3], split=split, pool="clip")
        got = td.bon_curve_dataset(tmp_path / "d", "score_a", [1, 2, 3], split=split,
                                   pool="clip", rows_per_batch=6)
        np.testing.assert_allclose(got["utility"], want["utility"], rtol=1e-12)
    with pytest.raises(td.ScoreTableError, match="no rows with split == 'test'"):
        td.bon_curve_dataset(tmp_path / "d", "score_a", [1], split="test")
    # a categorical split column is stored dictionary-encoded and filtered through its indices
    t.astype({"split": "category"}).to_parquet(tmp_path / "cat.parquet", row_group_size=10)
    want = td.bon_curve(t, "score_a", [1, 2], pool="clip")
    got = td.bon_curve_dataset(tmp_path / "cat.parquet", "score_a", [1, 2], pool="clip",
                               rows_per_batch=8)
    np.testing.assert_allclose(got["utility"], want["utility"], rtol=1e-12)
    with pytest.raises(td.ScoreTableError, match=r"N=50 is larger than the candidate pool.*"
                                                 r"pool='clip'"):
        td.bon_curve_dataset(tmp_path / "cat.parquet", "score_a", [1, 50], rows_per_batch=8)


def test_bon_curve_dataset_scattered_queries_fall_back(tmp_path):
    t = random_table(np.random.default_rng(8), n_users=5, max_q=4)
    t = t.sample(frac=1.0, random_state=0)  # queries no longer contiguous
    t.to_parquet(tmp_path / "s.parquet", row_group_size=7)
    want = td.bon_curve(t, "score_a", [1, 2], split=None)
    with pytest.warns(RuntimeWarning, match="not contiguous"):
        got = td.bon_curve_dataset(tmp_path / "s.parquet", "score_a", [1, 2], rows_per_batch=9)
    np.testing.assert_allclose(got["utility"], want["utility"], rtol=1e-12)


def test_bon_curve_dataset_bad_values_are_named(tmp_path):
    t = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0)
    t.loc[t.index[-5], "score_det"] = 1e272  # in the last batch
    t.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(td.ScoreTableError, match="'score_det'.*magnitude above 1e"):
        td.bon_curve_dataset(tmp_path / "bad.parquet", "score_det", [1], rows_per_batch=20)
    t["score_det"] = 0.5
    t.to_parquet(tmp_path / "const.parquet")
    with pytest.raises(td.ScoreTableError, match="constant.*whole dataset"):
        td.bon_curve_dataset(tmp_path / "const.parquet", "score_det", [1], rows_per_batch=20)
