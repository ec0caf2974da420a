"""Every kind of figure of the paper, drawn from score tables.

Each function takes one score table, or a dict ``task name -> score table`` for the
multi-task panels, computes what it shows with the public API (exact Best-of-N curves,
:func:`ttp_diag.diagnose`, :func:`ttp_diag.calibrate`, the analyses of
:mod:`ttp_diag.analysis`) and returns a :class:`matplotlib.figure.Figure` built on the Agg
canvas (no pyplot, no display). Save it with :func:`ttp_diag.plots.savefig`.

=========================================  ===============================================
function                                   paper figure
=========================================  ===============================================
:func:`scaling_curves`                     Figs. 1, 3 (curves vs random/oracle/baseline)
:func:`oracle_scaling`                     Fig. 2 (oracle with the calibrated theory line)
:func:`correlation_distributions`          Fig. 4 (rho_u and rho_q with 0.1 / 0 lines)
:func:`task_panel`                         Fig. 5 (curves+theory, rho_u / rho_q violins)
:func:`failure_modes`                      Fig. 6 (label std, user histogram, rescue, var)
:func:`predicted_vs_observed`              Fig. A5 (predicted vs observed grid)
:func:`sub_gaussian_figure`                Fig. A6 (empirical CDF vs Gaussian envelope)
:func:`linearity_figure`                   Fig. A7 (binned E[r* | r_hat] vs rho)
:func:`collapse_panels`                    Fig. A8 (cross-task user-level collapse)
:func:`hacking_panels`                     Fig. A9 (cross-task query-level hacking)
:func:`confidence_bands`                   Fig. A4 (bootstrap bands over users)
:func:`risk_figure`                        Tables A13/A14 as bars
=========================================  ===============================================

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import figures
>>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
>>> fig = figures.scaling_curves(t)
>>> fig.axes[0].get_xlabel()
'N (candidates per query)'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttp_diag.plots.style import (
    CATEGORY_COLORS,
    COLORS,
    LABELS,
    colors_for,
    new_figure,
    rm_color,
    rm_label,
    rm_linestyle,
    rm_marker,
    styled,
)

__all__ = [
    "collapse_panels",
    "confidence_bands",
    "correlation_distributions",
    "default_ns",
    "failure_modes",
    "hacking_panels",
    "linearity_figure",
    "oracle_scaling",
    "predicted_vs_observed",
    "resolve_pool",
    "risk_figure",
    "scaling_curves",
    "sub_gaussian_figure",
    "task_panel",
    "write_all_figures",
]

N_LABEL = "N (candidates per query)"
REWARD_LABEL = "Reward of selected candidate"
THRESHOLD_COLOR = "#B2182B"  # the paper's red dotted threshold lines

SHAPE_NAMES = {"sqrt_log": r"$\sqrt{\ln N}$", "gaussian": "E[max of N normals]",
               "kl": r"$\sqrt{2(\ln N - (N-1)/N)}$"}


# --------------------------------------------------------------------------- helpers
def _as_tasks(tables) -> dict:
    """A single table becomes ``{"": table}``; a dict is kept (task name -> table)."""
    if isinstance(tables, pd.DataFrame):
        return {"": tables}
    if isinstance(tables, dict) and tables and all(isinstance(v, pd.DataFrame)
                                                   for v in tables.values()):
        return dict(tables)
    raise TypeError("pass a score table (DataFrame) or a non-empty dict task name -> score table")


def _title(task: str, what: str) -> str:
    return f"{task}: {what}" if task else what


def _panel_letter(i: int) -> str:
    return f"({chr(ord('a') + i)}) "


def default_ns(table: pd.DataFrame, *, split: str | None = "val") -> list[int]:
    """Candidate counts to plot: every N up to the pool size (at most about 32 points).

    With equal pools that is the pool size. When pools differ (de-duplicated candidates) it
    is the median pool size, and queries with smaller pools use their whole pool for larger N
    (``pool="clip"``, chosen automatically by the figures, see :func:`resolve_pool`).

    Examples
    --------
    >>> import ttp_diag as td
    >>> default_ns(td.simulate_score_table(n_users=2, n_queries=2, n_candidates=6, seed=0))
    [1, 2, 3, 4, 5, 6]
    """
    from ttp_diag import validate_score_table

    t = validate_score_table(table, scores=[], split=split)
    m = max(int(np.median(t.groupby("query_id").size())), 2)
    if m <= 32:
        return list(range(1, m + 1))
    grid = np.unique(np.round(np.geomspace(1, m, 24)).astype(int))
    return [int(n) for n in grid]


def resolve_pool(table: pd.DataFrame, ns, pool=None) -> str:
    """``pool`` as given, or ``"clip"`` when some N exceeds the smallest pool, else ``"error"``.

    ``table`` must be already restricted to the analysed split.
    """
    if pool is not None:
        return pool
    smallest = int(table.groupby("query_id").size().min())
    return "clip" if max(ns) > smallest else "error"


def _scores(table: pd.DataFrame, scores) -> list[str]:
    from ttp_diag import score_columns

    if scores is None:
        return score_columns(table)
    if isinstance(scores, str):
        return [scores]
    return list(scores)


class _TaskAnalysis:
    """Curves, calibration, diagnostics and predictions of one task, computed once."""

    def __init__(self, table, scores, ns, *, split="val", shape="sqrt_log", refined=False,
                 ci=None, n_boot=1000, pool=None):
        import ttp_diag as td

        self.scores = _scores(table, scores)
        self.table = td.validate_score_table(table, scores=self.scores, split=split)
        self.ns = list(ns) if ns is not None else default_ns(self.table, split=None)
        self.shape = shape
        self.pool = pool = resolve_pool(self.table, self.ns, pool)
        sel = ["random", "oracle", *self.scores]
        self.curves = td.bon_curves(self.table, sel, self.ns, split=None, ci=ci, n_boot=n_boot,
                                    pool=pool)
        oracle = self.curve("oracle")
        # mu fixed at the exact random utility; only c*sigma is fitted (paper, Appendix C.1)
        mu_random = float(self.curve("random")["utility"].iloc[0])
        self.calibration = td.calibrate(self.ns, oracle["utility"].to_numpy(), shape=shape,
                                        mu=mu_random)
        self.diagnostics = {s: td.diagnose(self.table, s, split=None, validate=False)
                            for s in self.scores}
        self.refined = refined

    def curve(self, selector: str) -> pd.DataFrame:
        return self.curves[self.curves["selector"] == selector]

    def predict(self, score: str, ns) -> np.ndarray:
        import ttp_diag as td

        if score == "oracle":
            return self.calibration.predict(ns)
        if score == "random":
            return np.full(len(np.atleast_1d(ns)), self.calibration.mu)
        return td.predict_bon_curve(ns, self.diagnostics[score], self.calibration,
                                    refined=self.refined)


def _color(name: str, names=()) -> str:
    """Colour of ``name`` in a figure that also shows ``names``.

    Known models have fixed colours; unknown score columns keep their stable hashed colour
    unless two of the figure's columns would share it (:func:`colors_for`), so every figure
    drawn for the same set of score columns uses the same colours.
    """
    return colors_for(list(dict.fromkeys([*names, name])))[name]


def _dense(ns) -> np.ndarray:
    return np.linspace(min(ns), max(ns), 200)


def _plot_observed(ax, analysis, selector, *, label=None, color=None, ci=False):
    c = analysis.curve(selector)
    color = color or _color(selector, analysis.scores)
    (line,) = ax.plot(c["n"], c["utility"], color=color, linestyle=rm_linestyle(selector),
                      marker=rm_marker(selector), markersize=4, linewidth=1.8,
                      label=label if label is not None else rm_label(selector))
    if ci and "ci_low" in c:
        ax.fill_between(c["n"], c["ci_low"], c["ci_high"], color=color, alpha=0.18, linewidth=0)
    return line


def _legend_top(ax, *, loc="upper left", fontsize=7.5, ncols=1, **kw):
    """Legend in the top of the axes, with the y range stretched so it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    n = len([lab for lab in labels if not lab.startswith("_")])
    if n == 0:
        return None
    rows = -(-n // ncols)
    frac = min(0.6, 0.04 + rows * 0.058 * fontsize / 7.5)  # share of the axes the legend needs
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, lo + (hi - lo) / (1.0 - frac))
    return ax.legend(loc=loc, fontsize=fontsize, ncols=ncols, **kw)


