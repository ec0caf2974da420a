"""ttp_diag.stats: pinned to scipy, statsmodels, hand examples, simulation, and to the numbers
the copies it replaced gave (recorded from the code before the move, same seeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import ttp_diag as td
from ttp_diag import stats
from ttp_diag.exceptions import DataError

# --- the numbers the old copies gave (pinned before moving them into ttp_diag.stats) ---------


def test_bon_bootstrap_interval_unchanged_by_the_move():
    x = np.random.default_rng(3).normal(size=(12, 2))
    low, high = td.bon.bootstrap_user_ci(x, ci=0.9, n_boot=500, seed=7)
    assert low.tolist() == pytest.approx([-0.4877350299203909, -0.6790135682122551], abs=1e-15)
    assert high.tolist() == pytest.approx([0.4656719647378315, 0.5771846546134315], abs=1e-15)
    lo2, hi2 = stats.bootstrap_mean_ci(x, ci=0.9, n_boot=500, seed=7)
    assert lo2.tolist() == low.tolist() and hi2.tolist() == high.tolist()


def test_compare_selectors_unchanged_by_the_move():
    t = td.simulate_score_table(n_users=8, n_queries=4, n_candidates=6, seed=2)
    r = td.compare_selectors(t, "score_prob", "score_det", [1, 3, 6], n_boot=300, seed=1)
    assert r["ci_low"].tolist()[1:] == pytest.approx([0.013277199809767028,
                                                      0.022571965416431215], abs=1e-14)
    assert r["ci_high"].tolist()[1:] == pytest.approx([0.03234794210145908,
                                                       0.057020936459042715], abs=1e-14)
    assert r["p_value"].tolist() == [1.0, 0.0078125, 0.0078125]  # exact: 2 / 2**8
    t2 = td.simulate_score_table(n_users=20, n_queries=3, n_candidates=6, seed=2)
    r2 = td.compare_selectors(t2, "score_prob", "score_det", [3, 6], n_boot=300, seed=1)
    assert r2["ci_low"].tolist() == pytest.approx([0.011130014042833737, 0.017567792510876486],
                                                  abs=1e-14)
    assert r2["ci_high"].tolist() == pytest.approx([0.02178062830782293, 0.03947612097440758],
                                                   abs=1e-14)
    assert r2["p_value"].tolist() == pytest.approx([1 / 301, 1 / 301])  # the resolution limit


def test_two_level_indices_unchanged_by_the_move():
    from ttp_diag.diagnostics import inference

    user = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    idx, slot = stats.two_level_indices(user, 4, np.random.default_rng(5))
    assert idx.tolist() == [5, 6, 6, 0, 0, 6, 6] and slot.tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert inference.two_level_indices is stats.two_level_indices


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize("k,n,ci", [(8, 10, 0.95), (0, 7, 0.95), (7, 7, 0.9), (3, 40, 0.99),
                                    (12.5, 25, 0.95)])
def test_wilson_matches_statsmodels(k, n, ci):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    ref = proportion.proportion_confint(k, n, alpha=1 - ci, method="wilson")
    assert stats.wilson_interval(k, n, ci) == pytest.approx(ref, abs=1e-12)


def test_wilson_by_hand_and_bad_input():
    # 8/10 at 95%: centre (0.8 + 1.96^2/20) / (1 + 1.96^2/10) = 0.7167
    lo, hi = stats.wilson_interval(8, 10)
    assert (lo + hi) / 2 == pytest.approx((0.8 + 1.959964**2 / 20) / (1 + 1.959964**2 / 10),
                                          abs=1e-6)
    with pytest.raises(DataError, match="successes=11"):
        stats.wilson_interval(11, 10)
    with pytest.raises(DataError, match="n=0"):
        stats.wilson_interval(0, 0)


def test_wilson_covers_at_its_level():
    rng = np.random.default_rng(0)
    n, p = 30, 0.2
    ks = rng.binomial(n, p, size=4000)
    cover = np.mean([lo <= p <= hi for lo, hi in (stats.wilson_interval(k, n) for k in ks)])
    assert 0.93 <= cover <= 0.97


def test_correlations_match_scipy_and_hand():
    r = stats.correlations([1, 2, 3, 4], [1, 3, 2, 4])
    # 5 concordant, 1 discordant: tau = 4/6; rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert r["kendall_tau"] == pytest.approx(2 / 3)
    assert r["spearman_rho"] == pytest.approx(0.8)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    r = stats.correlations(x, y)
    assert r["kendall_tau"] == pytest.approx(sps.kendalltau(x, y).statistic)
    assert r["spearman_rho"] == pytest.approx(sps.spearmanr(x, y).statistic)
    assert r["pearson_r"] == pytest.approx(sps.pearsonr(x, y).statistic)
    assert all(np.isnan(v) for v in stats.correlations([1, 2], [2, 1]).values())
    assert all(np.isnan(v) for v in stats.correlations([1, 1, 1], [1, 2, 3]).values())


def test_pair_wins_one_tie_rule():
    assert stats.pair_wins([2, 1, 0], [1, 1, 3]).tolist() == [1.0, 0.5, 0.0]
    assert stats.pair_wins([2, 1, 0], [1, 1, 3], "strict").tolist() == [1.0, 0.0, 0.0]
    # a constant scorer is at chance with the default, at 0 with the paper's rule
    assert stats.pair_wins(np.ones(10), np.ones(10)).mean() == 0.5
    with pytest.raises(ValueError, match="ties='loose'"):
        stats.pair_wins([1], [0], "loose")
    with pytest.raises(DataError, match="NaN"):
        stats.pair_wins([np.nan], [0])


def test_sign_flip_exact_by_hand_and_monte_carlo_limit():
    # 3 users, all positive: only all-plus and all-minus are as extreme -> 2/8
    p, draws = stats.sign_flip_test(np.array([1.0, 2.0, 3.0]))
    assert p.tolist() == [0.25] and draws is None
    # 1, 2, -3: |mean| = 0; every pattern is as extreme
    assert stats.sign_flip_test(np.array([1.0, 2.0, -3.0]))[0].tolist() == [1.0]
    d = np.ones(20)
    p, draws = stats.sign_flip_test(d, n_flips=999, seed=0)
    assert draws == 999 and p[0] == pytest.approx(1 / 1000)
    assert stats.sign_flip_test(np.zeros(4))[0].tolist() == [1.0]


def test_sign_flip_has_its_size_under_the_null():
    rng = np.random.default_rng(2)
    ps = [stats.sign_flip_test(rng.normal(size=15), n_flips=400, seed=rng)[0][0]
          for _ in range(400)]
    assert 0.02 <= np.mean(np.asarray(ps) <= 0.05) <= 0.09


def test_format_p_value_says_the_resolution_limit():
    assert stats.format_p_value(1 / 1001, 1000) == "p < 0.001, 1,000 draws"
    assert stats.format_p_value(1 / 2001, 2000) == "p < 0.0005, 2,000 draws"
    assert stats.format_p_value(0.0231, 1000) == "p = 0.023"
    assert stats.format_p_value(0.0004) == "p < 0.001"
    assert stats.format_p_value(float("nan")) == "p not available"


def test_bootstrap_mean_ci_matches_an_independent_bootstrap_and_handles_missing():
    v = np.array([0.1, 0.4, 0.2, 0.9, 0.5, 0.3])
    lo, hi = stats.bootstrap_mean_ci(v, n_boot=4000, seed=3)
    rng = np.random.default_rng(11)
    ref = np.quantile(rng.choice(v, size=(20000, 6)).mean(1), [0.025, 0.975])
    assert lo[0] == pytest.approx(ref[0], abs=0.02) and hi[0] == pytest.approx(ref[1], abs=0.02)
    # a missing user in a column: the users are still resampled together (shared resamples),
    # the column's mean is over the drawn users that have a value, so its number of users
    # varies by resample and the interval is close to (slightly wider than) its own users'
    m = np.column_stack([v, np.r_[v[:5], np.nan]])
    lo, hi = stats.bootstrap_mean_ci(m, n_boot=4000, seed=3)
    ref = np.quantile(rng.choice(v[:5], size=(20000, 5)).mean(1), [0.025, 0.975])
    assert lo[1] == pytest.approx(ref[0], abs=0.04) and hi[1] == pytest.approx(ref[1], abs=0.04)
    assert lo[1] <= ref[0] + 0.01 and hi[1] >= ref[1] - 0.01
    with pytest.warns(RuntimeWarning, match="4 user"):
        assert np.isnan(stats.bootstrap_mean_ci(v[:4])[0]).all()


def test_shared_resamples_give_equal_values_equal_intervals():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 1))
    counts = stats.resample_counts(8, 300, seed=4)
    la, ha = stats.bootstrap_mean_ci(a, counts=counts)
    lb, hb = stats.bootstrap_mean_ci(np.hstack([a, a + 1.0]), counts=counts)
    assert lb[0] == pytest.approx(la[0], abs=1e-14) and hb[0] == pytest.approx(ha[0], abs=1e-14)
    assert lb[1] == pytest.approx(la[0] + 1.0) and hb[1] == pytest.approx(ha[0] + 1.0)


def test_paired_difference_interval_is_narrower_than_unpaired_when_correlated():
    rng = np.random.default_rng(5)
    base = rng.normal(size=10)
    a, b = base + 0.3 + 0.05 * rng.normal(size=10), base
    r = stats.paired_difference(a, b, n_boot=2000, seed=0)
    assert r["ci_low"][0] > 0 and r["p_value"][0] == pytest.approx(2 / 2**10)
    la, ha = stats.bootstrap_mean_ci(a, seed=0)
    assert r["ci_high"][0] - r["ci_low"][0] < (ha - la)[0] / 5


def test_bootstrap_correlations_known_truth_and_shared_users():
    # four points whose user means are 1..4 for x and 1, 3, 2, 4 for y, identical users:
    # every resample equals the estimate
    x = np.tile([1.0, 2, 3, 4], (6, 1))
    y = np.tile([1.0, 3, 2, 4], (6, 1))
    r = stats.bootstrap_correlations(x, y, n_boot=100)
    assert r["estimate"]["kendall_tau"] == pytest.approx(2 / 3)
    assert r["ci_low"]["kendall_tau"] == pytest.approx(2 / 3)
    assert r["n_points"] == 4 and r["n_users"] == 6
    # a point with a missing user: its coordinate is the mean over its own users
    x2 = x.copy()
    x2[0, 3] = np.nan
    y2 = y.copy()
    y2[0, 3] = 100.0  # ignored: x is missing there
    assert stats.bootstrap_correlations(x2, y2, ci=None)["estimate"]["pearson_r"] == \
        pytest.approx(0.8)
    # noisy users, true correlation 1 across 5 points: the interval is high and contains 1
    rng = np.random.default_rng(0)
    truth = np.arange(5.0)
    xs = truth + rng.normal(scale=0.5, size=(30, 5))
    ys = 2 * truth + rng.normal(scale=0.5, size=(30, 5))
    r = stats.bootstrap_correlations(xs, ys, n_boot=300, seed=1)
    assert r["ci_low"]["pearson_r"] > 0.9 and r["ci_high"]["pearson_r"] <= 1.0


def test_rank_agreement_and_method_summary_use_stats():
    from ttp_diag.gen.evaluation.metrics import rank_agreement
    from ttp_diag.gen.evaluation.tables import method_summary

    rng = np.random.default_rng(0)
    rows = [(m, f"u{u}", k, base + rng.normal(scale=0.3))
            for m, base in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] for u in range(7)
            for k in ("acc", "rouge1")]
    d = pd.DataFrame(rows, columns=["method", "user_id", "metric", "value"])
    r = rank_agreement(d, ["acc"], "rouge1", ci=0.9, n_boot=300, seed=2)
    users = sorted(d["user_id"].unique())
    wide = d.pivot_table(index="user_id", columns=["metric", "method"], values="value")
    ref = stats.bootstrap_correlations(wide["acc"].loc[users].to_numpy(),
                                       wide["rouge1"].loc[users].to_numpy(), ci=0.9,
                                       n_boot=300, seed=2)
    got = r.set_index("statistic")
    for k in stats.CORRELATIONS:
        assert got.at[k, "ci_low"] == ref["ci_low"][k] and got.at[k, "ci_high"] == \
            ref["ci_high"][k]
    s = method_summary(d, ci=0.95, n_boot=500, seed=1).set_index(["method", "metric"])
    v = wide[("acc", "b")].loc[users].to_numpy()
    lo, hi = stats.bootstrap_mean_ci(v, n_boot=500, seed=1)
    assert s.loc[("b", "acc"), "ci_low"] == lo[0] and s.loc[("b", "acc"), "ci_high"] == hi[0]


def test_correlation_difference_known_truth():
    # outcome = truth across 6 points; x tracks it with little user noise, z is unrelated
    rng = np.random.default_rng(3)
    truth = np.arange(6.0)
    y = truth + rng.normal(scale=0.3, size=(25, 6))
    x = truth + rng.normal(scale=0.3, size=(25, 6))
    z = rng.permutation(truth) * 0 + rng.normal(scale=1.0, size=(25, 6))
    r = stats.correlation_difference(x, z, y, n_boot=300, seed=0)
    assert r["n_points"] == 6 and r["n_users"] == 25
    assert r["difference"]["pearson_r"] == pytest.approx(
        r["x"]["estimate"]["pearson_r"] - r["z"]["estimate"]["pearson_r"])
    assert r["ci_low"]["pearson_r"] > 0  # x predicts better, and the interval says so
    # the same predictor twice: difference 0 in every resample
    r0 = stats.correlation_difference(x, x, y, n_boot=100, seed=0)
    assert r0["ci_low"]["kendall_tau"] == 0 and r0["ci_high"]["kendall_tau"] == 0


def test_vectorised_correlations_equal_scipy_row_by_row():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 4, size=(200, 6)).astype(float)  # many ties
    y = rng.normal(size=(200, 6))
    y[:20] = rng.integers(0, 3, size=(20, 6))
    x[5, 2] = np.nan  # falls back to the loop
    x[6] = 1.0  # constant: NaN
    got = stats.correlations_rows(x, y)
    want = np.array([[stats.correlations(a, b)[k] for k in stats.CORRELATIONS]
                     for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)
    assert np.isnan(got[6]).all() and np.isfinite(got[5]).all()


def test_cluster_ratio_ci_covers_under_clustering_where_wilson_does_not():
    """Known truth: 40 queries of 15 pairs, each query with its own success rate (Beta(6, 4),
    mean 0.6; pairs of one query share candidates). The query bootstrap covers the true 0.6
    at about the nominal rate; the Wilson interval over pairs, treating pairs as independent,
    does not."""
    from ttp_diag.stats import cluster_ratio_ci, wilson_interval

    rng = np.random.default_rng(7)
    cover_q = cover_w = 0
    reps = 200
    for _ in range(reps):
        p_q = rng.beta(6, 4, 40)  # mean exactly 0.6, sd 0.15 between queries
        hits = rng.random((40, 15)) < p_q[:, None]
        x, q = hits.ravel().astype(float), np.repeat(np.arange(40), 15)
        truth = 0.6
        lo, hi = cluster_ratio_ci(x, q, ci=0.95, n_boot=400, seed=int(rng.integers(1 << 30)))
        cover_q += lo <= truth <= hi
        wl, wh = wilson_interval(x.sum(), len(x), ci=0.95)
        cover_w += wl <= truth <= wh
    assert 0.88 <= cover_q / reps <= 0.99, cover_q
    assert cover_w / reps < 0.80, cover_w
