"""Compute planner against hand-solved inequalities and Harter's table of normal maxima."""

from types import SimpleNamespace

import numpy as np
import pytest

import ttp_diag as td
from ttp_diag.analysis import plan_compute


def diag(rho_total, score="score_x", alpha=0.0, beta=0.0, rho_plus=None, rho_minus=0.0):
    return SimpleNamespace(score=score, rho_total=rho_total, alpha=alpha, beta=beta,
                           rho_plus=rho_total if rho_plus is None else rho_plus,
                           rho_minus=rho_minus, rho_collapsed=0.0)


def cal(shape="sqrt_log", mu=0.1, c_sigma=0.05):
    return SimpleNamespace(mu=mu, c_sigma=c_sigma, shape=shape)


def test_sqrt_log_by_hand():
    # 0.8 sqrt(ln N) >= 0.5 sqrt(ln 30)  <=>  ln N >= (0.625)^2 ln 30 = 1.3286  <=>  N >= 3.78
    plan = plan_compute(diag(0.8), cal(), cost_per_candidate=2.0, shares=[0.5],
                        include_oracle=False, n_queries=100, scoring_cost=0.5)
    row = plan.iloc[0]
    assert row.n_needed == 4.0 and row.reachable
    assert row.cost_per_query == pytest.approx(4 * 2.5)
    assert row.total_cost == pytest.approx(4 * 2.5 * 100)
    assert row.oracle_utility_ref == pytest.approx(0.1 + 0.05 * np.sqrt(np.log(30)))
    assert row.target_utility == pytest.approx(0.1 + 0.5 * 0.05 * np.sqrt(np.log(30)))
    assert row.predicted_utility == pytest.approx(0.1 + 0.8 * 0.05 * np.sqrt(np.log(4)))
    assert row.predicted_utility >= row.target_utility


def test_brute_force_over_shares():
    shares = [0.1, 0.3, 0.6, 0.9, 1.0]
    plan = plan_compute(diag(0.7), cal(), cost_per_candidate=1.0, shares=shares,
                        include_oracle=False, n_ref=20)
    ns = np.arange(1, 20001)
    for share, n in zip(shares, plan.n_needed, strict=True):
        ok = 0.7 * np.sqrt(np.log(ns)) >= share * np.sqrt(np.log(20)) * (1 - 1e-12)
        assert n == ns[ok][0]


def test_gaussian_shape_with_harter_values():
    # oracle, E[max of N normals]: N=2 0.56419, N=3 0.84628, N=10 1.53875 (Harter 1961).
    # Half the oracle gain at N=10 is 0.769 -> N = 3; the oracle row is rho = 1.
    plan = plan_compute(diag(0.5), cal("gaussian"), cost_per_candidate=1.0, shares=[0.5],
                        n_ref=10)
    oracle = plan[plan.selector == "oracle"].iloc[0]
    assert oracle.n_needed == 3.0
    # rho 0.5: need E[max_N] >= 1.53875 -> N = 10 exactly
    assert plan[plan.selector == "score_x"].iloc[0].n_needed == 10.0


def test_unreachable_and_refined_switch():
    plan = plan_compute({"neg": diag(-0.1), "zero": diag(0.0)}, cal(), cost_per_candidate=1.0,
                        shares=[0.25], include_oracle=False)
    assert not plan.reachable.any()
    assert np.isinf(plan.n_needed).all() and np.isinf(plan.cost_per_query).all()
    assert plan.predicted_utility.isna().all()
    # refined=False ignores rho_collapsed: (1 - alpha) * rho_eff
    d = SimpleNamespace(score="s", rho_total=0.9, alpha=0.5, beta=0.0, rho_plus=0.6,
                        rho_minus=0.0, rho_collapsed=0.0)
    p = plan_compute(d, cal(), cost_per_candidate=1.0, shares=[0.5], include_oracle=False,
                     refined=False)
    assert p.rho_total.iloc[0] == pytest.approx(0.3)


def test_with_real_objects_and_errors():
    t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=12, seed=0)
    ns = [1, 2, 4, 8, 12]
    c = td.calibrate(ns, td.bon_curve(t, "oracle", ns)["utility"], shape="gaussian")
    diags = [td.diagnose(t, s) for s in td.score_columns(t)]
    plan = plan_compute(diags, c, cost_per_candidate=1.5, n_ref=12)
    assert set(plan.selector) == {*td.score_columns(t), "oracle"}
    assert len(plan) == 4 * 4
    # a better correlation never needs more candidates
    pivot = plan.pivot(index="share", columns="selector", values="n_needed")
    assert (pivot["oracle"] <= pivot["score_prob"]).all()
    with pytest.raises(ValueError, match="shares"):
        plan_compute(diags, c, cost_per_candidate=1.0, shares=[1.5])
    with pytest.raises(ValueError, match="cost_per_candidate"):
        plan_compute(diags, c, cost_per_candidate=-1.0)
    with pytest.raises(ValueError, match="n_ref"):
        plan_compute(diags, c, cost_per_candidate=1.0, n_ref=1)