def _legend_below(ax, *, fontsize=7, ncols=2, offset=-0.17):
    """Legend under the axes (below the x label), for panels whose data fill every corner."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, offset), fontsize=fontsize,
                     ncols=ncols, frameon=False)


def _integer_x(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


RHO_U = r"$\rho_u$"
RHO_Q = r"$\rho_q$"


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _violins(ax, data: list[np.ndarray], names: list[str], colors: dict) -> None:
    """Violins that survive constant or tiny samples (drawn as points instead)."""
    for i, (vals, name) in enumerate(zip(data, names)):
        vals = np.asarray(vals, float)
        vals = vals[np.isfinite(vals)]
        color = colors[name]
        if vals.size >= 3 and np.ptp(vals) > 1e-12:
            parts = ax.violinplot([vals], positions=[i], widths=0.8, showmeans=False,
                                  showextrema=False, showmedians=False)
            for body in parts["bodies"]:
                body.set_facecolor(color)
                body.set_edgecolor(color)
                body.set_alpha(0.45)
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            ax.vlines(i, q1, q3, color=color, linewidth=4)
            ax.scatter([i], [med], color="white", edgecolor="#333333", zorder=3, s=18)
        else:
            ax.scatter(np.full(vals.size, i), vals, color=color, s=12)
        ax.scatter([i], [vals.mean() if vals.size else np.nan], marker="_", color="black", s=120,
                   zorder=4)
    # neutral legend proxies: the coloured parts belong to the reward models
    ax.plot([], [], color="#666666", linewidth=4, label="interquartile range")
    ax.plot([], [], marker="o", markerfacecolor="white", markeredgecolor="#333333",
            linestyle="none", label="median")
    ax.plot([], [], marker="_", color="black", markersize=11, linestyle="none", label="mean")
    ax.set_xticks(range(len(names)), [rm_label(n, short=True) for n in names])
    ax.set_xlim(-0.6, len(names) - 0.4)


# --------------------------------------------------------------------------- Figs 1 and 3
@styled
def scaling_curves(tables, scores=None, ns=None, *, training_baseline=None, split="val",
                   ci=None, pool=None, reward_label=REWARD_LABEL, title="Best-of-N scaling"):
    """Observed Best-of-N curves against Random and Oracle (Figs. 1 and 3).

    Parameters
    ----------
    tables : DataFrame or dict of str -> DataFrame
        One score table, or one per task (one panel each).
    scores : list of str, optional
        Score columns (default: every ``score_*`` column).
    ns : list of int, optional
        Candidate counts (default :func:`default_ns`).
    training_baseline : float or dict of str -> float, optional
        Utility of a training-based personalization baseline (horizontal dotted line).
    split : str, default "val"
    ci : float, optional
        Bootstrap band over users (e.g. 0.95).
    pool : {"error", "clip"}, optional
        What N above a query's pool does (see :func:`ttp_diag.bon_curve`); default: ``"clip"``
        when some pool is smaller than the largest N (de-duplicated pools), else ``"error"``.
        The same keyword exists on every figure that draws curves.
    reward_label : str
        Y-axis label (say what the reward is, e.g. "ROUGE (R1+RL)/2").
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    tasks = _as_tasks(tables)
    fig, axes = new_figure(1, len(tasks), figsize=(4.6 * len(tasks), 3.7))
    for i, (task, table) in enumerate(tasks.items()):
        ax = axes[0, i]
        a = _TaskAnalysis(table, scores, ns, split=split, ci=ci, n_boot=300, pool=pool)
        for sel in ["random", *a.scores, "oracle"]:
            _plot_observed(ax, a, sel, ci=ci is not None and sel != "random")
        _finish_curve_panel(ax, task, i, len(tasks), training_baseline, title, reward_label)
    return fig


def _finish_curve_panel(ax, task, i, n_tasks, training_baseline, title, reward_label) -> None:
    """Training-baseline line (a number or a dict per task), panel title, labels, legend."""
    base = training_baseline.get(task) if isinstance(training_baseline, dict) \
        else training_baseline
    if base is not None:
        ax.axhline(base, color=COLORS["training"], linestyle=":", linewidth=2,
                   label=LABELS["training"])
    prefix = _panel_letter(i) if n_tasks > 1 else ""
    ax.set_title(prefix + _title(task, title))
    ax.set_xlabel(N_LABEL)
    ax.set_ylabel(reward_label)
    _integer_x(ax)
    _legend_top(ax)


