"""Sample-size planner against known truth: exact engines, null sizes, closed forms, re-checks."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import ttp_diag as td
from ttp_diag.analysis import planner_power as pp
from ttp_diag.analysis.planner_sample import UNIT_COSTS, normal_power


def _binom_contains(power: float, sims: int, p0: float, level: float = 0.99) -> bool:
    k = round(power * sims)
    lo = 0.0 if k == 0 else stats.beta.ppf((1 - level) / 2, k, sims - k + 1)
    hi = 1.0 if k == sims else stats.beta.ppf(1 - (1 - level) / 2, k + 1, sims - k)
    return lo <= p0 <= hi


def _paired_pilot(values: np.ndarray) -> pd.DataFrame:
    """One query per user, two candidates with rewards 0 and v: model a picks v, b picks 0,
    so the exact Best-of-2 difference a - b of each user is exactly v."""
    n = len(values)
    users = np.repeat([f"u{i:04d}" for i in range(n)], 2)
    return pd.DataFrame({
        "user_id": users, "query_id": users, "cand_id": np.tile([0, 1], n),
        "reward": np.column_stack([np.zeros(n), values]).ravel(),
        "score_a": np.tile([0.0, 1.0], n), "score_b": np.tile([1.0, 0.0], n)})


# ---------------------------------------------------------------- the engine is exact
def test_engine_matches_package_exact_values():
    t = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=7, seed=3)
    val = t[t.split == "val"].copy()
    val["score_det"] = val["score_det"].round(3)  # ties, averaged like the engine does
    src = pp.PilotPools(val, ["score_prob", "score_det"])
    for n in (1, 3, 7):
        cache = src.per_query(n, ["score_prob", "score_det"])
        for s in ("score_prob", "score_det", "oracle", "random"):
            ref = td.bon_per_query(val, s, [n], split=None)["utility"].to_numpy()
            got = cache["util"][s] if s.startswith("score") else cache[s]
            np.testing.assert_allclose(got, ref, atol=1e-12)
    d = td.diagnose(val, "score_prob", split=None, n_null=0)
    np.testing.assert_allclose(cache["rho"]["score_prob"][0], d.per_query["rho_q"], atol=1e-12)
    np.testing.assert_allclose(cache["rho"]["score_prob"][0].mean(), d.rho_total, atol=1e-12)


def test_subsampled_pools_are_unbiased_for_the_full_pool():
    # the exact Best-of-N value of a random m-subset averages to the full pool's value
    t = td.simulate_score_table(n_users=1, n_queries=1, n_candidates=8, seed=1)
    val = t[t.split == "val"]
    src = pp.PilotPools(val, ["score_prob"])
    full = src.per_query(3, ["score_prob"])["util"]["score_prob"][0]
    pools = src.draw(np.random.default_rng(0), 20000, 1, 1, 5, ["score_prob"])
    sub = pp.exact_bon(pools["reward"], pools["scores"]["score_prob"], pools["valid"],
                       pools["m_eff"], pp.bon_weights(5, 3))
    assert sub.mean() == pytest.approx(full, abs=4 * sub.std() / np.sqrt(sub.size))


def test_pilot_truths_equal_the_package_estimates():
    pilot = td.simulate_score_table(n_users=8, n_queries=5, n_candidates=10, seed=2)
    plan = td.plan_sample(pilot, users=[8], questions=["gain", "difference", "prediction"],
                          n_sims=10)
    truth = plan.power_.set_index("question")["truth"]
    comp = td.compare_selectors(pilot, "score_prob", "score_det", [10], n_boot=20)
    assert truth["difference"] == pytest.approx(float(comp["diff"].iloc[0]), abs=1e-12)
    curve = td.bon_curves(pilot, ["random", "oracle", "score_prob"], [10])
    u = curve.set_index("selector")["utility"]
    assert truth["gain"] == pytest.approx(u["score_prob"] - u["random"], abs=1e-12)
    rho_total = td.diagnose(pilot, "score_prob", n_null=0).rho_total
    assert truth["prediction"] == pytest.approx(rho_total * (u["oracle"] - u["random"]),
                                                abs=1e-12)


# ---------------------------------------------------------------- under the null: the size
def test_difference_null_has_the_tests_size():
    v = np.random.default_rng(0).standard_normal(1000)
    v = np.r_[v, -v]  # symmetric, mean exactly 0: the resampled world has no difference
    plan = td.plan_sample(_paired_pilot(v), "score_a", "score_b", n=2, users=[30],
                          questions=["difference"], n_sims=600, seed=1)
    power = float(plan.power_["power"].iloc[0])
    assert _binom_contains(power, 600, 0.05), power


@pytest.mark.parametrize("question", ["collapse", "hacking", "gain"])
def test_law_null_has_the_tests_size(question):
    # one shared correlation, no collapse, no hacking (gain: a model with no signal)
    truth = td.SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.0 if question == "gain" else 0.3)
    plan = td.plan_sample(None, truth, None, users=[20], queries=[6], candidates=[12],
                          questions=[question], n_sims=400, seed=2)
    power = float(plan.power_["power"].iloc[0])
    assert _binom_contains(power, 400, 0.05), power


def test_law_prediction_truth_and_precision():
    truth = td.SimulatedRM(alpha=0.2, beta=0.2, rho_plus=0.6, rho_minus=-0.2, rho_collapsed=0.0)
    plan = td.plan_sample(None, truth, None, sigma=0.05, users=[5, 200], queries=[10],
                          candidates=[16], questions=["prediction"], share=0.1, n_sims=50)
    # truth: rho_total sigma E[max of 16 normals] = (0.8 (0.8*0.6 - 0.2*0.2)) 0.05 1.76599
    emax16 = 1.7659913931
    assert plan.power_["truth"].iloc[0] == pytest.approx(0.8 * 0.44 * 0.05 * emax16, rel=1e-6)
    small, big = plan.power_.sort_values("n_users")["power"]
    assert small < 0.9 and big > 0.95


def test_law_alternatives_gain_power():
    truth = td.SimulatedRM(alpha=0.3, beta=0.3, rho_plus=0.6, rho_minus=-0.4)
    plan = td.plan_sample(None, truth, None, users=[10, 80], queries=[6], candidates=[12],
                          questions=["collapse", "hacking"], n_sims=60, seed=3)
    big = plan.power_[plan.power_.n_users == 80].set_index("question")["power"]
    assert big["collapse"] > 0.9 and big["hacking"] > 0.9


# ---------------------------------------------------------------- closed form
@pytest.mark.parametrize("n_users", [25, 50])
def test_paired_difference_matches_normal_approximation(n_users):
    delta, sd = 0.35, 1.0
    z = np.random.default_rng(1).standard_normal(4000)
    v = delta + sd * (z - z.mean()) / z.std()  # the resampled world: mean delta, sd exactly 1
    sims = 600
    plan = td.plan_sample(_paired_pilot(v), "score_a", "score_b", n=2, users=[n_users],
                          questions=["difference"], n_sims=sims, seed=4)
    power = float(plan.power_["power"].iloc[0])
    closed = normal_power(delta, sd, n_users)
    mc_se = np.sqrt(closed * (1 - closed) / sims)
    # the sign-flip test is a t-like test: a little below the z-test at small n
    assert abs(power - closed) < 3 * mc_se + 0.03, (power, closed)
    assert float(plan.power_["truth"].iloc[0]) == pytest.approx(delta)


# ---------------------------------------------------------------- plan, then re-check
MODELS = {"prob": td.SimulatedRM(alpha=0.0, beta=0.1, rho_plus=0.45, rho_minus=-0.2),
          "det": td.SimulatedRM(alpha=0.1, beta=0.25, rho_plus=0.45, rho_minus=-0.3)}


@pytest.mark.parametrize("conservative", [None, 0.8])
def test_plan_from_ten_users_reaches_target_when_rechecked(conservative):
    # a pilot of 10 users (30 queries each, as the demo's authors have) from a known truth;
    # the recommended design is then re-run 100 times from the same truth and analysed with
    # compare_selectors, independently of the planner's code
    sim = dict(n_queries=30, n_candidates=12, n_train_queries=1, models=MODELS, sigma=0.05,
               user_mu_sd=0.02)
    pilot = td.simulate_score_table(n_users=10, seed=100, **sim)
    plan = td.plan_sample(pilot, "score_prob", "score_det", n=12,
                          users=[10, 15, 20, 30, 40, 60, 80], questions=["difference"],
                          n_sims=200, conservative=conservative, seed=0)
    rec = plan.recommended_.iloc[0]
    assert rec["reached"]
    n_users = int(rec["n_users"])
    hits, checks = 0, 100
    for seed in range(checks):
        t = td.simulate_score_table(n_users=n_users, seed=10_000 + seed, **sim)
        res = td.compare_selectors(t, "score_prob", "score_det", [12], ci=None, n_boot=200,
                                   seed=seed)
        hits += float(res["p_value"].iloc[0]) <= 0.05
    checked = hits / checks
    # reaches the target within 2 Monte Carlo standard errors of the re-check
    assert checked >= 0.8 - 2 * np.sqrt(0.8 * 0.2 / checks), (n_users, checked)


# ---------------------------------------------------------------- costs, results, errors
def test_costs_by_hand():
    plan = td.plan_sample(None, td.SimulatedRM(beta=0.0, rho_plus=0.5),
                          td.SimulatedRM(beta=0.0, rho_plus=0.2), users=[12], queries=[3],
                          candidates=[4], questions=["gain", "difference"], n_sims=10)
    p = plan.power_.set_index("question")
    cpu, gpu = UNIT_COSTS["cpu"], UNIT_COSTS["gpu"]
    cands = 12 * 3 * 4
    assert p.loc["gain", "total_candidates"] == cands
    assert p.loc["gain", "cost_cpu_h"] == pytest.approx(cands * (1.034 + 0.00008 + 0.113) / 3600)
    assert p.loc["difference", "cost_gpu_h"] == pytest.approx(
        cands * (1 / 686 + 0.00008 + 2 * 0.0023) / 3600)
    assert cpu.hours(3600, 0) == pytest.approx(1.034 + 0.00008)
    assert gpu.generate_s == pytest.approx(1 / 686)


def test_result_convention_and_verdicts():
    pilot = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=5)
    plan = td.plan_sample(pilot, users=[10, 40], queries=[4, 8], n_sims=20,
                          questions=["difference", "collapse"], failure=["score_det"])
    assert set(plan.power_.question) == {"difference", "collapse"}
    assert len(plan.power_) == 2 * 2 * 2
    assert (plan.power_.power_low <= plan.power_.power).all()
    assert (plan.power_.power <= plan.power_.power_high).all()
    assert list(plan.summary.question) == ["difference", "collapse"]
    assert len(plan.verdicts_) == 2 and "With 10 users" in plan.verdicts_[0]
    assert "Sample plan" in str(plan)
    ax = plan.plot("difference")
    assert ax.get_xlabel() == "Users" and "Power" in ax.get_ylabel()
    labels = ax.get_legend_handles_labels()[1]
    assert "4 queries/user" in labels and "8 queries/user" in labels
    with pytest.raises(ValueError, match="no question 'gain'"):
        plan.plot("gain")


@pytest.mark.parametrize("kw, match", [
    ({"n": 40}, "n \\(Best-of-N\\) must lie"),
    ({"questions": ["power"]}, "questions must be"),
    ({"users": [1]}, "users must be whole numbers >= 2"),
    ({"target": 1.5}, "target must be"),
    ({"failure": ["score_global"]}, "failure names"),
    ({"collapse_rate": 1.0}, "collapse_rate"),
    ({"candidates": [12]}, "exceeds the pilot's largest pool \\(6\\)"),
])
def test_bad_settings_name_the_argument(kw, match):
    pilot = td.simulate_score_table(n_users=5, n_queries=2, n_candidates=6, seed=0)
    with pytest.raises(ValueError, match=match):
        td.plan_sample(pilot, n_sims=10, **kw)


def test_without_pilot_needs_simulated_truth():
    with pytest.raises(TypeError, match="SimulatedRM"):
        td.plan_sample(None, "score_prob")
    with pytest.raises(td.exceptions.ScoreTableError, match="score_nope"):
        td.plan_sample(td.simulate_score_table(n_users=4, n_queries=2, n_candidates=4),
                       "score_nope", None)


def test_cli_plan(tmp_path, capsys):
    from ttp_diag.cli import main

    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=6, seed=0)
    path = tmp_path / "pilot.parquet"
    t.to_parquet(path)
    out = tmp_path / "plan"
    assert main(["plan", str(path), "--users", "6,12", "--n-sims", "20", "--questions",
                 "difference,hacking", "--out", str(out)]) == 0
    assert "Sample plan" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"power.csv", "recommended.csv", "plan.txt",
                                              "power.png"}
    assert len(pd.read_csv(out / "power.csv")) == 2 * 3  # 2 designs x (difference + 2 hacking)
    assert main(["plan", "--law-a", "alpha=x"]) == td.exceptions.ConfigError.exit_code  # 7
    assert capsys.readouterr().err.strip() == \
        "ttp-diag: error: --law-a: alpha must be a number; got 'x'."
    assert main(["plan", "--law-a", "alpha=0.1,rho_plus=0.5", "--users", "5", "--queries", "2",
                 "--candidates", "4", "--questions", "gain", "--n-sims", "10"]) == 0
    assert "gain of a over random" in capsys.readouterr().out


def test_cli_plan_subprocess_one_line_error():
    bad = subprocess.run([sys.executable, "-m", "ttp_diag", "plan", "--law-a", "bet=0"],
                         capture_output=True, text=True)
    assert bad.returncode == td.exceptions.ConfigError.exit_code
    assert bad.stderr.strip().startswith("ttp-diag: error: --law-a takes K=V pairs")


def test_conservative_plans_at_a_one_sided_limit():
    # user differences 1..10: the 80% one-sided bootstrap limit of their mean (5.5) lies
    # below it by about 0.84 standard errors (sd 2.87 / sqrt(10) = 0.91)
    v = np.arange(1.0, 11.0)
    plan = td.plan_sample(_paired_pilot(v), "score_a", "score_b", n=2, users=[10],
                          questions=["difference"], n_sims=20, conservative=0.8)
    row = plan.power_.iloc[0]
    assert row["pilot_estimate"] == pytest.approx(5.5)
    assert row["truth"] == pytest.approx(5.5 - 0.84 * v.std() / np.sqrt(10), abs=0.12)
    # an interval reaching past 0 plans for no difference at all
    plan = td.plan_sample(_paired_pilot(np.r_[v, -v + 0.5]), "score_a", "score_b", n=2,
                          users=[10], questions=["difference"], n_sims=20, conservative=0.8)
    assert plan.power_["truth"].iloc[0] == 0.0
    with pytest.raises(ValueError, match="without a pilot"):
        td.plan_sample(None, td.SimulatedRM(), None, conservative=0.8)


def test_report_section(tmp_path):
    from ttp_diag.full_report import full_report

    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=6, seed=1)
    res = full_report(t, tmp_path / "r", base="score_det", new="score_prob", n_boot=20,
                      plan_sims=20)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Planning the next experiment" in html
    assert "With 6 users (3 queries each, 6 candidates)" in html
    assert {"planner_power.png", "planner_power.csv"} <= set(res["files"])
    power = pd.read_csv(tmp_path / "r" / "planner_power.csv")
    assert set(power.question) == {"difference", "collapse"}
    assert sorted(power.n_users.unique()) == [6, 12, 24, 48, 96]
