"""Figure-level layouts of the paper: each takes score tables or fitted analyses (one, or a dict
``task name -> either``), fits or computes what it needs once, and lays out the axes-level panels
of the family modules.

=========================================  ===============================================
function                                   paper figure (panels from)
=========================================  ===============================================
:func:`scaling_curves`                     Figs. 1, 3 (:mod:`~ttp_diag.plots.curves`)
:func:`oracle_scaling`                     Fig. 2 (:mod:`~ttp_diag.plots.curves`)
:func:`correlation_distributions`          Fig. 4 (:mod:`~ttp_diag.plots.correlations`)
:func:`task_panel`                         Fig. 5 (:mod:`~ttp_diag.plots.correlations`)
:func:`failure_modes`                      Fig. 6 (:mod:`~ttp_diag.plots.failure`)
:func:`predicted_vs_observed`              Fig. A5 (:mod:`~ttp_diag.plots.curves`)
:func:`sub_gaussian_figure`                Fig. A6 (:mod:`~ttp_diag.plots.assumptions`)
:func:`linearity_figure`                   Fig. A7 (:mod:`~ttp_diag.plots.assumptions`)
:func:`collapse_panels`                    Fig. A8 (:mod:`~ttp_diag.plots.failure`)
:func:`hacking_panels`                     Fig. A9 (:mod:`~ttp_diag.plots.failure`)
:func:`confidence_bands`                   Fig. A4 (:mod:`~ttp_diag.plots.curves`)
:func:`risk_figure`                        Tables A13/A14 (:mod:`~ttp_diag.plots.risk`)
=========================================  ===============================================

This is the one module of :mod:`ttp_diag.plots` that imports the analysis layers at run time (to
fit a table given in place of a fitted object). The panel modules import the fitted types for
typing only, so a result's ``.plot()`` calls its panel without an import cycle.
``policy_families``, ``lora_policy_curves`` (:mod:`~ttp_diag.plots.policies`) and
``ablation_curves`` (:mod:`~ttp_diag.plots.ablations`) take plain curve tables and live there.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import figures
>>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
>>> len(figures.failure_modes(t, "score_det", "score_prob", "var_prob").axes)
4
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ttp_diag.analysis import (
    LinearityCheck,
    RiskReport,
    SubGaussianCheck,
    label_std_by_collapse,
    linearity_check,
    rescue_analysis,
    risk_report,
    sub_gaussian_check,
    variance_error_correlation,
)
from ttp_diag.bestofn import BestOfN
from ttp_diag.diagnostics import Diagnostics, diagnose
from ttp_diag.exceptions import ConfigError, ConfigTypeError
from ttp_diag.plots._common import REWARD_LABEL, RHO_Q, THRESHOLD_COLOR, panel_letter
from ttp_diag.plots._common import color as _color
from ttp_diag.plots._common import legend_top as _legend_top
from ttp_diag.plots._common import title as _title
from ttp_diag.plots.assumptions import plot_linearity, plot_sub_gaussian
from ttp_diag.plots.correlations import plot_correlations, plot_violins
from ttp_diag.plots.curves import (
    Baseline,
    plot_bands,
    plot_curves,
    plot_oracle,
    plot_predicted,
    plot_theory,
)
from ttp_diag.plots.failure import (
    plot_label_std,
    plot_rescue,
    plot_user_scores,
    plot_variance_error,
)
from ttp_diag.plots.risk import plot_risk
from ttp_diag.plots.style import new_figure, rm_label, styled
from ttp_diag.table import validate_score_table
from ttp_diag.theory import DEFAULT_SHAPE

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "collapse_panels",
    "confidence_bands",
    "correlation_distributions",
    "failure_modes",
    "hacking_panels",
    "linearity_figure",
    "oracle_scaling",
    "predicted_vs_observed",
    "risk_figure",
    "scaling_curves",
    "sub_gaussian_figure",
    "task_panel",
]


#: What the figure functions accept: a table, a fitted analysis, or a dict of tasks of either.
Tables = pd.DataFrame | BestOfN | Mapping[str, pd.DataFrame | BestOfN]


def as_tasks(tables: Tables) -> dict[str, Any]:
    """A single table or fit becomes ``{"": it}``; a dict is kept (task name -> table/fit)."""
    if isinstance(tables, (pd.DataFrame, BestOfN)):
        return {"": tables}
    if isinstance(tables, Mapping) and tables and all(
            isinstance(v, (pd.DataFrame, BestOfN)) for v in tables.values()):
        return dict(tables)
    raise ConfigTypeError("pass a score table (DataFrame), a fitted BestOfN, or a non-empty dict "
                          "task name -> either.")


def as_fits(tables: Tables, scores: str | Sequence[str] | None = None,
            ns: Sequence[int] | None = None, *, split: str | None = "val",
            shape: str | Sequence[str] = DEFAULT_SHAPE, pool: str | None = None,
            refined: bool = False, ci: float | None = None, n_boot: int = 1000,
            collapse_threshold: float = 0.1) -> dict[str, BestOfN]:
    """``{task: fitted BestOfN}``: fits given as such are used as they are (their own
    settings win), tables are fitted here with the arguments."""
    out = {}
    for task, t in as_tasks(tables).items():
        if isinstance(t, BestOfN):
            t._check_fitted()
            out[task] = t
        else:
            out[task] = BestOfN(ns, shape=shape, split=split, pool=pool, refined=refined,
                                ci=ci, n_boot=n_boot,
                                collapse_threshold=collapse_threshold).fit(t, scores)
    return out


@styled
def scaling_curves(tables: Tables, scores: Sequence[str] | None = None,
                   ns: Sequence[int] | None = None, *, training_baseline: Baseline = None,
                   split: str | None = "val", ci: float | None = None, pool: str | None = None,
                   reward_label: str = REWARD_LABEL,
                   title: str = "Best-of-N scaling") -> Figure:
    """Observed Best-of-N curves against Random and Oracle (Figs. 1 and 3), one panel per task.

    Parameters
    ----------
    tables : DataFrame, BestOfN, or dict of str -> either
        One score table or fitted analysis, or one per task (one panel each).
    scores, ns, split, pool
        How tables are fitted (see :class:`ttp_diag.BestOfN`); ignored for fitted ones.
    training_baseline : float or dict of str -> float, optional
        Utility of a training-based personalization baseline (horizontal dotted line).
    ci : float, optional
        Bootstrap band over users (e.g. 0.95) when fitting tables here.
    reward_label : str
        Y-axis label (say what the reward is, e.g. "ROUGE (R1+RL)/2").
    title : str
    """
    fits = as_fits(tables, scores, ns, split=split, pool=pool, ci=ci, n_boot=300)
    fig, axes = new_figure(1, len(fits), figsize=(4.6 * len(fits), 3.7))
    for i, (task, fit) in enumerate(fits.items()):
        plot_curves(fit, axes[0, i], training_baseline=training_baseline, task=task,
                    what=title, reward_label=reward_label,
                    letter=panel_letter(i) if len(fits) > 1 else "")
    return fig


@styled
def oracle_scaling(tables: Tables, ns: Sequence[int] | None = None, *,
                   shapes: str | Sequence[str] = (DEFAULT_SHAPE,),
                   training_baseline: Baseline = None, split: str | None = "val",
                   pool: str | None = None, reward_label: str = REWARD_LABEL,
                   title: str = "Oracle scaling") -> Figure:
    """Oracle curve with the calibrated theory ``mu + c sigma g(N)`` per shape (Fig. 2)."""
    shapes = (shapes,) if isinstance(shapes, str) else tuple(shapes)
    fits = as_fits(tables, [], ns, split=split, pool=pool, shape=shapes)
    fig, axes = new_figure(1, len(fits), figsize=(5.6 * len(fits), 3.9))
    for i, (task, fit) in enumerate(fits.items()):
        plot_oracle(fit, axes[0, i], shapes=shapes, training_baseline=training_baseline,
                    task=task, what=title, reward_label=reward_label,
                    letter=panel_letter(i) if len(fits) > 1 else "")
    return fig


@styled
def predicted_vs_observed(tables: Tables, scores: Sequence[str] | None = None,
                          ns: Sequence[int] | None = None, *, shape: str = DEFAULT_SHAPE,
                          split: str | None = "val", refined: bool = False,
                          pool: str | None = None, reward_label: str = REWARD_LABEL) -> Figure:
    """Predicted (dashed) vs observed (solid) curve per (task, reward model) (Fig. A5).

    The scale ``c sigma`` is calibrated once per task from the oracle and shared by every
    reward model; each panel gives relMAE and R².
    """
    fits = as_fits(tables, scores, ns, split=split, shape=shape, refined=refined, pool=pool)
    n_cols = max(len(f.scores_) for f in fits.values())
    fig, axes = new_figure(len(fits), n_cols, figsize=(3.9 * n_cols, 3.3 * len(fits)))
    k = 0
    for i, (task, fit) in enumerate(fits.items()):
        for j in range(n_cols):
            if j >= len(fit.scores_):
                axes[i, j].set_visible(False)
                continue
            plot_predicted(fit, axes[i, j], score=fit.scores_[j], shape=shape, task=task,
                           reward_label=reward_label, letter=panel_letter(k))
            k += 1
    return fig


@styled
def confidence_bands(table: Any, scores: Sequence[str] | None = None,
                     ns: Sequence[int] | None = None, *, ci: float = 0.95, n_boot: int = 1000,
                     split: str | None = "val", seed: int | None = 0, pool: str | None = None,
                     gain: bool = False, reward_label: str = REWARD_LABEL) -> Figure:
    """Best-of-N curves (or gains) with percentile bootstrap bands over users (Fig. A4).

    The paper repeats sampling 10 times; the exact curves here have no sampling noise, so the
    uncertainty that remains is which users were evaluated (see :func:`plot_bands`).
    """
    (fit,) = as_fits(table, scores, ns, split=split, pool=pool).values()
    fig, axes = new_figure(1, 1, figsize=(5.6, 4.0))
    plot_bands(fit, axes[0, 0], gain=gain, ci=ci, n_boot=n_boot, seed=seed,
               reward_label=reward_label)
    return fig


@styled
def correlation_distributions(tables: Tables, scores: Sequence[str] | None = None, *,
                              split: str | None = "val", collapse_threshold: float = 0.1,
                              bins: int = 25) -> Figure:
    """Distributions of per-user rho_u and per-query rho_q with the 0.1 and 0 thresholds
    (Fig. 4). Row 1: rho_u (legend: share collapsed); row 2: rho_q (share negative). One
    column per task. ``collapse_threshold`` applies to tables fitted here."""
    # the curves are not drawn here: two values of N keep the fit cheap
    fits = as_fits(tables, scores, [1, 2], split=split, pool="clip",
                   collapse_threshold=collapse_threshold)
    n = len(fits)
    fig, axes = new_figure(2, n, figsize=(4.8 * n, 6.6))
    for i, (task, fit) in enumerate(fits.items()):
        plot_correlations(fit, axes[0, i], unit="user", bins=bins, task=task,
                          letter=panel_letter(i))
        plot_correlations(fit, axes[1, i], unit="query", bins=bins, task=task,
                          letter=panel_letter(i + n))
    return fig


@styled
def task_panel(tables: Tables, scores: Sequence[str] | None = None,
               ns: Sequence[int] | None = None, *, shape: str = DEFAULT_SHAPE,
               split: str | None = "val", refined: bool = False, pool: str | None = None,
               reward_label: str = REWARD_LABEL) -> Figure:
    """The paper's three-row panel per task (Fig. 5).

    Row 1: observed Best-of-N curves (solid, markers) with each model's theory prediction
    (dash-dot), relMAE in the legend. Row 2: rho_u violins with the collapse threshold.
    Row 3: rho_q violins with 0.
    """
    fits = as_fits(tables, scores, ns, split=split, shape=shape, refined=refined, pool=pool)
    n = len(fits)
    fig, axes = new_figure(3, n, figsize=(4.8 * n, 9.6))
    for i, (task, fit) in enumerate(fits.items()):
        plot_theory(fit, axes[0, i], shape=shape, task=task, reward_label=reward_label,
                    letter=panel_letter(i))
        plot_violins(fit, axes[1, i], unit="user", task=task, letter=panel_letter(i + n))
        plot_violins(fit, axes[2, i], unit="query", task=task,
                     letter=panel_letter(i + 2 * n))
    return fig


def _table_and_diags(table: pd.DataFrame | BestOfN, base: str, new: str, split: str | None,
                     collapse_threshold: float) -> tuple[pd.DataFrame, Diagnostics, Diagnostics]:
    """The analysed rows and the diagnostics of ``base`` and ``new``, reused from a fit."""
    if isinstance(table, BestOfN):
        table._check_fitted()
        t = table.table_
        missing = [s for s in (base, new) if s not in t.columns]
        if missing:
            raise ConfigError(f"the fitted table has no column {missing[0]!r}; pass base=/new= "
                             f"naming two of its score columns ({', '.join(table.scores_)}).")
        same = table.collapse_threshold == collapse_threshold
        diags = [table.diagnostics_[s] if same and s in table.diagnostics_ else
                 diagnose(t, s, split=None, validate=False,
                             collapse_threshold=collapse_threshold) for s in (base, new)]
        return t, diags[0], diags[1]
    t = validate_score_table(table, scores=[base, new], split=split)
    d_base, d_new = (diagnose(t, s, split=None, validate=False,
                                 collapse_threshold=collapse_threshold) for s in (base, new))
    return t, d_base, d_new


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
def failure_modes(table: pd.DataFrame | BestOfN, base: str, new: str, var: str | None = None,
                  *, split: str | None = "val", user: Any = None,
                  collapse_threshold: float = 0.1, normal_threshold: float | str = "auto",
                  task: str = "") -> Figure:
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
    t, d_base, d_new = _table_and_diags(table, base, new, split, collapse_threshold)
    fig, axes = new_figure(2, 2, figsize=(9.6, 7.6))
    ls = label_std_by_collapse(diagnostics=d_base, collapse_threshold=collapse_threshold,
                               normal_threshold=normal_threshold)
    plot_label_std(ls, axes[0, 0], title="(a) " + _title(task, "label std by collapse"))
    u = _pick_collapsed_user(d_base, d_new, user)
    if u is None:
        axes[0, 1].text(0.5, 0.5, f"no user collapses under {rm_label(base)}\n"
                        f"(rho_u < {collapse_threshold:g})", ha="center", va="center",
                        transform=axes[0, 1].transAxes)
        axes[0, 1].set_title("(b) collapsed user: none")
        axes[0, 1].set_xlabel("True reward / predicted score")
        axes[0, 1].set_ylabel("Candidates")
    else:
        plot_user_scores(t, u, [base, new], axes[0, 1],
                         title=f"(b) collapsed user {u}")
    rescue = rescue_analysis(diagnostics=(d_base, d_new))
    plot_rescue(rescue, axes[1, 0])
    axes[1, 0].set_title("(c) " + axes[1, 0].get_title())
    if var is not None and var in t.columns:
        ve = variance_error_correlation(t, new, var, split=None)
        plot_variance_error(ve, axes[1, 1])
        axes[1, 1].set_title("(d) " + axes[1, 1].get_title())
    else:
        axes[1, 1].text(0.5, 0.5, f"no variance column {var!r}", ha="center", va="center",
                        transform=axes[1, 1].transAxes)
        axes[1, 1].set_title("(d) variance vs error: n/a")
        axes[1, 1].set_xlabel("Predicted variance")
        axes[1, 1].set_ylabel("Absolute error")
    return fig


@styled
def collapse_panels(tables: Tables, base: str, new: str, *, split: str | None = "val",
                    collapse_threshold: float = 0.1, normal_threshold: float | str = "auto",
                    bins: int = 20) -> Figure:
    """Cross-task user-level collapse (Fig. A8): one column per task.

    Row 1: label std of collapsed vs normal users under ``base`` (p-values). Row 2: true
    rewards and both models' scores pooled over collapsed users, with each model's Pearson
    correlation over those candidates. Row 3: the same for normal users.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tasks = as_tasks(tables)
    fig, axes = new_figure(3, len(tasks), figsize=(4.6 * len(tasks), 9.9))
    for i, (task, table) in enumerate(tasks.items()):
        t, d, _ = _table_and_diags(table, base, new, split, collapse_threshold)
        res = label_std_by_collapse(diagnostics=d, collapse_threshold=collapse_threshold,
                                    normal_threshold=normal_threshold)
        plot_label_std(res, axes[0, i],
                         title=panel_letter(i) + _title(task, "label std by collapse"))
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
            for (c, lab, color), v in zip(cols, vals, strict=True):
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
def hacking_panels(tables: Tables, base: str, new: str, var: str | None = None, *,
                   split: str | None = "val", bins: int = 20) -> Figure:
    """Cross-task query-level hacking (Fig. A9): one column per task.

    Row 1: rho_q under ``base`` vs ``new`` (rescue quadrant). Row 2: predicted variance vs
    absolute error (Spearman r). Rows 3-4: rho_q histograms of each model with the share of
    negative correlations.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tasks = as_tasks(tables)
    fig, axes = new_figure(4, len(tasks), figsize=(4.6 * len(tasks), 12.6))
    edges = np.linspace(-1, 1, bins + 1)
    for i, (task, table) in enumerate(tasks.items()):
        t, d_base, d_new = _table_and_diags(table, base, new, split, 0.1)
        res = rescue_analysis(diagnostics=(d_base, d_new))
        plot_rescue(res, axes[0, i])
        axes[0, i].set_title(panel_letter(i) + _title(task, "per-query correlation"))
        if var is not None and var in t.columns:
            plot_variance_error(variance_error_correlation(t, new, var, split=None), axes[1, i])
            axes[1, i].set_title(_title(task, axes[1, i].get_title()))
        else:
            axes[1, i].text(0.5, 0.5, f"no variance column {var!r}", ha="center", va="center",
                            transform=axes[1, i].transAxes)
            axes[1, i].set_xlabel("Predicted variance")
            axes[1, i].set_ylabel("Absolute error")
            axes[1, i].set_title(_title(task, "variance vs error: n/a"))
        for row, (s, col) in zip((2, 3), ((base, "rho_base"), (new, "rho_new")), strict=True):
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


@styled
def sub_gaussian_figure(table: pd.DataFrame | SubGaussianCheck, *, user: Any = None,
                        split: str | None = "val", center: str = "user",
                        reward_label: str = "True reward") -> Figure:
    """Sub-Gaussian check (Fig. A6).

    (a) empirical CDF of a user's rewards (default: the user with the median ``s / std``)
    with the Gaussian CDF ``N(mu, s)`` and the sub-Gaussian (Chernoff) envelope implied by the
    fitted parameter ``s``; (b) ``s`` against the plain std for every user (``s >= std``
    always; close to the diagonal means Gaussian-like tails).

    Returns
    -------
    matplotlib.figure.Figure
    """
    chk = (sub_gaussian_check(table, split=split, center=center)
           if isinstance(table, pd.DataFrame) else table)
    fig, axes = new_figure(1, 2, figsize=(9.6, 3.8))
    plot_sub_gaussian(chk, axes[0, 0], kind="ecdf", user=user, reward_label=reward_label,
                      letter="(a) ")
    plot_sub_gaussian(chk, axes[0, 1], kind="ratio", user=user, letter="(b) ")
    return fig


@styled
def linearity_figure(table: pd.DataFrame | LinearityCheck,
                     scores: Sequence[str] | None = None, *, split: str | None = "val",
                     n_bins: int = 10, standardize: str = "user") -> Figure:
    """Linearity of ``E[r* | r_hat]`` (Fig. A7): binned means vs the line of slope rho, one
    panel per score column. Error bars are ±1 standard error of each bin mean."""
    res = (linearity_check(table, scores, split=split, n_bins=n_bins, standardize=standardize)
           if isinstance(table, pd.DataFrame) else table)
    scs = list(res.summary["score"])
    fig, axes = new_figure(1, len(scs), figsize=(3.9 * len(scs), 3.6), sharey=True)
    for j, s in enumerate(scs):
        plot_linearity(res, axes[0, j], score=s, letter=panel_letter(j))
    return fig


@styled
def risk_figure(report: RiskReport | pd.DataFrame,
                scores: Sequence[str] | None = None) -> Figure:
    """Collapse and hacking rates of the low/high label-spread halves (Tables A13/A14 as bars).

    Parameters
    ----------
    report : ttp_diag.analysis.RiskReport or DataFrame
        A risk report, or a score table to compute one from (:func:`ttp_diag.analysis.risk_report`
        with its defaults: user halves from the train labels, rates on val).
    scores : list of str, optional
        Score columns when a table is given.
    """
    if isinstance(report, pd.DataFrame):
        report = risk_report(report, scores)
    fig, axes = new_figure(1, 2, figsize=(9.6, 3.8))
    plot_risk(report, axes[0, 0], kind="collapse")
    plot_risk(report, axes[0, 1], kind="hacking")
    return fig