# --------------------------------------------------------------------------- Fig 2
@styled
def oracle_scaling(tables, ns=None, *, shapes=("sqrt_log",), training_baseline=None,
                   split="val", pool=None, reward_label=REWARD_LABEL, title="Oracle scaling"):
    """Oracle Best-of-N curve with the calibrated theory ``mu + c sigma g(N)`` (Fig. 2).

    Parameters
    ----------
    tables : DataFrame or dict of str -> DataFrame
    ns : list of int, optional
    shapes : sequence of str, default ("sqrt_log",)
        Curve shapes to calibrate and draw (``"sqrt_log"``, ``"gaussian"``, ``"kl"``); each is
        fitted by least squares to the oracle curve, the legend gives mu, c·sigma and R².
    training_baseline : float or dict, optional
    split : str, default "val"
    reward_label, title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td

    if isinstance(shapes, str):
        shapes = (shapes,)
    styles = ["--", ":", "-."]
    tasks = _as_tasks(tables)
    fig, axes = new_figure(1, len(tasks), figsize=(5.6 * len(tasks), 3.9))
    for i, (task, table) in enumerate(tasks.items()):
        ax = axes[0, i]
        t = td.validate_score_table(table, scores=[], split=split)
        n_use = list(ns) if ns is not None else default_ns(t, split=None)
        obs = td.bon_curves(t, ["random", "oracle"], n_use, split=None,
                            pool=resolve_pool(t, n_use, pool))
        orc = obs[obs.selector == "oracle"]
        rnd = obs[obs.selector == "random"]
        ax.plot(rnd["n"], rnd["utility"], color=COLORS["random"], linestyle="--",
                label=LABELS["random"])
        ax.plot(orc["n"], orc["utility"], color=COLORS["oracle"], marker="o", markersize=4,
                linewidth=2, label=LABELS["oracle"] + " (observed)")
        dense = _dense(n_use)
        for j, shape in enumerate(shapes):
            cal = td.calibrate(n_use, orc["utility"].to_numpy(), shape=shape,
                               mu=float(rnd["utility"].iloc[0]))
            ax.plot(dense, cal.predict(dense), color=COLORS["theory"], linewidth=1.8,
                    linestyle=styles[j % len(styles)],
                    label=f"Theory {SHAPE_NAMES.get(shape, shape)}: "
                          f"$\\mu$={cal.mu:.3f}, c$\\sigma$={cal.c_sigma:.3f}, "
                          f"R²={cal.r2:.3f}")
        _finish_curve_panel(ax, task, i, len(tasks), training_baseline, title, reward_label)
    return fig


# --------------------------------------------------------------------------- Fig 4
@styled
def correlation_distributions(tables, scores=None, *, split="val", collapse_threshold=0.1,
                              bins=25):
    """Distributions of per-user rho_u and per-query rho_q with the 0.1 and 0 thresholds (Fig. 4).

    Row 1: rho_u per reward model, red dotted line at ``collapse_threshold`` (legend: share
    of collapsed users alpha). Row 2: rho_q, red dotted line at 0 (legend: share of queries
    with rho_q < 0). One column per task.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td

    tasks = _as_tasks(tables)
    fig, axes = new_figure(2, len(tasks), figsize=(4.8 * len(tasks), 6.6))
    for i, (task, table) in enumerate(tasks.items()):
        sc = _scores(table, scores)
        t = td.validate_score_table(table, scores=sc, split=split)
        colors = colors_for(sc)
        edges_u = np.linspace(-1, 1, bins + 1)
        for s in sc:
            d = td.diagnose(t, s, split=None, validate=False, collapse_threshold=collapse_threshold)
            ru = d.per_user["rho_u"].to_numpy()
            rq = d.per_query.loc[~d.per_query["undefined"], "rho_q"].to_numpy()
            axes[0, i].hist(ru, bins=edges_u, histtype="step", linewidth=1.8, color=colors[s],
                            density=True,
                            label=f"{rm_label(s)}: mean {ru.mean():.2f}, "
                                  f"{(ru < collapse_threshold).mean():.0%} collapsed")
            axes[1, i].hist(rq, bins=edges_u, histtype="step", linewidth=1.8, color=colors[s],
                            density=True,
                            label=f"{rm_label(s)}: mean {rq.mean():.2f}, "
                                  f"{(rq < 0).mean():.0%} negative")
        axes[0, i].axvline(collapse_threshold, color=THRESHOLD_COLOR, linestyle=":", linewidth=2,
                           label=f"collapse threshold {RHO_U} = {collapse_threshold:g}")
        axes[1, i].axvline(0.0, color=THRESHOLD_COLOR, linestyle=":", linewidth=2,
                           label=f"hacking threshold {RHO_Q} = 0")
        prefix = [_panel_letter(i), _panel_letter(i + len(tasks))]
        axes[0, i].set_title(prefix[0] + _title(task, f"per-user correlation {RHO_U}"))
        axes[1, i].set_title(prefix[1] + _title(task, f"per-query correlation {RHO_Q}"))
        axes[0, i].set_xlabel(f"{RHO_U} (Pearson r of score and true reward, per user)")
        axes[1, i].set_xlabel(f"{RHO_Q} (Pearson r of score and true reward, per query)")
        for ax in axes[:, i]:
            ax.set_ylabel("Density")
            ax.set_xlim(-1, 1)
            _legend_top(ax)
    return fig


# --------------------------------------------------------------------------- Fig 5
def _theory_overlay(ax, a: _TaskAnalysis, *, with_random=True, ci=False):
    dense = _dense(a.ns)
    sels = (["random"] if with_random else []) + [*a.scores, "oracle"]
    for sel in sels:
        _plot_observed(ax, a, sel, ci=ci and sel != "random")
        ax.plot(dense, a.predict(sel, dense), color=_color(sel, a.scores), linestyle="-.",
                linewidth=1.2, alpha=0.9)
    # one legend entry explaining the dash-dot lines
    ax.plot([], [], color="#555555", linestyle="-.", label="Theory prediction (dash-dot)")


