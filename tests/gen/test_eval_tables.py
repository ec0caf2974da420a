"""Evaluation tables over reward models (issue 20, defects 3 and 4)."""

import numpy as np
import pandas as pd
import pytest

from ttp_diag.gen.evaluation.metrics import pool_draw_win_rates
from ttp_diag.gen.evaluation.tables import write_tables


def _planted(n_users=8, seed=0):
    """4 reward models in two families. Across RMs the generation reward follows rho_eff
    (planted), while RM ranking accuracy runs the other way; per-user noise is small."""
    rng = np.random.default_rng(seed)
    rms = {"a": (0.1, 0.80), "b": (0.3, 0.70), "c": (0.5, 0.65), "d": (0.7, 0.55)}
    up, q = [], []
    for u in range(n_users):
        user = f"u{u}"
        for rm, (rho, acc) in rms.items():
            for fam in ("bon", "args"):
                m = f"{fam}_{rm}"
                noise = lambda: rng.normal(scale=0.01)  # noqa: E731
                q.append(dict(method=m, user_id=user, query_id=f"{user}_q", metric="reward",
                              value=0.2 + 0.3 * rho + noise()))
                q.append(dict(method=m, user_id=user, query_id=f"{user}_q", metric="rouge1",
                              value=0.2 + 0.3 * rho + noise()))
                up.append(dict(method=m, user_id=user, metric="rm_accuracy", value=acc + noise()))
                # Best-of-N: policy accuracy is the RM accuracy by construction
                pol = acc if fam == "bon" else 0.5 + 0.5 * (acc - 0.5) + noise()
                up.append(dict(method=m, user_id=user, metric="policy_accuracy", value=pol))
                up.append(dict(method=m, user_id=user, metric="win_rate", value=0.9))
                up.append(dict(method=m, user_id=user, metric="true_win_rate",
                               value=0.4 + rho + noise()))
                if fam == "bon":
                    up.append(dict(method=m, user_id=user, metric="rho_eff",
                                   value=rho + noise()))
                    up.append(dict(method=m, user_id=user, metric="capture",
                                   value=rho + noise()))
        q.append(dict(method="zero_shot", user_id=user, query_id=f"{user}_q", metric="reward",
                      value=0.25))
    return pd.DataFrame(q), pd.DataFrame(up)


def test_agreement_is_over_reward_models_and_outcomes_are_no_predictors(tmp_path):
    quality, upstream = _planted()
    paths = write_tables(tmp_path, quality, upstream, ci=0.9, n_boot=300, seed=0)
    t6 = pd.read_csv(paths["table6_rank_agreement"])
    # no outcome-derived column among the predictors
    assert not {"capture", "true_win_rate"} & set(t6["upstream"])
    tau = t6[(t6["statistic"] == "kendall_tau") & (t6["quality"] == "reward")]
    tau = tau.set_index(["family", "upstream"])
    # one point per reward model within a family, all users
    assert tau.loc[("best_of_n", "rho_eff"), "n_points"] == 4
    assert tau.loc[("args", "rm_accuracy"), "n_points"] == 4
    assert tau.loc[("all", "rm_accuracy"), "n_points"] == 8
    assert (tau["n_users"] == 8).all()
    assert tau.loc[("best_of_n", "rho_eff"), "estimate"] == pytest.approx(1.0)
    assert tau.loc[("best_of_n", "rm_accuracy"), "estimate"] == pytest.approx(-1.0)
    # Table 2's correlation: ARGS only (Best-of-N's two accuracies are equal by construction)
    t2 = pd.read_csv(paths["table2_correlations"])
    assert set(t2["family"]) == {"args"} and (t2["n_points"] == 4).all()
    # the question the package exists for, with its interval
    rq = pd.read_csv(paths["rho_eff_vs_accuracy"]).set_index(["quality", "statistic"])
    r = rq.loc[("reward", "kendall_tau")]
    assert r["rho_eff"] == pytest.approx(1.0) and r["rm_accuracy"] == pytest.approx(-1.0)
    assert r["difference"] == pytest.approx(2.0) and r["ci_low"] > 0
    assert r["n_points"] == 4 and r["n_users"] == 8


