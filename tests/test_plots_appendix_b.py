"""Figs. A1-A3 (policy families, LoRA policy, ablations) and the sweep results table, on
synthetic score tables (no generation, no torch)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.analysis.sweeps import SWEEP_COLUMNS, curve_table, sweep_table
from ttp_diag.plots.ablations import ablation_curves
from ttp_diag.plots.policies import capture_at_max, lora_policy_curves, policy_families
from ttp_diag.plots.style import COLORS, rm_color

SCRIPT = Path(__file__).resolve().parents[1] / "paper_figures" / "make_all.py"


def _t(seed):
    return td.simulate_score_table(n_users=6, n_queries=3, n_candidates=6, seed=seed)


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def test_policy_families_one_panel_per_policy_with_the_shared_colours():
    tables = {"RAG": _t(0), "Persona": _t(1), "Persona+RAG": _t(2)}
    fig = policy_families(tables, n_boot=30)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "(a) RAG", "(b) Persona", "(c) Persona+RAG"]
    lines = _lines(fig.axes[0])
    assert lines["Random"].get_color() == COLORS["random"]
    assert lines["Random"].get_linestyle() == "--"
    prob = [ln for lab, ln in lines.items() if "Prob" in lab][0]
    assert prob.get_color() == rm_color("score_prob")
    # the title's capture is (prob - random) / (oracle - random) at the largest N
    fit = td.BestOfN().fit(tables["RAG"])
    c = {s: fit.curve(s)["utility"].iloc[-1] for s in ("random", "oracle", "score_prob")}
    want = (c["score_prob"] - c["random"]) / (c["oracle"] - c["random"])
    assert capture_at_max(fit, "score_prob") == pytest.approx(want)
    assert f"= {want:.0%}" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="at least one policy"):
        policy_families({})


def test_lora_policy_curves_dashed_base_solid_lora_same_colour():
    fig = lora_policy_curves(_t(0), _t(1), selectors=["random", "score_prob", "oracle"],
                             n_boot=30)
    lines = _lines(fig.axes[0])
    base = lines["Probabilistic User RM (RAG policy)"]
    lora = lines["Probabilistic User RM (per-user LoRA policy)"]
    assert base.get_linestyle() == "--" and lora.get_linestyle() == "-"
    assert base.get_color() == lora.get_color() == rm_color("score_prob")
    np.testing.assert_allclose(lora.get_ydata(),
                               td.BestOfN().fit(_t(1)).curve("score_prob")["utility"])


def _sweep_dir(tmp_path):
    sw = tmp_path / "sw"
    pts = [("pooling", "mean", True), ("pooling", "last", False), ("lora_rank", 4, False)]
    man = {"parent": str(tmp_path / "parent"), "points": []}
    for i, (param, value, default) in enumerate(pts):
        name = f"{param}={value}"
        (sw / name).mkdir(parents=True)
        _t(i).to_parquet(sw / name / "scores.parquet", index=False)
        man["points"].append({"param": param, "value": value, "dir": name,
                              "rm_kinds": ["prob"], "is_default": default})
    man["points"].append({"param": "lora_rank", "value": 16, "dir": "lora_rank=16",
                          "rm_kinds": ["prob"], "is_default": False})  # not run yet
    (sw / "sweep.json").write_text(json.dumps(man))
    return sw


def test_sweep_table_is_tidy_and_pinned_to_bestofn(tmp_path):
    tab = sweep_table(_sweep_dir(tmp_path), n_boot=40)
    assert list(tab.columns) == SWEEP_COLUMNS
    assert tab.attrs["missing"] == ["lora_rank=16"]
    assert set(tab["rm"]) == {"random", "oracle", "score_prob"}
    fit = td.BestOfN(ci=0.95, n_boot=40).fit(_t(1), ["score_prob"])
    got = tab[(tab["value"] == "last") & (tab["rm"] == "score_prob")]
    np.testing.assert_allclose(got["utility"], fit.curve("score_prob")["utility"])
    np.testing.assert_allclose(got["ci_low"], fit.curve("score_prob")["ci_low"])
    d = fit.diagnostics_["score_prob"]
    assert (got["alpha"].iloc[0], got["beta"].iloc[0]) == (d.alpha, d.beta)
    assert got["rho_eff"].iloc[0] == pytest.approx(d.rho_eff)
    assert tab[tab["rm"] == "random"]["alpha"].isna().all()
    one = curve_table(_t(1), ["score_prob"], ci=None)
    assert one["ci_low"].isna().all() and one["n_users"].iloc[0] == 6


def test_ablation_curves_highlight_the_full_model(tmp_path):
    tab = sweep_table(_sweep_dir(tmp_path), n_boot=40)
    fig = ablation_curves(tab)
    assert [ax.get_title() for ax in fig.axes] == ["(a) Pooling", "(b) LoRA rank"]
    lines = _lines(fig.axes[0])
    full = lines["mean: full model"]
    assert full.get_color() == rm_color("score_prob") and full.get_linewidth() == 2.6
    assert lines["last"].get_color() != full.get_color()
    assert lines["Random"].get_linestyle() == "--"
    with pytest.raises(ValueError, match="column"):
        ablation_curves(tab.drop(columns=["utility"]))


def _make_all():
    spec = importlib.util.spec_from_file_location("make_all_b", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_make_all_draws_a1_a3_from_folders_and_says_what_it_skips(tmp_path, capsys):
    sw = _sweep_dir(tmp_path)
    runs = {}
    for i, name in enumerate(("RAG", "Persona", "LoRA")):
        (tmp_path / name).mkdir()
        _t(10 + i).to_parquet(tmp_path / name / "scores.parquet", index=False)
        runs[name] = str(tmp_path / name)
    out = tmp_path / "figs"
    mk = _make_all()
    assert mk.main(["--skip-main", "--out", str(out), "--n-boot", "30", "--policy-runs",
                    f"RAG={runs['RAG']}", f"Persona={runs['Persona']}", "--lora-run",
                    runs["LoRA"], "--sweep-dir", str(sw)]) == 0
    files = {p.name for p in out.iterdir()}
    assert {"figA1_policy_families.png", "figA2_lora_policy.png", "figA3_ablations.png",
            "table_a1_policy_curves.csv", "table_a3_ablations.csv"} <= files
    a1 = pd.read_csv(out / "table_a1_policy_curves.csv")
    assert set(a1["policy"]) == {"RAG", "Persona", "Per-user LoRA"}
    capsys.readouterr()
    assert mk.main(["--skip-main", "--out", str(tmp_path / "none")]) == 0
    said = capsys.readouterr().out
    assert "Figs. A1 and A2 skipped" in said and "Fig. A3 skipped" in said