@styled
def task_panel(tables, scores=None, ns=None, *, shape="sqrt_log", split="val", refined=False,
               collapse_threshold=0.1, pool=None, reward_label=REWARD_LABEL):
    """The paper's three-row panel per task (Fig. 5).

    Row 1: observed Best-of-N curves (solid, markers) with each model's theory prediction
    (dash-dot: its four diagnostics in Proposition 4.4; oracle: the calibration), relMAE in the
    legend. Row 2: rho_u violins with the collapse threshold. Row 3: rho_q violins with 0.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td

    tasks = _as_tasks(tables)
    fig, axes = new_figure(3, len(tasks), figsize=(4.8 * len(tasks), 9.6))
    for i, (task, table) in enumerate(tasks.items()):
        a = _TaskAnalysis(table, scores, ns, split=split, shape=shape, refined=refined,
                          pool=pool)
        ax = axes[0, i]
        _theory_overlay(ax, a)
        # relMAE of each model's prediction, in the legend labels
        for line in ax.get_lines():
            lab = line.get_label()
            for sel in [*a.scores, "oracle"]:
                if lab == rm_label(sel):
                    obs = a.curve(sel)["utility"].to_numpy()
                    err = td.rel_mae(a.predict(sel, a.ns), obs)
                    line.set_label(f"{lab} (relMAE {err:.1%})")
        ax.set_title(_panel_letter(i) + _title(task, f"Best-of-N with theory ({shape})"))
        ax.set_xlabel(N_LABEL)
        ax.set_ylabel(reward_label)
        _integer_x(ax)
        _legend_top(ax, fontsize=7)
        colors = colors_for(a.scores)
        ru = [a.diagnostics[s].per_user["rho_u"].to_numpy() for s in a.scores]
        pq = [a.diagnostics[s].per_query for s in a.scores]
        rq = [p.loc[~p["undefined"], "rho_q"].to_numpy() for p in pq]
        _violins(axes[1, i], ru, a.scores, colors)
        axes[1, i].axhline(collapse_threshold, color=THRESHOLD_COLOR, linestyle=":", linewidth=2,
                           label=f"{RHO_U} = {collapse_threshold:g} (collapse)")
        axes[1, i].set_ylabel(f"{RHO_U} (per-user correlation)")
        axes[1, i].set_title(_panel_letter(i + len(tasks)) + _title(task, f"per-user {RHO_U}"))
        _violins(axes[2, i], rq, a.scores, colors)
        axes[2, i].axhline(0.0, color=THRESHOLD_COLOR, linestyle=":", linewidth=2,
                           label=f"{RHO_Q} = 0 (hacking)")
        axes[2, i].set_ylabel(f"{RHO_Q} (per-query correlation)")
        axes[2, i].set_title(_panel_letter(i + 2 * len(tasks)) + _title(task, f"per-query {RHO_Q}"))
        for ax in axes[1:, i]:
            ax.set_xlabel("Reward model")
            ax.set_ylim(-1.05, 1.05)
            _legend_below(ax, ncols=4, offset=-0.2)
    return fig


# --------------------------------------------------------------------------- Fig 6 panels
def _panel_label_std(ax, res, *, title="Label std: collapsed vs normal users"):
    pu = res.per_user
    groups = [("collapsed", f"collapsed\n({RHO_U} < {res.collapse_threshold:g})", "#4D4D4D"),
              ("normal", f"normal\n({RHO_U} > {res.normal_threshold:g})", "#5E81AC")]
    data = [pu.loc[pu.group == g, "label_std"].to_numpy() for g, _, _ in groups]
    present = [d.size > 0 for d in data]
    if any(present):
        bp = ax.boxplot([d if d.size else [np.nan] for d in data], positions=[0, 1], widths=0.5,
                        showfliers=False, patch_artist=True,
                        medianprops=dict(color="black", linewidth=1.5))
        for patch, (_, _, c) in zip(bp["boxes"], groups):
            patch.set_facecolor(c)
            patch.set_alpha(0.3)
        rng = np.random.default_rng(0)
        for k, (d, (_, _, c)) in enumerate(zip(data, groups)):
            ax.scatter(k + rng.uniform(-0.12, 0.12, d.size), d, color=c, s=12, alpha=0.8,
                       label=f"{groups[k][0]} users (n={d.size})")
    ax.set_xticks([0, 1], [lab for _, lab, _ in groups])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel("Std of true reward per user")
    ax.set_xlabel(f"Users grouped by {RHO_U} under {rm_label(res.score, short=True)} RM")
    if res.n_collapsed and res.n_normal:
        txt = f"Mann-Whitney {_fmt_p(res.mannwhitney_p)}, Welch t {_fmt_p(res.welch_p)}"
    else:
        txt = "one group is empty: no test"
    ax.set_title(f"{title}\n{txt}")
    if any(present):
        _legend_top(ax)


def _user_rho(table, user, score):
    g = table[table["user_id"] == user]
    x, y = g[score].to_numpy(float), g["reward"].to_numpy(float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _panel_user_hist(ax, table, user, scores, *, title=None, bins=20):
    g = table[table["user_id"] == user]
    series = [("reward", "True reward", "#333333")] + [
        (s, rm_label(s, short=True) + " RM", _color(s, scores)) for s in scores]
    values = [g[c].to_numpy(float) for c, _, _ in series]
    lo = min(v.min() for v in values)
    hi = max(v.max() for v in values)
    edges = np.linspace(lo, hi + 1e-12 if hi == lo else hi, bins + 1)
    for (col, lab, color), v in zip(series, values):
        if col != "reward":
            lab = f"{lab} ($\\rho$ = {_user_rho(table, user, col):+.2f})"
        ax.hist(v, bins=edges, histtype="stepfilled" if col == "reward" else "step",
                alpha=0.35 if col == "reward" else 1.0, linewidth=1.8, color=color, label=lab)
    ax.set_xlabel("True reward / predicted score")
    ax.set_ylabel("Candidates")
    ax.set_title(title or f"Scores of user {user}")
    _legend_top(ax, loc="upper right")


def _panel_rescue(ax, res):
    pq = res.per_query
    labels = {
        "rescued": f"rescued: {rm_label(res.base, short=True)} < 0 ≤ "
                   f"{rm_label(res.new, short=True)} ({res.rescued_rate:.0%})",
        "harmed": f"harmed ({res.harmed_rate:.0%})",
        "both_positive": f"both ≥ 0 ({res.both_positive_rate:.0%})",
        "both_negative": f"both < 0 ({res.both_negative_rate:.0%})",
    }
    for cat in ("both_positive", "both_negative", "harmed", "rescued"):
        d = pq[pq.category == cat]
        ax.scatter(d["rho_base"], d["rho_new"], s=10, alpha=0.75, color=CATEGORY_COLORS[cat],
                   label=labels[cat])
    ax.axvline(0, color="#999999", linewidth=1)
    ax.axhline(0, color="#999999", linewidth=1)
    ax.plot([-1, 1], [-1, 1], color="#bbbbbb", linestyle="--", linewidth=1)
    ax.axvspan(-1.05, 0, ymin=0.5, ymax=1, color=CATEGORY_COLORS["rescued"], alpha=0.07)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(f"{RHO_Q} under {rm_label(res.base)}")
    ax.set_ylabel(f"{RHO_Q} under {rm_label(res.new)}")
    ax.set_title(f"Per-query correlation ({res.n_queries} queries)")
    _legend_below(ax, ncols=2)


def _panel_var_error(ax, res):
    d = res.data
    ax.scatter(d["variance"], d["abs_error"], s=5, alpha=0.3, color=rm_color(res.score),
               rasterized=True, label=f"{res.level}s (n={res.n})")
    ax.set_xlabel(f"Predicted variance ({res.var})")
    ax.set_ylabel(f"|{rm_label(res.score, short=True)} score - true reward|")
    ax.set_title(f"Variance vs error: Spearman r = {res.spearman_r:.2f}")
    _legend_top(ax)


def _pick_collapsed_user(diag_base, diag_new, user=None):
    if user is not None:
        return user
    pu = diag_base.per_user
    col = pu[pu["collapsed"]]
    if col.empty:
        return None
    # the collapsed user whose rho_u is the median of the collapsed group: representative
    order = col["rho_u"].rank(method="first")
    return col.loc[(order - (len(col) + 1) / 2).abs().idxmin(), "user_id"]


@styled
def failure_modes(table, base="score_det", new="score_prob", var="var_prob", *, split="val",
                  user=None, collapse_threshold=0.1, normal_threshold="auto", task=""):
    """Failure-mode panel (Fig. 6).

    (a) label std of collapsed vs normal users under ``base`` with Mann-Whitney / Welch
    p-values (normal: rho_u > 0.5 as in the paper when at least two users reach it, else every
    non-collapsed user; see :func:`ttp_diag.analysis.label_std_by_collapse`);
    (b) score histogram of a collapsed user (default: the collapsed user with the median
    rho_u, i.e. representative, not the best example) with each model's correlation;
    (c) per-query rho_q under ``base`` vs ``new`` with the rescue quadrant shaded;
    (d) predicted variance vs absolute error with Spearman r (skipped when ``var`` is absent).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td
    from ttp_diag.analysis import (label_std_by_collapse, rescue_analysis,
                                   variance_error_correlation)

    t = td.validate_score_table(table, scores=[base, new], split=split)
    d_base = td.diagnose(t, base, split=None, validate=False,
                         collapse_threshold=collapse_threshold)
    d_new = td.diagnose(t, new, split=None, validate=False, collapse_threshold=collapse_threshold)
    fig, axes = new_figure(2, 2, figsize=(9.6, 7.6))
    ls = label_std_by_collapse(diagnostics=d_base, collapse_threshold=collapse_threshold,
                               normal_threshold=normal_threshold)
    _panel_label_std(axes[0, 0], ls, title="(a) " + _title(task, "label std by collapse"))
    u = _pick_collapsed_user(d_base, d_new, user)
    if u is None:
        axes[0, 1].text(0.5, 0.5, f"no user collapses under {rm_label(base)}\n"
                        f"(rho_u < {collapse_threshold:g})", ha="center", va="center",
                        transform=axes[0, 1].transAxes)
        axes[0, 1].set_title("(b) collapsed user: none")
        axes[0, 1].set_xlabel("True reward / predicted score")
        axes[0, 1].set_ylabel("Candidates")
    else:
        _panel_user_hist(axes[0, 1], t, u, [base, new],
                         title=f"(b) collapsed user {u}")
    rescue = rescue_analysis(diagnostics=(d_base, d_new))
    _panel_rescue(axes[1, 0], rescue)
    axes[1, 0].set_title("(c) " + axes[1, 0].get_title())
    if var in t.columns:
        ve = variance_error_correlation(t, new, var, split=None)
        _panel_var_error(axes[1, 1], ve)
        axes[1, 1].set_title("(d) " + axes[1, 1].get_title())
    else:
        axes[1, 1].text(0.5, 0.5, f"no variance column {var!r}", ha="center", va="center",
                        transform=axes[1, 1].transAxes)
        axes[1, 1].set_title("(d) variance vs error: n/a")
        axes[1, 1].set_xlabel("Predicted variance")
        axes[1, 1].set_ylabel("Absolute error")
    return fig


