"""Correlation panels: rho_u / rho_q distributions (Fig. 4) and violins (Fig. 5, rows 2-3).

Everything is read from the fitted :class:`ttp_diag.BestOfN` (its ``diagnostics_``); nothing is
diagnosed again here. The figures (:func:`~ttp_diag.plots.figures.correlation_distributions`,
:func:`~ttp_diag.plots.figures.task_panel`) are in :mod:`ttp_diag.plots.figures`.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import correlations
>>> fit = td.BestOfN().fit(td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8,
...                                                seed=0))
>>> correlations.plot_correlations(fit, unit="query").get_ylabel()
'Density'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from ttp_diag.exceptions import ConfigError
from ttp_diag.plots._common import (
    RHO_Q,
    RHO_U,
    THRESHOLD_COLOR,
    legend_below,
    legend_top,
    new_axes,
    title,
)
from ttp_diag.plots.style import colors_for, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ttp_diag.bestofn import BestOfN

__all__ = ["plot_correlations", "plot_violins"]


def _values(fit: BestOfN, score: str, unit: str) -> np.ndarray:
    d = fit.diagnostics_[score]
    if unit == "user":
        return d.per_user["rho_u"].to_numpy()
    pq = d.per_query
    return pq.loc[~pq["undefined"], "rho_q"].to_numpy()


def _check_level(unit: str) -> None:
    if unit not in ("user", "query"):
        raise ConfigError(f"unit must be 'user' (rho_u) or 'query' (rho_q); got {unit!r}.")


@styled
def plot_correlations(fit: BestOfN, ax: Axes | None = None, *,
                      unit: Literal["user", "query"] = "user", bins: int = 25,
                      task: str = "", letter: str = "") -> Axes:
    """Histogram of rho_u (``unit="user"``, line at the collapse threshold) or rho_q
    (``unit="query"``, line at 0) of every fitted score column."""
    _check_level(unit)
    ax = new_axes(ax)
    colors = colors_for(fit.scores_)
    edges = np.linspace(-1, 1, bins + 1)
    thr = fit.collapse_threshold if unit == "user" else 0.0
    for s in fit.scores_:
        v = _values(fit, s, unit)
        what = "collapsed" if unit == "user" else "negative"
        ax.hist(v, bins=edges, histtype="step", linewidth=1.8, color=colors[s], density=True,
                label=f"{rm_label(s)}: mean {v.mean():.2f}, {(v < thr).mean():.0%} {what}")
    sym = RHO_U if unit == "user" else RHO_Q
    name = "collapse" if unit == "user" else "hacking"
    ax.axvline(thr, color=THRESHOLD_COLOR, linestyle=":", linewidth=2,
               label=f"{name} threshold {sym} = {thr:g}")
    ax.set_title(letter + title(task, f"per-{unit} correlation {sym}"))
    ax.set_xlabel(f"{sym} (Pearson r of score and true reward, per {unit})")
    ax.set_ylabel("Density")
    ax.set_xlim(-1, 1)
    legend_top(ax)
    return ax


@styled
def plot_violins(fit: BestOfN, ax: Axes | None = None, *,
                 unit: Literal["user", "query"] = "user", task: str = "",
                 letter: str = "") -> Axes:
    """Violins of rho_u or rho_q per reward model, with quartiles, median, mean and the
    threshold; constant or tiny samples are drawn as points."""
    _check_level(unit)
    ax = new_axes(ax)
    colors = colors_for(fit.scores_)
    for i, name in enumerate(fit.scores_):
        vals = _values(fit, name, unit)
        vals = vals[np.isfinite(vals)]
        col = colors[name]
        if vals.size >= 3 and np.ptp(vals) > 1e-12:
            parts = ax.violinplot([vals], positions=[i], widths=0.8, showmeans=False,
                                  showextrema=False, showmedians=False)
            for body in parts["bodies"]:
                body.set_facecolor(col)
                body.set_edgecolor(col)
                body.set_alpha(0.45)
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            ax.vlines(i, q1, q3, color=col, linewidth=4)
            ax.scatter([i], [med], color="white", edgecolor="#333333", zorder=3, s=18)
        else:
            ax.scatter(np.full(vals.size, i), vals, color=col, s=12)
        ax.scatter([i], [vals.mean() if vals.size else np.nan], marker="_", color="black",
                   s=120, zorder=4)
    # neutral legend proxies: the coloured parts belong to the reward models
    ax.plot([], [], color="#666666", linewidth=4, label="interquartile range")
    ax.plot([], [], marker="o", markerfacecolor="white", markeredgecolor="#333333",
            linestyle="none", label="median")
    ax.plot([], [], marker="_", color="black", markersize=11, linestyle="none", label="mean")
    ax.set_xticks(range(len(fit.scores_)), [rm_label(n, short=True) for n in fit.scores_])
    if len(fit.scores_) > 5:  # many reward models: slanted ticks never overlap
        ax.tick_params(axis="x", labelrotation=35)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
            lab.set_rotation_mode("anchor")
    ax.set_xlim(-0.6, len(fit.scores_) - 0.4)
    sym = RHO_U if unit == "user" else RHO_Q
    thr = fit.collapse_threshold if unit == "user" else 0.0
    ax.axhline(thr, color=THRESHOLD_COLOR, linestyle=":", linewidth=2,
               label=f"{sym} = {thr:g} ({'collapse' if unit == 'user' else 'hacking'})")
    ax.set_ylabel(f"{sym} (per-{unit} correlation)")
    ax.set_title(letter + title(task, f"per-{unit} {sym}"))
    ax.set_xlabel("Reward model")
    ax.set_ylim(-1.05, 1.05)
    # slanted ticks are taller: move the legend further down, clear of the x label
    legend_below(ax, ncols=4, offset=-0.3 if len(fit.scores_) > 5 else -0.2)
    return ax
