"""Best-of-N curve panels: observed curves, the oracle law, predictions, bootstrap bands.

Axes-level panels take a fitted :class:`ttp_diag.BestOfN` and an optional ``ax`` (a new figure
when None) and return the axes; ``BestOfN.plot(kind)`` calls them. The figure-level layouts
per task (:func:`~ttp_diag.plots.figures.scaling_curves`, ``oracle_scaling``,
``predicted_vs_observed``, ``confidence_bands``: Figs. 1-3, A4, A5) are in
:mod:`ttp_diag.plots.figures`.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import curves
>>> fit = td.BestOfN().fit(td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8,
...                                                seed=0))
>>> curves.plot_theory(fit).get_xlabel()
'N (candidates per query)'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ttp_diag.plots._common import (
    REWARD_LABEL,
    SHAPE_NAMES,
    color,
    dense,
    label_n_axes,
    legend_top,
    new_axes,
    plot_observed,
    title,
)
from ttp_diag.plots.style import (
    COLORS,
    LABELS,
    new_figure,
    rm_label,
    rm_linestyle,
    rm_marker,
    styled,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ttp_diag.bestofn import BestOfN

__all__ = ["plot_bands", "plot_curves", "plot_gain_forest", "plot_oracle", "plot_predicted",
           "plot_theory", "verdict_figure"]

Baseline = float | Mapping[str, float] | None


def _finish(ax: Axes, task: str, training_baseline: Baseline, what: str,
            reward_label: str, *, letter: str = "") -> None:
    """Training-baseline line (a number or a dict per task), title, labels, legend."""
    base = (training_baseline.get(task) if isinstance(training_baseline, Mapping)
            else training_baseline)
    if base is not None:
        ax.axhline(base, color=COLORS["training"], linestyle=":", linewidth=2,
                   label=LABELS["training"])
    ax.set_title(letter + title(task, what))
    label_n_axes(ax, reward_label)
    legend_top(ax)


# ----------------------------------------------------------------------------- panels
@styled
def plot_curves(fit: BestOfN, ax: Axes | None = None, *, ci: bool = True,
                training_baseline: Baseline = None, task: str = "",
                what: str = "Best-of-N scaling", reward_label: str = REWARD_LABEL,
                letter: str = "") -> Axes:
    """Observed curves of every fitted score column against Random and Oracle.

    ``ci``: draw the fit's bootstrap bands (when it was fitted with ``ci``).
    """
    ax = new_axes(ax)
    for sel in ["random", *fit.scores_, "oracle"]:
        plot_observed(ax, fit, sel, ci=ci and sel != "random")
    _finish(ax, task, training_baseline, what, reward_label, letter=letter)
    return ax


@styled
def plot_theory(fit: BestOfN, ax: Axes | None = None, *, shape: str | None = None,
                with_random: bool = True, task: str = "", reward_label: str = REWARD_LABEL,
                letter: str = "") -> Axes:
    """Observed curves (solid, markers) with each model's prediction (dash-dot: its four
    diagnostics in Prop. 4.4; oracle: the calibration); relMAE in the legend."""
    from ttp_diag.metrics import rel_mae

    ax = new_axes(ax)
    shape = shape or fit.shapes[0]
    grid = dense(fit.ns_effective)  # where the points were measured (clipped N: the pool)
    for sel in (["random"] if with_random else []) + [*fit.scores_, "oracle"]:
        label = rm_label(sel)
        if sel != "random":
            try:
                err = rel_mae(fit.predict(fit.ns_effective, sel, shape),
                              fit.curve(sel)["utility"])
                label += f" (relMAE {err:.1%})"
            except ValueError:  # an observed utility of 0: relMAE undefined
                label += " (relMAE n/a)"
        plot_observed(ax, fit, sel, label=label)
        # the refined prediction exists at whole N only (rank weights of N candidates); on the
        # dense grid it would be drawn as steps
        xs = (np.arange(1, max(fit.ns_effective) + 1)
              if getattr(fit, "prediction_", {}).get(sel) == "refined" else grid)
        ax.plot(xs, fit.predict(xs, sel, shape), color=color(sel, fit.scores_),
                linestyle="-.", linewidth=1.2, alpha=0.9)
    ax.plot([], [], color="#555555", linestyle="-.", label="Theory prediction (dash-dot)")
    ax.set_title(letter + title(task, f"Best-of-N with theory ({shape})"))
    label_n_axes(ax, reward_label)
    legend_top(ax, fontsize=7)
    return ax


@styled
def plot_oracle(fit: BestOfN, ax: Axes | None = None, *, shapes: Sequence[str] | None = None,
                training_baseline: Baseline = None, task: str = "",
                what: str = "Oracle scaling", reward_label: str = REWARD_LABEL,
                letter: str = "") -> Axes:
    """The oracle curve with the calibrated law ``mu + c sigma g(N)`` of each shape (legend:
    mu, c·sigma, R²)."""
    ax = new_axes(ax, (5.6, 3.9))
    shapes = [shapes] if isinstance(shapes, str) else list(shapes or fit.shapes)
    rnd, orc = fit.curve("random"), fit.curve("oracle")
    ax.plot(rnd["n"], rnd["utility"], color=COLORS["random"], linestyle="--",
            label=LABELS["random"])
    ax.plot(orc["n"], orc["utility"], color=COLORS["oracle"], marker="o", markersize=4,
            linewidth=2, label=LABELS["oracle"] + " (observed)")
    grid = dense(fit.ns_effective)
    for j, shape in enumerate(shapes):
        cal = fit.calibration(shape)
        ax.plot(grid, cal.predict(grid), color=COLORS["theory"], linewidth=1.8,
                linestyle=["--", ":", "-."][j % 3],
                label=f"Theory {SHAPE_NAMES.get(shape, shape)}: $\\mu$={cal.mu:.3f}, "
                      f"c$\\sigma$={cal.c_sigma:.3f}, R²={cal.r2:.3f}")
    _finish(ax, task, training_baseline, what, reward_label, letter=letter)
    return ax


@styled
def plot_predicted(fit: BestOfN, ax: Axes | None = None, *, score: str | None = None,
                   shape: str | None = None, task: str = "",
                   reward_label: str = REWARD_LABEL, letter: str = "") -> Axes:
    """Predicted (dashed) vs observed (solid) curve of one score column, relMAE and R²."""
    from ttp_diag.metrics import r_squared, rel_mae

    ax = new_axes(ax, (4.2, 3.4))
    s = score or fit.scores_[0]
    obs = fit.curve(s)
    pred = fit.predict(fit.ns_effective, s, shape)
    col = color(s, fit.scores_)
    ax.plot(obs["n"], obs["utility"], color=col, marker=rm_marker(s), markersize=4,
            linewidth=1.8, label="observed")
    ax.plot(fit.ns_effective, pred, color=col, linestyle="--", linewidth=1.8,
            label="predicted")
    ax.axhline(fit.curve("random")["utility"].iloc[0], color=COLORS["random"], linestyle=":",
               linewidth=1, label="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r2 = r_squared(pred, obs["utility"].to_numpy())
    try:
        err = f"{rel_mae(pred, obs['utility'].to_numpy()):.1%}"
    except ValueError:
        err = "n/a"
    ax.set_title(letter + title(task, rm_label(s)), fontsize=9.5)
    ax.text(0.97, 0.04, f"relMAE {err}\nR² {r2:.2f}", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8,
                  "edgecolor": "#cccccc"})
    label_n_axes(ax, reward_label)
    legend_top(ax, ncols=3)
    return ax


@styled
def plot_bands(fit: BestOfN, ax: Axes | None = None, *, gain: bool = False, ci: float = 0.95,
               n_boot: int | None = None, seed: int | None = None,
               reward_label: str = REWARD_LABEL, oracle: bool = True) -> Axes:
    """Curves (or gains over random, user by user) with percentile bootstrap bands over users.

    The curves are exact, so the uncertainty left is which users were evaluated: users are
    resampled with replacement (the same resamples for every selector). Users differ in their
    reward level much more than in their gains, so the bands of the gains are far narrower:
    they show whether selectors differ, as the paper's paired tests do. ``n_boot`` and
    ``seed`` default to the fit's. ``oracle=False`` leaves the oracle out (its gain is often
    ten times the reward models', which then look flat).
    """
    from ttp_diag.bon import bootstrap_user_ci

    ax = new_axes(ax, (5.6, 4.0))
    n_boot = n_boot or fit.n_boot_
    seed = fit.seed_ if seed is None else seed
    ns = fit.ns_effective
    uc = fit.user_curves()
    per = {sel: uc.loc[uc["selector"] == sel, "utility"].to_numpy().reshape(-1, len(ns))
           for sel in ["random", *fit.scores_, *(["oracle"] if oracle else [])]}
    for sel, u in per.items():
        if gain and sel == "random":
            continue
        u = u - per["random"] if gain else u
        low, high = bootstrap_user_ci(u, ci=ci, n_boot=n_boot, seed=seed or 0)
        mean = u.mean(axis=0)
        col = color(sel, fit.scores_)
        if sel == "random":  # flat reference: a band, no error bars
            ax.plot(ns, mean, color=col, linestyle="--", linewidth=1.6, label=rm_label(sel))
        else:
            # a percentile band need not contain the mean (few or skewed draws): no negative bar
            yerr = [np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)]
            ax.errorbar(ns, mean, yerr=yerr, color=col,
                        marker=rm_marker(sel) or None, markersize=4, capsize=2,
                        linestyle=rm_linestyle(sel), linewidth=1.6, label=rm_label(sel))
        ax.fill_between(ns, low, high, color=col, alpha=0.12, linewidth=0)
    if gain:
        ax.axhline(0.0, color=COLORS["random"], linestyle="--", linewidth=1.2,
                   label="Random (gain 0)")
    label_n_axes(ax, f"Gain over random in {reward_label}" if gain else reward_label)
    what = "Gain over random" if gain else "Best-of-N"
    ax.set_title(f"{what} with {ci:.0%} bootstrap bands over "
                 f"{fit.table_['user_id'].nunique()} users")
    legend_top(ax)
    return ax


def plot_gain_forest(fit: BestOfN, ax: Axes | None = None, *, n: int | None = None,
                     reward_label: str = REWARD_LABEL) -> Axes:
    """Each reward model's gain over random at ``n`` (default the largest N) with the interval
    of the paired difference over users, as in :meth:`ttp_diag.BestOfN.verdict`; the x axis
    also reads as the share of the oracle's gain."""
    from ttp_diag.verdict import GAIN_WORDS

    v = fit.verdict(n)
    n = int(n or fit.ns_[-1])
    ax = new_axes(ax, (5.2, 3.2))
    from ttp_diag.diagnostics import compare_selectors

    level = fit.ci_ or 0.95
    rows = []
    for s in fit.scores_:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = compare_selectors(fit.table_, s, "random", [n], ci=level,
                                  n_boot=fit.n_boot_ or 1000, seed=fit.seed_, split=None,
                                  pool=fit.pool_, validate=False).iloc[0]
        rows.append((s, float(r["diff"]), float(r["ci_low"]), float(r["ci_high"])))
    rnd, orc = fit._observed("random"), fit._observed("oracle")
    og = float(orc[fit.ns_.index(n)] - rnd[fit.ns_.index(n)]) if n in fit.ns_ else float("nan")
    for i, (s, d, lo, hi) in enumerate(rows[::-1]):
        col = color(s, fit.scores_)
        ax.errorbar([d], [i], xerr=[[d - lo], [hi - d]], fmt=rm_marker(s) or "o", color=col,
                    capsize=4, markersize=7, linewidth=2)
        share = f"  {d / og:.0%} of oracle's gain" if og > 0 else ""
        word = GAIN_WORDS.get(v.finding(s, "gain") or "", "")
        ax.annotate(f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]{share}: {word}",
                    (d, i), xytext=(0, 9), textcoords="offset points", ha="center",
                    fontsize=7.5, color=col)
    ax.axvline(0.0, color=COLORS["random"], linestyle="--", linewidth=1.2)
    ax.set_yticks(range(len(rows)), [rm_label(s) for s, *_ in rows[::-1]])
    ax.set_ylim(-0.6, len(rows) - 0.2)
    ax.set_xlabel(f"Gain at N={n} ({level:.0%} paired interval over users)")
    ax.set_title(f"Best-of-{n}: gain over random (oracle gains {og:+.4f})")
    return ax


@styled
def verdict_figure(fit: BestOfN, *, reward_label: str = REWARD_LABEL) -> Figure:
    """The report's first figure, full width: (a) each reward model's gain over random by N
    with bootstrap bands over users (the oracle left out, its gain named in the title of (b));
    (b) the gain at the largest N with the paired interval of the verdict."""
    fig, axes = new_figure(1, 2, figsize=(12.0, 4.0), width_ratios=[1.15, 1.0])
    plot_bands(fit, axes[0, 0], gain=True, ci=fit.ci_ or 0.95, reward_label=reward_label,
               oracle=False)
    axes[0, 0].set_title(f"(a) Gain over random by N, {fit.ci_ or 0.95:.0%} bands over "
                         f"{fit.table_['user_id'].nunique()} users")
    plot_gain_forest(fit, axes[0, 1], reward_label=reward_label)
    axes[0, 1].set_title("(b) " + axes[0, 1].get_title())
    return fig
