"""Figures of the paper from score tables (matplotlib, Agg canvas; never imported by ``ttp_diag``).

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import scaling_curves, savefig
>>> fig = scaling_curves(td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0))
>>> len(fig.axes)
1
"""

from ttp_diag.plots.figures import (
    collapse_panels,
    confidence_bands,
    correlation_distributions,
    default_ns,
    failure_modes,
    hacking_panels,
    linearity_figure,
    oracle_scaling,
    predicted_vs_observed,
    resolve_pool,
    risk_figure,
    scaling_curves,
    sub_gaussian_figure,
    task_panel,
    write_all_figures,
)
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
    "COLORS",
    "LABELS",
    "collapse_panels",
    "colors_for",
    "confidence_bands",
    "correlation_distributions",
    "default_ns",
    "failure_modes",
    "hacking_panels",
    "linearity_figure",
    "new_figure",
    "oracle_scaling",
    "predicted_vs_observed",
    "resolve_pool",
    "risk_figure",
    "rm_color",
    "rm_key",
    "rm_label",
    "savefig",
    "scaling_curves",
    "sub_gaussian_figure",
    "task_panel",
    "write_all_figures",
]