# --------------------------------------------------------------------------- Fig A5
@styled
def predicted_vs_observed(tables, scores=None, ns=None, *, shape="sqrt_log", split="val",
                          refined=False, pool=None, reward_label=REWARD_LABEL):
    """Predicted (dashed) vs observed (solid) Best-of-N curve per (task, reward model) (Fig. A5).

    The scale ``c sigma`` is calibrated once per task from the oracle and shared by every
    reward model; each panel gives relMAE and R².

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td

    tasks = _as_tasks(tables)
    analyses = {k: _TaskAnalysis(v, scores, ns, split=split, shape=shape, refined=refined,
                                 pool=pool)
                for k, v in tasks.items()}
    n_cols = max(len(a.scores) for a in analyses.values())
    fig, axes = new_figure(len(tasks), n_cols, figsize=(3.9 * n_cols, 3.3 * len(tasks)))
    k = 0
    for i, (task, a) in enumerate(analyses.items()):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(a.scores):
                ax.set_visible(False)
                continue
            s = a.scores[j]
            obs = a.curve(s)
            pred = a.predict(s, a.ns)
            ax.plot(obs["n"], obs["utility"], color=_color(s, a.scores), marker=rm_marker(s),
                    markersize=4, linewidth=1.8, label="observed")
            ax.plot(a.ns, pred, color=_color(s, a.scores), linestyle="--", linewidth=1.8,
                    label="predicted")
            rnd = a.curve("random")["utility"].iloc[0]
            ax.axhline(rnd, color=COLORS["random"], linestyle=":", linewidth=1, label="random")
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    r2 = td.r_squared(pred, obs["utility"].to_numpy())
            err = td.rel_mae(pred, obs["utility"].to_numpy())
            ax.set_title(_panel_letter(k) + _title(task, rm_label(s)), fontsize=9.5)
            ax.text(0.97, 0.04, f"relMAE {err:.1%}\nR² {r2:.2f}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8,
                    bbox=dict(boxstyle="round", facecolor="white", alpha=0.8,
                              edgecolor="#cccccc"))
            ax.set_xlabel(N_LABEL)
            ax.set_ylabel(reward_label)
            _integer_x(ax)
            _legend_top(ax, ncols=3)
            k += 1
    return fig


# --------------------------------------------------------------------------- Fig A6
@styled
def sub_gaussian_figure(table, *, user=None, split="val", center="user",
                        reward_label="True reward"):
    """Sub-Gaussian check (Fig. A6).

    (a) empirical CDF of a user's rewards (default: the user with the median ``s / std``)
    with the Gaussian CDF ``N(mu, s)`` and the sub-Gaussian (Chernoff) envelope implied by the
    fitted parameter ``s``; (b) ``s`` against the plain std for every user (``s >= std``
    always; close to the diagonal means Gaussian-like tails).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ttp_diag.analysis import ecdf_envelope, sub_gaussian_check

    chk = sub_gaussian_check(table, split=split, center=center)
    u = user if user is not None else chk.representative_user()
    row = chk.per_user.set_index("user_id").loc[u]
    env = ecdf_envelope(chk.values[u], row["s"])
    fig, axes = new_figure(1, 2, figsize=(9.6, 3.8))
    ax = axes[0, 0]
    ax.fill_between(env["x"], env["envelope_low"], env["envelope_high"], color=COLORS["theory"],
                    alpha=0.12, label="sub-Gaussian envelope (Chernoff bound)")
    ax.plot(env["x"], env["gaussian_cdf"], color=COLORS["det"], linewidth=1.8,
            label=f"Gaussian CDF N($\\mu$, s), s = {row['s']:.3g}")
    ax.step(env["x"], env["ecdf"], where="post", color=COLORS["global"], linewidth=1.8,
            label=f"empirical CDF (n = {int(row['n'])})")
    ax.set_xlabel(reward_label + (" minus query mean" if center == "query" else ""))
    ax.set_ylabel("Cumulative probability")
    ax.set_title(f"(a) user {u}: KS distance {row['ks_gaussian']:.3f}")
    ax.legend(loc="lower right", fontsize=7)
    ax = axes[0, 1]
    pu = chk.per_user.dropna(subset=["ratio"])
    ax.scatter(pu["std"], pu["s"], s=16, color=COLORS["global"], alpha=0.8,
               label=f"users (median s/std = {pu['ratio'].median():.2f})")
    lim = [0, max(pu["s"].max(), pu["std"].max()) * 1.05]
    ax.plot(lim, lim, color="#777777", linestyle="--", linewidth=1, label="s = std (Gaussian)")
    ax.scatter([row["std"]], [row["s"]], s=60, facecolor="none", edgecolor=COLORS["oracle"],
               linewidth=1.5, label=f"user {u} (panel a)")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("Std of user's rewards")
    ax.set_ylabel("Smallest sub-Gaussian parameter s")
    ax.set_title("(b) sub-Gaussian parameter vs std, per user")
    ax.legend(loc="upper left", fontsize=7.5)
    return fig