def test_pool_draw_win_rates_match_brute_force():
    rng = np.random.default_rng(1)
    t = pd.DataFrame({"query_id": np.repeat(["q0", "q1"], [5, 7]),
                      "score_x": np.r_[[3, 3, 1, 0, 2], rng.normal(size=7)],
                      "reward": rng.random(12)})
    got = pool_draw_win_rates(t, "score_x").set_index("query_id")
    for q, g in t.groupby("query_id"):
        s, r = g["score_x"].to_numpy(), g["reward"].to_numpy()
        top = np.flatnonzero(s == s.max())
        circ, true = [], []
        for i in top:  # the selected candidate (a tied top group is averaged) ...
            for j in range(len(s)):  # ... against every equally likely draw
                circ.append((s[i] > s[j]) + 0.5 * (s[i] == s[j]))
                true.append((r[i] > r[j]) + 0.5 * (r[i] == r[j]))
        assert got.at[q, "circular"] == pytest.approx(np.mean(circ))
        assert got.at[q, "true"] == pytest.approx(np.mean(true))
        assert got.at[q, "ceiling"] == pytest.approx(1 - 1 / (2 * len(s)))
    # a unique top reaches the ceiling by its own score: circular by construction
    assert got.at["q1", "circular"] == pytest.approx(got.at["q1", "ceiling"])
    assert got.at["q0", "circular"] < got.at["q0", "ceiling"]


def test_table5_draws_the_ceiling_only_against_a_pool_draw(tmp_path):
    quality, upstream = _planted()
    extra = []
    for u in upstream["user_id"].unique():
        for m in ("bon_a", "bon_b"):
            extra += [dict(method=m, user_id=u, metric="win_rate_vs_pool", value=0.9375),
                      dict(method=m, user_id=u, metric="true_win_rate_vs_pool", value=0.6),
                      dict(method=m, user_id=u, metric="ceiling_vs_pool", value=0.9375)]
    upstream = pd.concat([upstream, pd.DataFrame(extra)], ignore_index=True)
    paths = write_tables(tmp_path, quality, upstream, ci=0.9, n_boot=100, seed=0)
    t5 = pd.read_csv(paths["table5_win_rate"])
    vs_zero = t5[t5["comparison"] == "zero-shot answer"]
    vs_pool = t5[t5["comparison"] == "random draw from the pool"]
    assert len(vs_zero) == 8 and vs_zero["own_score_ceiling"].isna().all()
    assert sorted(vs_pool["method"]) == ["bon_a", "bon_b"]
    assert vs_pool["own_score_ceiling"].tolist() == pytest.approx([0.9375, 0.9375])
    assert "ceiling" in (tmp_path / "tables" / "table5_win_rate.md").read_text()


def test_report_paragraph_answers_the_rho_eff_question(tmp_path):
    import json

    from ttp_diag.full_report import evaluation_summary

    quality, upstream = _planted()
    write_tables(tmp_path, quality, upstream, ci=0.9, n_boot=200, seed=0)
    (tmp_path / "eval_summary.json").write_text(json.dumps({"adapt_users": ["u0"] * 8}))
    text = evaluation_summary(tmp_path)
    assert "Across 4 Best-of-N reward models and 8 users" in text
    assert "rho_eff predicts it better" in text


