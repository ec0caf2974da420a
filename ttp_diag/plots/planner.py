"""Power curves of the sample-size planner (:func:`ttp_diag.plan_sample`).

Power against the number of users (log axis), one line per queries-per-user value (line
styles by candidates per query), each point with its 95% Clopper-Pearson interval over the
simulated experiments, the target power and the test's level as reference lines.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots.planner import plot_power
>>> plan = td.plan_sample(None, td.SimulatedRM(rho_plus=0.3, beta=0.0), None, users=[5, 10],
...                       queries=[2, 4], candidates=[8], questions=["gain"], n_sims=20)
>>> plot_power(plan, "gain").get_ylabel()
'Power (share of experiments)'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ttp_diag.exceptions import ConfigError
from ttp_diag.plots._common import new_axes
from ttp_diag.plots.style import new_figure, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ttp_diag.analysis.planner_sample import SamplePlan

__all__ = ["plot_power", "power_figure"]

_QUEUE_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
_CAND_STYLES = ("-", "--", ":", "-.")


def _title(plan: SamplePlan, question: str, selector: str, versus: str, truth: float) -> str:
    n = plan.n_
    return {
        "gain": f"{rm_label(selector)} vs random at N={n}",
        "difference": f"{rm_label(selector)} − {rm_label(versus)} at N={n}",
        "prediction": f"Law's gain of {rm_label(selector)} within "
                      f"{plan.planner.share:.0%}, N={n}",
        "collapse": f"Collapse of {rm_label(selector)} (true rate {truth:.2f})",
        "hacking": f"Hacking by {rm_label(selector)} (true rate {truth:.2f})",
    }[question]


@styled
def plot_power(plan: SamplePlan, question: str = "difference", selector: str | None = None,
               ax: Axes | None = None) -> Axes:
    """One question's power curves on ``ax`` (a new figure when None)."""
    p = plan.power_
    rows = p[p["question"] == question]
    if selector is not None:
        rows = rows[rows["selector"] == selector]
    if rows.empty:
        have = sorted(set(zip(p["question"], p["selector"], strict=True)))
        raise ConfigError(f"the plan has no question {question!r}"
                          + (f" for selector {selector!r}" if selector else "")
                          + f"; it has {have}.")
    selector = rows["selector"].iloc[0]
    rows = rows[rows["selector"] == selector]
    versus = rows["versus"].iloc[0]
    ax = new_axes(ax, (5.2, 3.8))
    queries = sorted(rows["n_queries"].unique())
    cands = sorted(rows["n_candidates"].unique())
    n_lines = len(queries) * len(cands)
    for i, k in enumerate(queries):
        for j, m in enumerate(cands):
            # lines side by side (a few percent apart on the log axis) so intervals do not hide
            dodge = 1.0 + 0.03 * (i * len(cands) + j - (n_lines - 1) / 2)
            g = rows[(rows["n_queries"] == k) & (rows["n_candidates"] == m)] \
                .sort_values("n_users")
            label = f"{k} queries/user" + (f", {m} candidates" if len(cands) > 1 else "")
            col = _QUEUE_COLORS[i % len(_QUEUE_COLORS)]
            err = np.vstack([g["power"] - g["power_low"], g["power_high"] - g["power"]])
            ax.errorbar(g["n_users"] * dodge, g["power"], yerr=err, color=col,
                        linestyle=_CAND_STYLES[j % len(_CAND_STYLES)], marker="o",
                        markersize=4, linewidth=1.6, capsize=2.5, elinewidth=0.9, label=label)
    ax.axhline(plan.target, color="black", linestyle="--", linewidth=0.9,
               label=f"target {plan.target:.0%}")
    if question != "prediction":
        ax.axhline(plan.test_level, color="#B2182B", linestyle=":", linewidth=0.9,
                   label=f"test level {plan.test_level:g}")
    ax.set_xscale("log")
    users = sorted(rows["n_users"].unique())
    ax.set_xticks(users)
    ax.set_xticklabels([str(u) for u in users])
    ax.minorticks_off()
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Users")
    ax.set_ylabel("Power (share of experiments)" if question != "prediction"
                  else "Share of experiments within the margin")
    ax.set_title(_title(plan, question, selector, versus, float(rows["truth"].iloc[0])))
    ax.legend(loc="best", fontsize=7.5)
    return ax


@styled
def power_figure(plans: SamplePlan | Sequence[SamplePlan],
                 panels: Sequence[tuple[str, str | None]] | None = None) -> Figure:
    """Side-by-side power panels, one per ``(question, selector)`` (default: every question
    and selector of the plans), each drawn from the plan that has it."""
    plans = [plans] if not isinstance(plans, (list, tuple)) else list(plans)
    if panels is None:
        panels = list(dict.fromkeys((q, s) for pl in plans for q, s in
                                    zip(pl.power_["question"], pl.power_["selector"],
                                        strict=True)))
    fig, axes = new_figure(1, len(panels), figsize=(max(6.0, 4.6 * len(panels)), 3.9))
    sims = set()
    for ax, (q, s) in zip(axes[0], panels, strict=True):
        owner = next((pl for pl in plans if ((pl.power_["question"] == q)
                                             & ((s is None) | (pl.power_["selector"] == s))
                                             ).any()), plans[0])
        plot_power(owner, q, s, ax=ax)
        sims.add(int(owner.power_["n_sims"].iloc[0]))
        if ax is not axes[0][0]:
            ax.set_ylabel("")
    fig.suptitle(f"{'/'.join(map(str, sorted(sims)))} simulated experiments per point, 95% "
                 f"intervals", fontsize=9)
    return fig