# --------------------------------------------------------------------------- Fig A7
@styled
def linearity_figure(table, scores=None, *, split="val", n_bins=10, standardize="user"):
    """Linearity of ``E[r* | r_hat]`` (Fig. A7): binned means vs the line of slope rho.

    Scores and rewards are z-scored within each user; error bars are ±1 standard error of
    each bin mean.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ttp_diag.analysis import linearity_check

    res = linearity_check(table, _scores(table, scores), split=split, n_bins=n_bins,
                          standardize=standardize)
    scs = list(res.summary["score"])
    fig, axes = new_figure(1, len(scs), figsize=(3.9 * len(scs), 3.6), sharey=True)
    for j, s in enumerate(scs):
        ax = axes[0, j]
        b = res.bins[res.bins.score == s]
        r = res.summary.set_index("score").loc[s]
        ax.errorbar(b["x_mean"], b["y_mean"], yerr=b["y_se"], fmt="o", color=_color(s, scs),
                    markersize=4, capsize=2, label="binned mean ± s.e.")
        x = np.linspace(b["x_mean"].min(), b["x_mean"].max(), 50)
        ax.plot(x, r["intercept"] + r["slope"] * x, color=_color(s, scs), linewidth=1.5,
                label=f"fit: slope {r['slope']:.2f} (R² {r['linear_r2']:.2f})")
        ax.plot(x, r["rho"] * x, color="#444444", linestyle="--", linewidth=1.2,
                label=f"slope = $\\rho$ = {r['rho']:.2f}")
        ax.set_title(_panel_letter(j) + rm_label(s))
        ax.set_xlabel(f"Predicted score (z within {standardize})")
        ax.set_ylabel(f"E[true reward | score] (z within {standardize})")
        ax.legend(loc="upper left", fontsize=7.5)
    return fig


# --------------------------------------------------------------------------- Fig A8
@styled
def collapse_panels(tables, base="score_det", new="score_prob", *, split="val",
                    collapse_threshold=0.1, normal_threshold="auto", bins=20):
    """Cross-task user-level collapse (Fig. A8): one column per task.

    Row 1: label std of collapsed vs normal users under ``base`` (p-values). Row 2: true
    rewards and both models' scores pooled over collapsed users, with each model's Pearson
    correlation over those candidates. Row 3: the same for normal users.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td
    from ttp_diag.analysis import label_std_by_collapse

    tasks = _as_tasks(tables)
    fig, axes = new_figure(3, len(tasks), figsize=(4.6 * len(tasks), 9.9))
    for i, (task, table) in enumerate(tasks.items()):
        t = td.validate_score_table(table, scores=[base, new], split=split)
        d = td.diagnose(t, base, split=None, validate=False, collapse_threshold=collapse_threshold)
        res = label_std_by_collapse(diagnostics=d, collapse_threshold=collapse_threshold,
                                    normal_threshold=normal_threshold)
        _panel_label_std(axes[0, i], res,
                         title=_panel_letter(i) + _title(task, "label std by collapse"))
        groups = res.per_user.set_index("user_id")["group"]
        for row, grp in ((1, "collapsed"), (2, "normal")):
            ax = axes[row, i]
            users = groups.index[groups == grp]
            g = t[t["user_id"].isin(users)]
            ax.set_title(_title(task, f"{grp} users (n={len(users)})"))
            ax.set_xlabel("True reward / predicted score")
            ax.set_ylabel("Candidates")
            if g.empty:
                ax.text(0.5, 0.5, f"no {grp} users", ha="center", va="center",
                        transform=ax.transAxes)
                continue
            cols = [("reward", "True reward", "#333333"), (base, None, _color(base, [base, new])),
                    (new, None, _color(new, [base, new]))]
            vals = [g[c].to_numpy(float) for c, _, _ in cols]
            lo, hi = min(v.min() for v in vals), max(v.max() for v in vals)
            edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
            for (c, lab, color), v in zip(cols, vals):
                if c != "reward":
                    r = np.corrcoef(v, g["reward"])[0, 1] if np.ptp(v) > 0 else np.nan
                    lab = f"{rm_label(c, short=True)} RM ($\\rho$ = {r:+.2f})"
                ax.hist(v, bins=edges, histtype="stepfilled" if c == "reward" else "step",
                        alpha=0.35 if c == "reward" else 1.0, color=color, linewidth=1.8,
                        label=lab)
            _legend_top(ax, loc="upper right")
    return fig