def test_paired_difference_against_zero_shot_by_hand(tmp_path):
    """Issue 20: each method minus zero_shot on the same users, with its interval and an exact
    sign-flip p; the evaluation verdict then says which methods beat zero-shot."""
    from ttp_diag.gen.evaluation.tables import method_summary
    from ttp_diag.stats import bootstrap_mean_ci, resample_counts
    from ttp_diag.verdict import eval_verdict

    users = [f"u{i}" for i in range(6)]
    zs = np.array([0.10, 0.20, 0.15, 0.30, 0.25, 0.05])
    good = zs + np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])  # every user gains
    mixed = zs + np.array([0.05, -0.04, 0.03, -0.02, 0.01, -0.03])
    rows = [dict(method=m, user_id=u, metric="reward", value=v)
            for m, vals in (("zero_shot", zs), ("good", good), ("mixed", mixed))
            for u, v in zip(users, vals, strict=True)]
    rows.append(dict(method="good", user_id="u6", metric="reward", value=0.9))  # unpaired
    s = method_summary(pd.DataFrame(rows), ci=0.9, n_boot=400, seed=3).set_index("method")
    assert s.loc["good", "diff"] == pytest.approx(0.035)  # u6 has no zero_shot: left out
    assert s.loc["good", "n_paired"] == 6 and s.loc["good", "n_users"] == 7
    # exact sign flip over 2**6 patterns: only the observed one and its mirror are as extreme
    assert s.loc["good", "diff_p"] == pytest.approx(2 / 64)
    # mixed: |mean| 0 -> every pattern is at least as extreme
    assert s.loc["mixed", "diff"] == pytest.approx(0.0, abs=1e-12)
    assert s.loc["mixed", "diff_p"] == pytest.approx(1.0)
    # the interval is the user bootstrap of the per-user differences on the shared resamples
    counts = resample_counts(7, 400, 3)
    d = np.append(good - zs, np.nan)
    lo, hi = bootstrap_mean_ci(d, ci=0.9, counts=counts)
    assert (s.loc["good", "diff_low"], s.loc["good", "diff_high"]) == pytest.approx(
        (lo[0], hi[0]))
    assert np.isnan(s.loc["zero_shot", "diff_low"])
    v = eval_verdict(s.reset_index(), metrics=("reward",))
    assert v.finding("good", "reward") == "better"
    assert v.finding("mixed", "reward") == "same"
    # the table file
    q = pd.DataFrame(rows).assign(query_id="q")
    paths = write_tables(tmp_path, q, pd.DataFrame(columns=["method", "user_id", "metric",
                                                            "value"]), ci=0.9, n_boot=400)
    vs = pd.read_csv(paths["generation_quality_vs_zero_shot"]).set_index("method")
    assert vs.loc["good", "reward"].startswith("+0.035 [")
    assert vs.loc["good", "reward"].endswith("(p = 0.031)")
    md = (tmp_path / "tables" / "generation_quality_vs_zero_shot.md").read_text()
    assert md.rstrip().splitlines()[-1].endswith("| 6 |")  # a count, not 6.000


def test_report_section_opens_with_the_evaluation_verdict(tmp_path):
    import json

    from ttp_diag.full_report import evaluation_section, evaluation_verdict
    from ttp_diag.report import Report

    quality, upstream = _planted()
    write_tables(tmp_path, quality, upstream, ci=0.9, n_boot=200, seed=0)
    (tmp_path / "eval_summary.json").write_text(json.dumps({"adapt_users": ["u0"] * 8}))
    rep = Report("r")
    evaluation_section(rep, tmp_path, tmp_path)
    page = rep.to_html()
    v = evaluation_verdict(tmp_path)
    # planted: every bon/args method has reward 0.23-0.41 vs zero_shot 0.25 on all 8 users
    assert v.finding("bon_d", "reward") == "better"
    assert v.finding("bon_a", "reward") == "worse"
    assert "on reward, 6 of 8 beat zero_shot beyond noise" in v.headline
    assert "90% interval" in v.headline
    assert page.index("6 of 8 beat zero_shot") < page.index("An evaluation of")


def test_old_table6_is_named_not_summarised(tmp_path):
    import json

    from ttp_diag.full_report import evaluation_summary

    quality, upstream = _planted()
    write_tables(tmp_path, quality, upstream, ci=0.9, n_boot=100, seed=0)
    (tmp_path / "eval_summary.json").write_text(json.dumps({"adapt_users": ["u0"] * 8}))
    f = tmp_path / "tables" / "table6_rank_agreement.csv"
    t6 = pd.read_csv(f)
    t6.drop(columns=["n_points"]).assign(n_methods=8).to_csv(f, index=False)
    text = evaluation_summary(tmp_path)
    assert "written by an older version" in text and "ranks the reward models" not in text
