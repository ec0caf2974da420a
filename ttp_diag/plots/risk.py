"""The a-priori risk panel: collapse and hacking rates of the low/high label-spread halves
(Tables A13/A14 as bars; the two-panel figure is :func:`ttp_diag.plots.figures.risk_figure`).

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.analysis import risk_report
>>> from ttp_diag.plots.risk import plot_risk
>>> rep = risk_report(td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0))
>>> plot_risk(rep, kind="hacking").get_ylabel()
'Hacking rate (share of queries)'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from ttp_diag.exceptions import ConfigError
from ttp_diag.plots._common import color as _color
from ttp_diag.plots._common import new_axes
from ttp_diag.plots.style import rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ttp_diag.analysis import RiskReport

__all__ = ["plot_risk"]


@styled
def plot_risk(report: RiskReport, ax: Axes | None = None, *,
              kind: Literal["collapse", "hacking"] = "collapse") -> Axes:
    """Bars of the collapse (users) or hacking (queries) rate of each half, per score column."""
    from matplotlib.patches import Patch

    if kind not in ("collapse", "hacking"):
        raise ConfigError(f"kind must be 'collapse' or 'hacking'; got {kind!r}.")
    ax = new_axes(ax, (4.8, 3.8))
    if kind == "collapse":
        tab, what, split_by = report.collapse_table, "collapse rate (share of users)", \
            "user label std"
    else:
        tab, what, split_by = report.hacking_table, "hacking rate (share of queries)", \
            "query candidate spread"
    scores = list(tab["score"])
    x = np.arange(len(scores))
    w = 0.38
    for k, (half, hatch) in enumerate((("low", "//"), ("high", ""))):
        vals = tab[f"rate_{half}"].to_numpy(float)
        bars = ax.bar(x + (k - 0.5) * w, vals, width=w,
                      color=[_color(s, scores) for s in scores],
                      alpha=0.55 if half == "low" else 0.9, hatch=hatch, edgecolor="black",
                      linewidth=0.6, label=f"{half} {split_by} half")
        for b, v in zip(bars, vals, strict=True):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 0.01, f"{v:.0%}", ha="center",
                        va="bottom", fontsize=7 if len(scores) <= 5 else 5.5)
    ax.set_xticks(x, [rm_label(s, short=True) for s in scores])
    if len(scores) > 5:  # many reward models: slanted ticks never overlap
        ax.tick_params(axis="x", labelrotation=35)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
            lab.set_rotation_mode("anchor")
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
    return ax
