"""The refined (concomitant) prediction's panel: reward at each score rank against the law's line.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.diagnostics.heterogeneity import fit_concomitant
>>> t = td.simulate_score_table(n_users=8, n_queries=4, n_candidates=8, seed=0)
>>> ax = plot_concomitant(fit_concomitant(t, "score_prob"))
>>> ax.get_ylabel()
'reward minus query mean'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ttp_diag.plots._common import color, new_axes
from ttp_diag.plots.style import COLORS, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ttp_diag.diagnostics.heterogeneity import ConcomitantFit

__all__ = ["plot_concomitant"]


@styled
def plot_concomitant(fit: ConcomitantFit, ax: Axes | None = None) -> Axes:
    """Mean centred reward at each normal score of the rank (dots, user-weighted, rounded to
    0.05), the fitted piecewise-linear curve (solid, the reward model's colour) and the law's
    straight line of the same overall least-squares slope (dashed); knots as thin lines."""
    ax = new_axes(ax, (5.2, 3.8))
    pts, cur = fit.rank_points(), fit.fitted_curve()
    ax.plot(pts["z"], pts["reward"], "o", ms=3, color="k", label="mean at rank")
    ax.plot(cur["z"], cur["refined"], color=color(fit.score), lw=1.8,
            label=f"refined fit ({rm_label(fit.score)})")
    ax.plot(cur["z"], cur["law"], color=COLORS.get("oracle", "tab:red"), ls="--", lw=1.2,
            label="linear (law)")
    for k in fit.knots:
        ax.axvline(k, color="0.85", lw=0.8)
    ax.set_xlabel(f"normal score of the {rm_label(fit.score)} rank")
    ax.set_ylabel("reward minus query mean")
    ax.legend(fontsize=8, frameon=False)
    return ax