# --------------------------------------------------------------------------- Fig A9
@styled
def hacking_panels(tables, base="score_det", new="score_prob", var="var_prob", *, split="val",
                   bins=20):
    """Cross-task query-level hacking (Fig. A9): one column per task.

    Row 1: rho_q under ``base`` vs ``new`` (rescue quadrant). Row 2: predicted variance vs
    absolute error (Spearman r). Rows 3-4: rho_q histograms of each model with the share of
    negative correlations.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td
    from ttp_diag.analysis import rescue_analysis, variance_error_correlation

    tasks = _as_tasks(tables)
    fig, axes = new_figure(4, len(tasks), figsize=(4.6 * len(tasks), 12.6))
    edges = np.linspace(-1, 1, bins + 1)
    for i, (task, table) in enumerate(tasks.items()):
        t = td.validate_score_table(table, scores=[base, new], split=split)
        res = rescue_analysis(t, base, new, split=None)
        _panel_rescue(axes[0, i], res)
        axes[0, i].set_title(_panel_letter(i) + _title(task, "per-query correlation"))
        if var in t.columns:
            _panel_var_error(axes[1, i], variance_error_correlation(t, new, var, split=None))
            axes[1, i].set_title(_title(task, axes[1, i].get_title()))
        else:
            axes[1, i].text(0.5, 0.5, f"no variance column {var!r}", ha="center", va="center",
                            transform=axes[1, i].transAxes)
            axes[1, i].set_xlabel("Predicted variance")
            axes[1, i].set_ylabel("Absolute error")
            axes[1, i].set_title(_title(task, "variance vs error: n/a"))
        for row, (s, col) in zip((2, 3), ((base, "rho_base"), (new, "rho_new"))):
            ax = axes[row, i]
            v = res.per_query[col].to_numpy()
            ax.hist(v, bins=edges, color=_color(s, [base, new]), alpha=0.75,
                    label=f"{rm_label(s)}: {np.mean(v < 0):.1%} negative")
            ax.axvline(0, color=THRESHOLD_COLOR, linestyle=":", linewidth=2)
            ax.set_xlabel(f"{RHO_Q} (per-query correlation)")
            ax.set_ylabel("Queries")
            ax.set_title(_title(task, f"{RHO_Q} of {rm_label(s, short=True)} RM"))
            _legend_top(ax)
    return fig


# --------------------------------------------------------------------------- Fig A4
@styled
def confidence_bands(table, scores=None, ns=None, *, ci=0.95, n_boot=1000, split="val",
                     seed=0, pool=None, gain=False, reward_label=REWARD_LABEL):
    """Best-of-N curves with percentile bootstrap bands over users (Fig. A4).

    The paper repeats sampling 10 times; the exact curves here have no sampling noise, so
    the uncertainty that remains is which users were evaluated: users are resampled with
    replacement ``n_boot`` times (the same resamples for every selector).

    Parameters
    ----------
    table : DataFrame
    scores, ns, split, pool, reward_label
        As in :func:`scaling_curves`.
    ci : float, default 0.95
    n_boot, seed : int
    gain : bool, default False
        Plot each selector's gain over random selection, user by user, instead of its
        utility. Users differ in their reward level much more than in their gains, so the
        bands of the gains are far narrower: they show whether selectors differ, as the
        paper's paired significance tests do.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import ttp_diag as td
    from ttp_diag.bon import bootstrap_user_ci

    sc = _scores(table, scores)
    t = td.validate_score_table(table, scores=sc, split=split)
    n_use = list(ns) if ns is not None else default_ns(t, split=None)
    pool = resolve_pool(t, n_use, pool)
    per_user = {sel: td.bon_curve(t, sel, n_use, split=None, per_user=True, validate=False,
                                  pool=pool)
                for sel in ["random", *sc, "oracle"]}
    fig, axes = new_figure(1, 1, figsize=(5.6, 4.0))
    ax = axes[0, 0]
    base = per_user["random"]["utility"].to_numpy().reshape(-1, len(n_use))
    for sel, frame in per_user.items():
        if gain and sel == "random":
            continue
        u = frame["utility"].to_numpy().reshape(-1, len(n_use))  # users x N
        if gain:
            u = u - base
        low, high = bootstrap_user_ci(u, level=ci, n_boot=n_boot, seed=seed)
        mean = u.mean(axis=0)
        color = _color(sel, sc)
        if sel == "random":  # flat reference: a band, no error bars
            ax.plot(n_use, mean, color=color, linestyle="--", linewidth=1.6, label=rm_label(sel))
        else:
            ax.errorbar(n_use, mean, yerr=[mean - low, high - mean], color=color,
                        marker=rm_marker(sel) or None, markersize=4, capsize=2,
                        linestyle=rm_linestyle(sel), linewidth=1.6, label=rm_label(sel))
        ax.fill_between(n_use, low, high, color=color, alpha=0.12, linewidth=0)
    if gain:
        ax.axhline(0.0, color=COLORS["random"], linestyle="--", linewidth=1.2,
                   label="Random (gain 0)")
    ax.set_xlabel(N_LABEL)
    ax.set_ylabel(f"Gain over random ({reward_label.lower()})" if gain else reward_label)
    what = "Gain over random" if gain else "Best-of-N"
    ax.set_title(f"{what} with {ci:.0%} bootstrap bands over {t['user_id'].nunique()} users")
    _integer_x(ax)
    _legend_top(ax)
    return fig


