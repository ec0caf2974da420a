"""Every figure builds and saves, with labelled axes, a legend and one colour per reward model."""

import subprocess
import sys

import matplotlib.colors as mcolors
import numpy as np
import pytest

import ttp_diag as td
import ttp_diag.plots as F
from ttp_diag.analysis import risk_report
from ttp_diag.plots import savefig
from ttp_diag.plots.style import COLORS, EXTRA_PALETTE, colors_for, rm_color, rm_key, rm_label


@pytest.fixture(scope="module")
def table():
    return td.simulate_score_table(n_users=12, n_queries=4, n_candidates=8, seed=0,
                                   collapsed_sigma_ratio=0.5)


@pytest.fixture(scope="module")
def tasks(table):
    other = td.simulate_score_table(n_users=10, n_queries=3, n_candidates=6, seed=1)
    return {"TaskA": table, "TaskB": other}


FIGURES = {
    "scaling_curves": lambda t, k: F.scaling_curves(t, training_baseline=0.17),
    "scaling_curves_tasks": lambda t, k: F.scaling_curves(k, ci=0.9),
    "oracle_scaling": lambda t, k: F.oracle_scaling(k, shapes=("sqrt_log", "gaussian"),
                                                    training_baseline={"TaskA": 0.2}),
    "correlation_distributions": lambda t, k: F.correlation_distributions(k),
    "task_panel": lambda t, k: F.task_panel(k),
    "failure_modes": lambda t, k: F.failure_modes(t, "score_det", "score_prob", "var_prob",
                                                  normal_threshold=0.2),
    "failure_modes_fit": lambda t, k: F.failure_modes(td.BestOfN().fit(t), "score_det",
                                                      "score_prob"),
    "predicted_vs_observed": lambda t, k: F.predicted_vs_observed(k, shape="gaussian"),
    "sub_gaussian_figure": lambda t, k: F.sub_gaussian_figure(t),
    "linearity_figure": lambda t, k: F.linearity_figure(t, n_bins=6),
    "collapse_panels": lambda t, k: F.collapse_panels(k, "score_det", "score_prob",
                                                      normal_threshold=0.2),
    "hacking_panels": lambda t, k: F.hacking_panels(k, "score_det", "score_prob", "var_prob"),
    "task_panel_fits": lambda t, k: F.task_panel({n: td.BestOfN().fit(v) for n, v in k.items()},
                                                 shape="gaussian"),
    "confidence_bands": lambda t, k: F.confidence_bands(t, n_boot=100),
    "gain_bands": lambda t, k: F.confidence_bands(t, n_boot=100, gain=True),
    "risk_figure": lambda t, k: F.risk_figure(risk_report(t)),
    "risk_figure_from_table": lambda t, k: F.risk_figure(t, ["score_det"]),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_builds_saves_and_is_labelled(name, table, tasks, tmp_path):
    fig = FIGURES[name](table, tasks)
    path = savefig(fig, tmp_path / f"{name}.png")
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert visible
    for ax in visible:
        assert ax.get_xlabel().strip(), f"{name}: an axes has no x label"
        assert ax.get_ylabel().strip(), f"{name}: an axes has no y label"
        assert ax.get_title().strip(), f"{name}: an axes has no title"
    assert any(ax.get_legend() is not None for ax in visible) or fig.legends, name


def line_colors(fig):
    """label -> colour (hex) of every labelled line of a figure."""
    out = {}
    for ax in fig.axes:
        for cont in ax.containers:  # errorbar plots keep their label on the container
            if hasattr(cont, "lines") and cont.lines[0] is not None:
                out.setdefault(cont.get_label(),
                               mcolors.to_hex(cont.lines[0].get_color()).upper())
        for line in ax.get_lines():
            lab = line.get_label()
            if not lab.startswith("_"):
                out.setdefault(lab, mcolors.to_hex(line.get_color()).upper())
    return out


def test_same_rm_same_colour_across_figures(table):
    a = line_colors(F.scaling_curves(table))
    b = line_colors(F.confidence_bands(table, n_boot=50))
    for s in ["random", "oracle", *td.score_columns(table)]:
        lab = rm_label(s)
        assert a[lab] == b[lab] == rm_color(s).upper(), s
    # Fig. 5 labels carry the relMAE; the colour is still the model's
    c = line_colors(F.task_panel(table))
    det = [col for lab, col in c.items() if lab.startswith("Deterministic User RM")]
    assert det == [COLORS["det"].upper()]


def test_style_names_and_extra_columns():
    assert rm_key("score_prob") == rm_key("Probabilistic User RM") == "prob"
    assert rm_label("score_global") == "Global RM"
    assert rm_label("score_det") == "Deterministic User RM"
    assert rm_label("score_prob") == "Probabilistic User RM"
    assert rm_label("score_mine") == "mine"
    assert rm_color("score_mine") in EXTRA_PALETTE
    assert rm_color("score_mine") == rm_color("score_mine")  # stable
    names = [f"score_extra{i}" for i in range(8)] + ["score_det", "oracle"]
    cols = colors_for(names)
    assert len(set(cols.values())) == len(names)  # distinct within one figure
    assert cols["score_det"] == COLORS["det"]
    assert colors_for(list(reversed(names))) == cols  # independent of the order given


def test_write_all_figures(tasks, tmp_path):
    paths = F.write_all_figures(tasks, tmp_path, shapes=("gaussian",), n_boot=50,
                                base="score_det", new="score_prob", var="var_prob")
    names = {p.rsplit("/", 1)[-1] for p in paths}
    expected = {"fig1_3_scaling_curves.png", "fig2_oracle_scaling.png",
                "fig4_correlation_distributions.png", "fig5_task_panel_gaussian.png",
                "figA5_predicted_vs_observed_gaussian.png", "figA8_collapse_panels.png",
                "figA9_hacking_panels.png", "fig6_failure_modes_TaskA.png",
                "figA4_confidence_bands_TaskB.png", "figA6_sub_gaussian_TaskA.png",
                "figA7_linearity_TaskB.png"}
    assert expected <= names
    assert all((tmp_path / n).exists() for n in names)


def test_import_ttp_diag_does_not_import_matplotlib():
    code = ("import sys, ttp_diag, ttp_diag.analysis, ttp_diag.report; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_unknown_columns_with_a_hash_collision_get_distinct_consistent_colours():
    from ttp_diag.plots.style import _hash_index

    names = [f"score_m{i}" for i in range(40)]
    a, b = next((x, y) for i, x in enumerate(names) for y in names[i + 1:]
                if _hash_index(rm_key(x)) == _hash_index(rm_key(y)))
    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=6, seed=0)
    t = t.rename(columns={"score_global": a, "score_det": b}).drop(columns="score_prob")
    c1 = line_colors(F.scaling_curves(t))
    c2 = line_colors(F.predicted_vs_observed(t))
    assert c1[rm_label(a)] != c1[rm_label(b)]
    expected = {k: v.upper() for k, v in colors_for([a, b]).items()}
    assert c1[rm_label(a)] == expected[a] and c1[rm_label(b)] == expected[b]
    # Fig. A5 labels its lines "observed"/"predicted": compare by the panel's colours instead
    panel_colours = {mcolors.to_hex(ax.get_lines()[0].get_color()).upper() for ax in
                     F.predicted_vs_observed(t).axes if ax.get_visible()}
    assert panel_colours == set(expected.values())
    assert c2  # the figure has labelled lines


def test_write_all_figures_diagnoses_each_column_once(tasks, tmp_path, monkeypatch, capsys):
    import ttp_diag.bestofn as bestofn

    calls = []
    real = bestofn.diagnose

    def counting(table, score, **kw):
        calls.append(score)
        return real(table, score, **kw)

    monkeypatch.setattr(bestofn, "diagnose", counting)
    monkeypatch.setattr(td, "diagnose", counting)
    F.write_all_figures(tasks, tmp_path, shapes=("gaussian", "sqrt_log"), n_boot=20,
                        base="score_det", new="score_prob", var="var_prob")
    n_scores = sum(len(td.score_columns(t)) for t in tasks.values())
    assert len(calls) == n_scores  # one BestOfN fit per task; every figure reuses it
    assert capsys.readouterr().out == ""  # figures never print unless progress=True


def test_failure_figures_are_skipped_without_base_and_new(table, tmp_path):
    lines = []
    paths = F.write_all_figures(table, tmp_path, shapes=("gaussian",), n_boot=20,
                                progress=lines.append)
    names = [p.rsplit("/", 1)[-1] for p in paths]
    assert not any("failure" in n or "collapse" in n for n in names)
    assert any("pass base= and new=" in line for line in lines)


@pytest.mark.parametrize("func", ["plot_curves", "plot_theory", "plot_oracle", "plot_predicted",
                                  "plot_bands"])
def test_axes_level_panels_accept_ax(table, func):
    from matplotlib.figure import Figure

    from ttp_diag.plots import curves

    fit = td.BestOfN(ns=[1, 2, 4]).fit(table)
    ax = Figure().subplots()
    assert getattr(curves, func)(fit, ax) is ax
    assert ax.get_xlabel() == "N (candidates per query)"


def test_theory_panel_draws_the_refined_prediction_at_whole_n_only():
    """The refined prediction exists at whole N; on a dense grid it was drawn as steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttp_diag.plots.curves import plot_theory

    t = td.simulate_score_table(n_users=20, n_queries=6, n_candidates=6, seed=0)
    fit = td.BestOfN([1, 2, 4, 6], n_boot=20, seed=0, prediction="refined").fit(t)
    ax = plot_theory(fit)
    from ttp_diag.plots._common import color

    dashdot = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-." and len(ln.get_xdata())]
    for sel in fit.scores_:  # one prediction line per reward model, in its colour
        (ln,) = [x for x in dashdot if mcolors.same_color(x.get_color(), color(sel, fit.scores_))]
        assert np.asarray(ln.get_xdata(), float).tolist() == [1, 2, 3, 4, 5, 6]
    oracle = [x for x in dashdot if mcolors.same_color(x.get_color(), color("oracle", fit.scores_))]
    assert len(oracle[0].get_xdata()) == 200  # the law stays a smooth curve
    plt.close(ax.figure)
