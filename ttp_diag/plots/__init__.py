"""Figures of the paper from score tables or fitted analyses (matplotlib, Agg canvas; never
imported by ``import ttp_diag``).

One module per figure family holds its axes-level panels (a fitted result and ``ax=``; the
results' ``.plot()`` call them, and these modules import the result types for typing only):
:mod:`~ttp_diag.plots.curves` (Figs. 1-3, A4, A5), :mod:`~ttp_diag.plots.correlations`
(Figs. 4, 5), :mod:`~ttp_diag.plots.failure` (Figs. 6, A8, A9),
:mod:`~ttp_diag.plots.assumptions` (Figs. A6, A7), :mod:`~ttp_diag.plots.risk` (Tables
A13/A14). :mod:`~ttp_diag.plots.figures` lays the panels out into the paper's figures from
tables or fits; :mod:`~ttp_diag.plots.policies` (Figs. A1, A2) and
:mod:`~ttp_diag.plots.ablations` (Fig. A3) draw curve tables; :mod:`~ttp_diag.plots.gallery`
writes all of them as PNGs. Colours and labels: :mod:`~ttp_diag.plots.style`.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import scaling_curves, savefig
>>> fig = scaling_curves(td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0))
>>> len(fig.axes)
1
"""

from ttp_diag.plots import figures
from ttp_diag.plots.ablations import ablation_curves
from ttp_diag.plots.figures import *  # noqa: F403 - the figure-level layouts, listed in figures
from ttp_diag.plots.gallery import write_all_figures
from ttp_diag.plots.policies import lora_policy_curves, policy_families
from ttp_diag.plots.style import (
    COLORS,
    LABELS,
    colors_for,
    new_figure,
    rm_color,
    rm_key,
    rm_label,
    savefig,
)

__all__ = [
    *figures.__all__,
    "ablation_curves",
    "lora_policy_curves",
    "policy_families",
    "write_all_figures",
    "COLORS",
    "LABELS",
    "colors_for",
    "new_figure",
    "rm_color",
    "rm_key",
    "rm_label",
    "savefig",
]