# --------------------------------------------------------------------------- risk
@styled
def risk_figure(report, scores=None):
    """Collapse and hacking rates of the low/high label-spread halves (Tables A13/A14 as bars).

    Parameters
    ----------
    report : ttp_diag.analysis.RiskReport or DataFrame
        A risk report, or a score table to compute one from (:func:`ttp_diag.analysis.risk_report`
        with its defaults: user halves from the train labels, rates on val).
    scores : list of str, optional
        Score columns when a table is given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(report, pd.DataFrame):
        from ttp_diag.analysis import risk_report

        report = risk_report(report, scores)
    from matplotlib.patches import Patch

    fig, axes = new_figure(1, 2, figsize=(9.6, 3.8))
    for ax, tab, what, split_by in (
        (axes[0, 0], report.collapse_table, "collapse rate (share of users)", "user label std"),
        (axes[0, 1], report.hacking_table, "hacking rate (share of queries)",
         "query candidate spread"),
    ):
        scores = list(tab["score"])
        x = np.arange(len(scores))
        w = 0.38
        for k, (half, hatch) in enumerate((("low", "//"), ("high", ""))):
            vals = tab[f"rate_{half}"].to_numpy(float)
            bars = ax.bar(x + (k - 0.5) * w, vals, width=w,
                          color=[_color(s, scores) for s in scores],
                          alpha=0.55 if half == "low" else 0.9,
                          hatch=hatch, edgecolor="black", linewidth=0.6,
                          label=f"{half} {split_by} half")
            for b, v in zip(bars, vals):
                if np.isfinite(v):
                    ax.text(b.get_x() + b.get_width() / 2, v + 0.01, f"{v:.0%}", ha="center",
                            va="bottom", fontsize=7)
        ax.set_xticks(x, [rm_label(s, short=True) for s in scores])
        ax.set_xlabel("Reward model")
        ax.set_ylabel(what[0].upper() + what[1:])
        ax.set_title(f"{what.split(' (')[0].capitalize()} by {split_by} half")
        top = float(np.nanmax(tab[["rate_low", "rate_high"]].to_numpy(float), initial=0.0))
        ax.set_ylim(0, max(0.1, top) * 1.35)
        ax.legend(handles=[Patch(facecolor="#bbbbbb", edgecolor="black", hatch="//",
                                 label=f"low {split_by} half (high a-priori risk)"),
                           Patch(facecolor="#555555", edgecolor="black",
                                 label=f"high {split_by} half")],
                  loc="upper right", fontsize=7)
    return fig


# --------------------------------------------------------------------------- all at once
def write_all_figures(tables, out_dir, *, scores=None, ns=None, shapes=("sqrt_log", "gaussian"),
                      base="score_det", new="score_prob", var="var_prob", split="val",
                      training_baseline=None, reward_label=REWARD_LABEL, n_boot=1000,
                      progress=print) -> list[str]:
    """Draw every kind of paper figure for the given score tables and save the PNGs.

    Multi-task figures (1/3, 2, 4, 5, A5, A8, A9) get one panel column per task; per-table
    figures (6, A4, A6, A7) are written once per task with the task name in the file name.
    Figures that need columns a table lacks (e.g. Fig. 6 without ``score_det`` and
    ``score_prob``) are skipped with a message.

    Parameters
    ----------
    tables : DataFrame or dict of str -> DataFrame
    out_dir : str or Path
    scores, ns, split, training_baseline, reward_label
        As in the individual figure functions.
    shapes : sequence of str, default ("sqrt_log", "gaussian")
        Curve shapes: Fig. 2 draws all; Figs. 5 and A5 are written once per shape.
    base, new, var : str
        Columns of the failure-mode figures (deterministic, probabilistic, variance).
    n_boot : int
        Bootstrap replicates of Fig. A4.
    progress : callable or None
        Called with one line per figure written.

    Returns
    -------
    list of str
        Paths of the PNGs written.
    """
    from pathlib import Path

    from ttp_diag.plots.style import savefig

    tasks = _as_tasks(tables)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    say = progress or (lambda *_: None)

    def save(fig, name):
        path = savefig(fig, out / f"{name}.png")
        written.append(path)
        say(f"  wrote {path}")

    def safe_name(task):
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in task) or "table"

    save(scaling_curves(tasks, scores, ns, training_baseline=training_baseline, split=split,
                        reward_label=reward_label), "fig1_3_scaling_curves")
    save(oracle_scaling(tasks, ns, shapes=shapes, training_baseline=training_baseline,
                        split=split, reward_label=reward_label), "fig2_oracle_scaling")
    save(correlation_distributions(tasks, scores, split=split), "fig4_correlation_distributions")
    for shape in shapes:
        save(task_panel(tasks, scores, ns, shape=shape, split=split, reward_label=reward_label),
             f"fig5_task_panel_{shape}")
        save(predicted_vs_observed(tasks, scores, ns, shape=shape, split=split,
                                   reward_label=reward_label),
             f"figA5_predicted_vs_observed_{shape}")
    has_pair = {k: base in t.columns and new in t.columns for k, t in tasks.items()}
    pair_tasks = {k: t for k, t in tasks.items() if has_pair[k]}
    if pair_tasks:
        save(collapse_panels(pair_tasks, base, new, split=split), "figA8_collapse_panels")
        save(hacking_panels(pair_tasks, base, new, var, split=split), "figA9_hacking_panels")
    else:
        say(f"  skipped Figs. 6, A8, A9: no table has both {base!r} and {new!r}")
    for task, table in tasks.items():
        suffix = f"_{safe_name(task)}" if len(tasks) > 1 or task else ""
        if has_pair[task]:
            save(failure_modes(table, base, new, var, split=split, task=task),
                 f"fig6_failure_modes{suffix}")
        save(confidence_bands(table, scores, ns, split=split, n_boot=n_boot,
                              reward_label=reward_label), f"figA4_confidence_bands{suffix}")
        save(confidence_bands(table, scores, ns, split=split, n_boot=n_boot, gain=True,
                              reward_label=reward_label), f"figA4_gain_bands{suffix}")
        save(sub_gaussian_figure(table, split=split), f"figA6_sub_gaussian{suffix}")
        save(linearity_figure(table, scores, split=split), f"figA7_linearity{suffix}")
    return written
