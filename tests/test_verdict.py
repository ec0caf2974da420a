"""The verdict (issue 22): sentences computed from the numbers, on tables with known truth.

Each setting is a simulated score table whose truth is known (``td.simulate_score_table``): a
healthy reward model, one whose hardest quarter of users collapses, one that hacks 40% of the
queries, one that ranks at chance, one that ranks against the reward, and a sample too small
for an interval. The verdict's finding must follow the truth, and its numbers must be the
ones computed independently (curves of the exact engine, the null test's p-value).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import ttp_diag as td
from ttp_diag.simulate import SimulatedRM
from ttp_diag.verdict import LEVEL, MIN_USERS, Verdict, model_findings, model_verdict

NS = [1, 4, 16]


def _fit(models, n_users=24, n_queries=8, seed=0):
    t = td.simulate_score_table(n_users=n_users, n_queries=n_queries, n_candidates=16,
                                models=models, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return td.BestOfN(ns=NS, ci=0.95, n_boot=300, seed=0).fit(t)


@pytest.fixture(scope="module")
def fits():
    return {
        "healthy": _fit({"ok": SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.5)}),
        "collapse": _fit({"c": SimulatedRM(alpha=0.25, beta=0.0, rho_plus=0.6,
                                           rho_collapsed=0.0)}),
        "hacking": _fit({"h": SimulatedRM(alpha=0.0, beta=0.4, rho_plus=0.6,
                                          rho_minus=-0.5)}),
        "chance": _fit({"z": SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.0)}),
        "small": _fit({"ok": SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.5)}, n_users=4),
    }


def test_healthy_rm_gains_and_shows_no_failure(fits):
    v = fits["healthy"].verdict()
    assert v.finding("score_ok", "gain") == "gain"
    assert v.finding("score_ok", "collapse") in ("none", "weak_rm")
    assert v.finding("score_ok", "hacking") == "noise"
    assert v.finding("score_ok", "law") in ("good", "fair")
    assert "No sign of reward hacking beyond noise" in v.sentences("score_ok")


def test_collapsed_quarter_is_called_collapse(fits):
    fit = fits["collapse"]
    v = fit.verdict()
    d = fit.diagnostics_["score_c"]
    assert d.n_collapsed == 6 and d.null["alpha_p"] < LEVEL  # the truth: 6 of 24 users
    assert v.finding("score_c", "collapse") == "collapse"
    assert "6 of 24 users (25%) collapse" in v.sentences("score_c")
    # the healthy RM's sentence on the same aspect differs
    assert v.sentences("score_c") != fits["healthy"].verdict().sentences("score_ok")


def test_hacking_is_called_hacking(fits):
    v = fits["hacking"].verdict()
    assert v.finding("score_h", "hacking") == "hacking"
    assert "Reward hacking beyond noise" in v.sentences("score_h")
    assert fits["healthy"].verdict().finding("score_ok", "hacking") == "noise"


def test_chance_rm_is_not_distinguishable_from_random(fits):
    v = fits["chance"].verdict()
    assert v.finding("score_z", "gain") == "none"
    assert "not distinguishable from random selection" in v.sentences("score_z")
    # with no real gain the law's error is said to be uninformative
    assert v.finding("score_z", "law") in ("uninformative", None)


def test_too_small_sample_gives_no_interval(fits):
    v = fits["small"].verdict()
    assert v.finding("score_ok", "gain") == "too_few_users"
    assert f"need {MIN_USERS}" in v.sentences("score_ok")
    assert "[" not in v.sentences("score_ok").split(".")[0]  # no interval in the gain sentence


def test_gain_numbers_are_the_exact_curves(fits):
    """The gain and the oracle share in the sentence equal the engine's curves at N = 16."""
    fit = fits["healthy"]
    c = td.bon_curves(fit.table_, ["random", "oracle", "score_ok"], [16], split=None)
    u = c.set_index("selector")["utility"]
    gain, oracle_gain = u["score_ok"] - u["random"], u["oracle"] - u["random"]
    text = fit.verdict().sentences("score_ok")
    m = re.search(r"gains ([+-]\d\.\d+) \[([+-]\d\.\d+), ([+-]\d\.\d+)\]", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(gain, abs=6e-4)
    assert float(m.group(2)) < gain < float(m.group(3))
    assert f"{gain / oracle_gain:.0%} of the oracle's gain" in text


def test_law_error_relative_to_gain_beside_relmae(fits):
    fit = fits["healthy"]
    row = fit.summary.query("selector == 'score_ok' and shape == @fit.best_shape_").iloc[0]
    text = fit.verdict().sentences("score_ok")
    assert f"within {row['rel_mae']:.1%} of its level" in text
    assert f"{row['gain_error']:.0%} of its gain" in text
    assert "gain_err=" in fit.summary_text()


def test_verdict_printed_first(fits, capsys):
    fits["healthy"].print_summary()
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("Verdict:")
    assert "Verdict:" in str(fits["healthy"])


def test_loss_and_weak_wording():
    lost = model_findings("RM", n=8, gain=-0.02, gain_ci=(-0.03, -0.01), n_users=20)
    assert lost[0]["finding"] == "loss" and "worse than chance" in lost[0]["text"]
    weak = model_findings("RM", n=8, gain=0.01, gain_ci=(0.0001, 0.02), gain_p=0.06,
                          n_users=10)
    assert weak[0]["finding"] == "weak"
    poor = model_findings("RM", n=8, gain=0.02, gain_ci=(0.01, 0.03), n_users=20,
                          rel_mae=0.001, gain_error=1.3)
    assert poor[1]["finding"] == "poor" and "no better than predicting no gain" in poor[1]["text"]
    assert model_verdict("RM") == ""


def test_diagnostics_verdict_and_html():
    t = td.simulate_score_table(n_users=20, n_queries=6, n_candidates=12, seed=1)
    d = td.diagnose(t, "score_prob", ci=0.95, n_boot=100, seed=0)
    v = d.verdict()
    assert isinstance(v, Verdict)
    assert v.finding("score_prob", "gain") == "gain"
    lo, hi = d.intervals["capture"]
    assert f"[{lo:.0%}, {hi:.0%}]" in v.sentences("score_prob")
    html = d._repr_html_()
    assert "Verdict." in html and "alpha" in html
    assert list(v.summary.columns) == ["score", "rm", "aspect", "finding", "text"]


def test_bestofn_repr_html_has_verdict_table_and_figure(fits):
    html = fits["healthy"]._repr_html_()
    assert "Verdict." in html and "gain_error" in html and "data:image/png;base64" in html
    assert td.BestOfN()._repr_html_().startswith("<pre>")


def test_verdict_is_cached_and_changes_with_n(fits):
    fit = fits["healthy"]
    assert fit.verdict() is fit.verdict()
    v4 = fit.verdict(n=4)
    assert "Best-of-4" in v4.sentences("score_ok")
    assert np.isfinite(fit.summary["gain_error"]).any()


def test_frame_verdict_on_the_zoo_results_table():
    """The zoo's CSV (one row per reward-model family) gets the same sentences; its findings
    follow the table's own numbers: a gain only where the interval excludes 0, hacking only
    where the null p is below the level."""
    from pathlib import Path

    import pandas as pd

    from ttp_diag.verdict import frame_verdict

    # the zoo table re-run with the fixed reward-model contract (issue 20, `ttp-diag zoo`)
    zoo = pd.read_csv(Path(__file__).resolve().parents[1] / "docs" / "zoo_results_demo10.csv")
    cols = {"gain": "bon_gain_N16", "gain_ci": ("gain_lo", "gain_hi"), "alpha": "alpha",
            "alpha_p": "alpha_p", "beta": "beta", "beta_p": "beta_p",
            "alpha_null": "alpha_null", "beta_null": "beta_null"}
    v = frame_verdict(zoo, label="model", n=16, n_users=10, headline="zoo", columns=cols)
    for rec in zoo.to_dict("records"):
        m = rec["model"]
        want_gain = "gain" if rec["gain_lo"] > 0 else ("loss" if rec["gain_hi"] < 0 else "none")
        assert v.finding(m, "gain") == want_gain
        assert (v.finding(m, "hacking") == "hacking") == (rec["beta_p"] < LEVEL)
        assert (v.finding(m, "collapse") == "collapse") == (rec["alpha_p"] < LEVEL)
    n_gain = int((zoo["gain_lo"] > 0).sum())
    assert n_gain >= 2  # the demo table's det and prob rows at least
    assert sum(v.summary.query("aspect == 'gain'")["finding"] == "gain") == n_gain


def test_zoo_verdict_on_known_truth_rows():
    """Hand-made zoo rows whose answers are known: accuracy interval above / spanning / below
    0.5, gain interval above / spanning 0, nulls rejecting or not; a table without the null
    columns says untested, never a finding."""
    import pandas as pd

    from ttp_diag.verdict import CHANCE_ACCURACY, zoo_verdict

    assert CHANCE_ACCURACY == 0.5
    base = dict(n_pairs=100, n_users=10, alpha=0.2, alpha_null=0.1, beta=0.3, beta_null=0.25)
    r = pd.DataFrame([
        dict(model="good", acc_heldout=0.7, acc_lo=0.6, acc_hi=0.8, bon_gain_N16=0.05,
             gain_lo=0.02, gain_hi=0.08, alpha_p=0.01, beta_p=0.5, **base),
        dict(model="coin", acc_heldout=0.52, acc_lo=0.45, acc_hi=0.59, bon_gain_N16=0.001,
             gain_lo=-0.01, gain_hi=0.012, alpha_p=0.3, beta_p=0.001, **base),
        dict(model="bad", acc_heldout=0.3, acc_lo=0.2, acc_hi=0.4, bon_gain_N16=-0.05,
             gain_lo=-0.08, gain_hi=-0.02, alpha_p=0.9, beta_p=0.9, **base)])
    v = zoo_verdict(r)
    want = {"good": ("better", "gain", "collapse", "noise"),
            "coin": ("chance", "none", "weak_rm", "hacking"),
            "bad": ("worse", "loss", "weak_rm", "noise")}
    for m, w in want.items():
        got = tuple(v.finding(m, a) for a in ("accuracy", "gain", "collapse", "hacking"))
        assert got == w, m
    assert "2 of 10 users" in v.sentences("good")  # alpha 0.2 of 10 users
    assert "70.0% [60.0%, 80.0%]" in v.sentences("good")
    bare = r.drop(columns=["alpha_null", "beta_null", "alpha_p", "beta_p"])
    vb = zoo_verdict(bare)
    assert {vb.finding(m, "collapse") for m in want} == {"untested"}
    assert {vb.finding(m, "hacking") for m in want} == {"untested"}


def test_eval_verdict_on_known_truth_tables():
    """Paired differences above / across / below 0 give better / same / worse; without them
    the verdict says the paired difference is missing; rho_eff's difference interval decides
    which predictor wins, or says the sample cannot tell."""
    import pandas as pd

    from ttp_diag.verdict import eval_verdict, verdict_markdown

    s = pd.DataFrame({
        "method": ["zero_shot", "icl", "args", "lora"], "metric": "rouge1",
        "mean": [0.2, 0.3, 0.2, 0.1], "ci_low": [0.18, 0.27, 0.17, 0.08],
        "ci_high": [0.22, 0.33, 0.23, 0.12], "diff": [0.0, 0.1, 0.0, -0.1],
        "diff_low": [0.0, 0.07, -0.02, -0.13], "diff_high": [0.0, 0.13, 0.02, -0.07],
        "n_users": 9})
    rho = pd.DataFrame({"family": ["best_of_n", "best_of_n", "lora_best_of_n"],
                        "quality": ["reward", "rouge1", "reward"],
                        "statistic": "spearman_rho", "rho_eff": [0.9, 0.1, 0.5],
                        "rm_accuracy": [0.1, 0.8, 0.4], "difference": [0.8, -0.7, 0.1],
                        "ci_low": [0.3, -1.2, -0.4], "ci_high": [1.3, -0.2, 0.6],
                        "n_points": 4, "n_users": 9})
    v = eval_verdict(s, rho)
    assert [v.finding(m, "rouge1") for m in ("icl", "args", "lora")] == [
        "better", "same", "worse"]
    assert v.finding("zero_shot", "rouge1") is None  # the baseline is not compared to itself
    codes = list(v.findings.loc[v.findings["aspect"] == "rho_eff", "finding"])
    assert codes == ["rho_eff", "accuracy", "undecided"]
    assert "+0.80 [+0.30, +1.30]" in v.sentences("rho_eff vs accuracy (best_of_n, reward)")
    unpaired = eval_verdict(s.drop(columns=["diff", "diff_low", "diff_high"]))
    assert set(unpaired.findings.loc[unpaired.findings["aspect"] == "rouge1", "finding"]) == {
        "untested"}
    assert "no paired difference against zero_shot" in unpaired.headline
    assert "0.300 [0.270, 0.330] against zero_shot 0.200" in unpaired.sentences("icl")
    assert "Beats zero_shot on rouge1: +0.100 [+0.070, +0.130]" in v.sentences("icl")
    nan_rho = rho.assign(rho_eff=float("nan"))
    assert set(eval_verdict(s, nan_rho).findings["finding"].iloc[-3:]) == {"unknown"}
    assert unpaired.finding("rho_eff vs accuracy", "rho_eff") == "missing"
    assert verdict_markdown(v, "Evaluation verdict").startswith("# Evaluation verdict")
