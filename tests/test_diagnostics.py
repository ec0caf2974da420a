"""Diagnostics pinned to scipy's Pearson correlation and to simulations with known truth."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import ttp_diag as td
from ttp_diag.simulate import SimulatedRM


def small_table():
    rng = np.random.default_rng(4)
    rows = []
    for u in range(5):
        for q in range(4):
            for c in range(6):
                r = rng.random()
                rows.append((f"u{u}", f"u{u}/q{q}", c, r, r * (1 - u / 3) + rng.random() * 1.0))
    return pd.DataFrame(rows, columns=["user_id", "query_id", "cand_id", "reward", "score_x"])


def test_correlations_match_scipy_and_rates_follow_definitions():
    t = small_table()
    # the paper's definitions, by name: pooled rho_u, query-weighted rates
    d = td.diagnose(t, "score_x", collapse_threshold=0.1, rho_u="pooled", weights="query")
    for (_u, q), g in t.groupby(["user_id", "query_id"]):
        row = d.per_query.set_index("query_id").loc[q]
        assert row["rho_q"] == pytest.approx(stats.pearsonr(g["score_x"], g["reward"])[0])
        assert row["mu_q"] == pytest.approx(g["reward"].mean())
        assert row["sigma_q"] == pytest.approx(g["reward"].std(ddof=1))
    for u, g in t.groupby("user_id"):
        row = d.per_user.set_index("user_id").loc[u]
        assert row["rho_u"] == pytest.approx(stats.pearsonr(g["score_x"], g["reward"])[0])
        assert row["label_std"] == pytest.approx(g["reward"].std(ddof=1))
    pu, pq = d.per_user, d.per_query
    assert d.alpha == pytest.approx((pu["rho_u"] < 0.1).mean())
    active = pq[~pq["user_collapsed"]]
    assert d.beta == pytest.approx((active["rho_q"] < 0).mean())
    assert d.rho_plus == pytest.approx(active.loc[active["rho_q"] >= 0, "rho_q"].mean())
    assert d.rho_minus == pytest.approx(active.loc[active["rho_q"] < 0, "rho_q"].mean())
    assert d.rho_collapsed_pooled == pytest.approx(pu.loc[pu["collapsed"], "rho_u"].mean())
    # Eq. 30's term is the collapsed users' within-query correlation
    within = pq.groupby("user_id")["rho_q"].mean()
    assert d.rho_collapsed == pytest.approx(within.loc[pu.loc[pu["collapsed"], "user_id"]].mean())
    for (_, q), g in t.groupby(["user_id", "query_id"]):
        row = d.per_query.set_index("query_id").loc[q]
        assert row["spearman_q"] == pytest.approx(
            stats.spearmanr(g["score_x"], g["reward"])[0])
    assert d.rho_eff == pytest.approx((1 - d.beta) * d.rho_plus - d.beta * abs(d.rho_minus))
    # hacked queries are counted only among non-collapsed users (Assumption A.6)
    assert not pq.loc[pq["user_collapsed"], "hacked"].any()
    assert d.alpha > 0 and d.beta > 0  # the fixture exercises both failure modes


def test_mean_query_reading_of_rho_u_is_the_default():
    t = small_table()
    d = td.diagnose(t, "score_x")
    assert d.rho_u_method == "mean_query" and d.weights == "user"
    want = d.per_query.groupby("user_id")["rho_q"].mean()
    np.testing.assert_allclose(d.per_user.set_index("user_id")["rho_u"], want.loc[
        d.per_user["user_id"]].to_numpy())
    with pytest.raises(ValueError, match="rho_u must be one of"):
        td.diagnose(t, "score_x", rho_u="median")


def test_constant_scores_count_as_collapsed_and_are_reported():
    t = small_table()
    t.loc[t["user_id"] == "u0", "score_x"] = 0.5  # a collapsed reward model for one user
    t.loc[t["query_id"] == "u1/q0", "reward"] = 0.2  # a query with constant labels
    d = td.diagnose(t, "score_x")
    row = d.per_user.set_index("user_id").loc["u0"]
    assert row["rho_u"] == 0.0 and row["collapsed"] and row["undefined"]
    assert d.n_undefined_users == 1
    assert d.n_undefined_queries == 5  # u0's four queries and u1/q0
    assert any("constant scores or rewards" in n for n in d.notes)
    assert np.isfinite(d.per_query["rho_q"]).all()
    assert "note:" in str(d)


def test_every_user_collapsed_is_reported_not_nan():
    t = small_table()
    t["score_x"] = t["score_x"].rank() * 0 + np.arange(len(t)) % 2  # uncorrelated noise
    d = td.diagnose(t, "score_x", collapse_threshold=1.0)
    assert d.alpha == 1.0 and d.beta == 0.0
    assert any("every user is collapsed" in n for n in d.notes)
    for v in d.to_dict().values():
        if isinstance(v, float):
            assert np.isfinite(v)


def test_oracle_diagnostics():
    d = td.diagnose(small_table(), "oracle")
    assert d.alpha == 0 and d.beta == 0 and d.rho_plus == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'random' has no scores"):
        td.diagnose(small_table(), "random")


KNOWN = SimulatedRM(alpha=0.2, beta=0.25, rho_plus=0.7, rho_minus=-0.5, rho_collapsed=-0.05)


@pytest.fixture(scope="module")
def known_truth():
    return td.simulate_score_table(n_users=60, n_queries=20, n_candidates=40, n_train_queries=0,
                                   models={"sim": KNOWN}, seed=7)


def test_diagnose_recovers_known_rates(known_truth):
    d = td.diagnose(known_truth, "score_sim", n_null=0)
    assert d.alpha == pytest.approx(KNOWN.alpha, abs=1e-12)  # 12 of 60 users by construction
    # sample correlations of 40 candidates: rates and means within sampling error
    assert d.beta == pytest.approx(KNOWN.beta, abs=0.03)
    assert d.rho_plus == pytest.approx(KNOWN.rho_plus, abs=0.04)
    assert d.rho_minus == pytest.approx(KNOWN.rho_minus, abs=0.04)
    assert d.rho_collapsed == pytest.approx(KNOWN.rho_collapsed, abs=0.04)
    assert d.rho_total == pytest.approx(KNOWN.rho_total, abs=0.03)
    assert d.sigma == pytest.approx(0.05, rel=0.03)


@pytest.mark.parametrize("shape,tol", [("sqrt_log", 0.03), ("gaussian", 0.005)])
def test_diagnose_calibrate_predict_reproduce_the_exact_curve(known_truth, shape, tol):
    ns = [1, 5, 10, 15, 20, 30]
    oracle = td.bon_curve(known_truth, "oracle", ns)["utility"]
    cal = td.calibrate(ns, oracle, shape=shape)
    d = td.diagnose(known_truth, "score_sim")
    obs = td.bon_curve(known_truth, "score_sim", ns)["utility"].to_numpy()
    pred = td.predict_bon_curve(ns, d, cal, refined=True)
    assert td.rel_mae(pred, obs) < tol
    pq = td.predict_bon_curve_per_query(ns, d, cal)
    assert td.rel_mae(pq, obs) < tol
    if shape == "gaussian":
        # exact Gaussian shape: the calibrated scale is sigma itself (c = 1)
        assert cal.c_given_sigma(d.sigma) == pytest.approx(1.0, abs=0.03)
        # and the curve matches the closed-form truth mu + rho_total sigma E[max_N]
        truth = d.mu + KNOWN.rho_total * 0.05 * td.expected_max_normal(ns)
        assert td.rel_mae(obs, truth) < 0.01


def test_metrics():
    assert td.rel_mae([1.1, 1.8], [1.0, 2.0]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="observed value is 0"):
        td.rel_mae([1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="no reward signal"):
        td.rel_mae([1.0, 1.0], [0.0, 0.0])
    assert td.r_squared([1, 2, 3], [1, 2, 4]) == pytest.approx(1 - 1 / (14 / 3))
    with pytest.warns(RuntimeWarning, match="flat observed curve"):
        assert np.isnan(td.r_squared([1, 2], [1, 1]))
    cap = td.capture_rate([0.1, 0.15, 0.2], [0.1, 0.2, 0.3], 0.1)
    assert np.isnan(cap[0]) and cap[1:].tolist() == pytest.approx([0.5, 0.5])
    assert td.mean_capture_rate([0.1, 0.15, 0.2], [0.1, 0.2, 0.3], 0.1) == pytest.approx(0.5)
