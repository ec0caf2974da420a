"""Failure-mode panels (Fig. 6 and its cross-task versions, Figs. A8, A9): label std of
collapsed users, one user's score histogram, rescue of hacked queries, variance vs error.

Each panel takes the result it draws (:class:`ttp_diag.analysis.CollapseLabelStd`,
:class:`~ttp_diag.analysis.RescueAnalysis`,
:class:`~ttp_diag.analysis.VarianceErrorCorrelation`) and an optional ``ax``, and returns the
axes; the results' ``.plot()`` call them. The figure-level layouts
(:func:`~ttp_diag.plots.figures.failure_modes`, ``collapse_panels``, ``hacking_panels``) are in
:mod:`ttp_diag.plots.figures`.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.analysis import rescue_analysis
>>> from ttp_diag.plots import failure
>>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
>>> failure.plot_rescue(rescue_analysis(t, "score_det", "score_prob")).get_title()
'Per-query correlation (40 queries)'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ttp_diag.plots._common import RHO_Q, RHO_U, new_axes
from ttp_diag.plots._common import color as _color
from ttp_diag.plots._common import fmt_p as _fmt_p
from ttp_diag.plots._common import legend_below as _legend_below
from ttp_diag.plots._common import legend_top as _legend_top
from ttp_diag.plots.style import CATEGORY_COLORS, rm_color, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ttp_diag.analysis import CollapseLabelStd, RescueAnalysis, VarianceErrorCorrelation

__all__ = ["plot_label_std", "plot_rescue", "plot_user_scores", "plot_variance_error"]


# --------------------------------------------------------------------------- Fig 6 panels
@styled
def plot_label_std(res: CollapseLabelStd, ax: Axes | None = None, *,
                   title: str = "Label std: collapsed vs normal users") -> Axes:
    """Label std of collapsed vs normal users with the test p-values (Fig. 6a)."""
    ax = new_axes(ax)
    pu = res.per_user
    groups = [("collapsed", f"collapsed\n({RHO_U} < {res.collapse_threshold:g})", "#4D4D4D"),
              ("normal", f"normal\n({RHO_U} > {res.normal_threshold:g})", "#5E81AC")]
    data = [pu.loc[pu.group == g, "label_std"].to_numpy() for g, _, _ in groups]
    present = [d.size > 0 for d in data]
    if any(present):
        bp = ax.boxplot([d if d.size else [np.nan] for d in data], positions=[0, 1], widths=0.5,
                        showfliers=False, patch_artist=True,
                        medianprops=dict(color="black", linewidth=1.5))
        for patch, (_, _, c) in zip(bp["boxes"], groups, strict=True):
            patch.set_facecolor(c)
            patch.set_alpha(0.3)
        rng = np.random.default_rng(0)
        for k, (d, (_, _, c)) in enumerate(zip(data, groups, strict=True)):
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
    return ax


def _user_rho(table, user, score):
    g = table[table["user_id"] == user]
    x, y = g[score].to_numpy(float), g["reward"].to_numpy(float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@styled
def plot_user_scores(table: pd.DataFrame, user: Any, scores: Sequence[str],
                     ax: Axes | None = None, *, title: str | None = None,
                     bins: int = 20) -> Axes:
    """Histogram of one user's true rewards and each score column, with each column's
    correlation with the reward over that user's candidates (Fig. 6b)."""
    ax = new_axes(ax)
    g = table[table["user_id"] == user]
    series = [("reward", "True reward", "#333333")] + [
        (s, rm_label(s, short=True) + " RM", _color(s, scores)) for s in scores]
    values = [g[c].to_numpy(float) for c, _, _ in series]
    lo = min(v.min() for v in values)
    hi = max(v.max() for v in values)
    edges = np.linspace(lo, hi + 1e-12 if hi == lo else hi, bins + 1)
    for (col, lab, color), v in zip(series, values, strict=True):
        if col != "reward":
            lab = f"{lab} ($\\rho$ = {_user_rho(table, user, col):+.2f})"
        ax.hist(v, bins=edges, histtype="stepfilled" if col == "reward" else "step",
                alpha=0.35 if col == "reward" else 1.0, linewidth=1.8, color=color, label=lab)
    ax.set_xlabel("True reward / predicted score")
    ax.set_ylabel("Candidates")
    ax.set_title(title or f"Scores of user {user}")
    _legend_top(ax, loc="upper right")
    return ax


@styled
def plot_rescue(res: RescueAnalysis, ax: Axes | None = None) -> Axes:
    """rho_q under ``base`` vs ``new``, the rescue quadrant shaded (Fig. 6c)."""
    ax = new_axes(ax, (5.2, 4.6))
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
    return ax


@styled
def plot_variance_error(res: VarianceErrorCorrelation, ax: Axes | None = None) -> Axes:
    """Predicted variance against absolute error with Spearman r (Fig. 6d)."""
    ax = new_axes(ax)
    d = res.data
    ax.scatter(d["variance"], d["abs_error"], s=5, alpha=0.3, color=rm_color(res.score),
               rasterized=True, label=f"{res.unit}s (n={res.n})")
    ax.set_xlabel(f"Predicted variance ({res.var})")
    ax.set_ylabel(f"|{rm_label(res.score, short=True)} score - true reward|")
    ax.set_title(f"Variance vs error: Spearman r = {res.spearman_r:.2f}")
    _legend_top(ax)
    return ax
