"""Every kind of figure of the paper (compatibility module: the figures now live in one
module per family, see :mod:`ttp_diag.plots`).

=========================================  ===============================================
function                                   paper figure (module)
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
:func:`policy_families`                    Fig. A1 (:mod:`~ttp_diag.plots.policies`)
:func:`lora_policy_curves`                 Fig. A2 (:mod:`~ttp_diag.plots.policies`)
:func:`ablation_curves`                    Fig. A3 (:mod:`~ttp_diag.plots.ablations`)
=========================================  ===============================================
"""

from ttp_diag.bestofn import default_ns, resolve_pool
from ttp_diag.plots.ablations import ablation_curves
from ttp_diag.plots.assumptions import linearity_figure, sub_gaussian_figure
from ttp_diag.plots.correlations import correlation_distributions, task_panel
from ttp_diag.plots.curves import (
    confidence_bands,
    oracle_scaling,
    predicted_vs_observed,
    scaling_curves,
)
from ttp_diag.plots.failure import collapse_panels, failure_modes, hacking_panels
from ttp_diag.plots.gallery import write_all_figures
from ttp_diag.plots.policies import lora_policy_curves, policy_families
from ttp_diag.plots.risk import risk_figure

__all__ = [
    "ablation_curves",
    "collapse_panels",
    "confidence_bands",
    "correlation_distributions",
    "default_ns",
    "failure_modes",
    "hacking_panels",
    "linearity_figure",
    "lora_policy_curves",
    "oracle_scaling",
    "policy_families",
    "predicted_vs_observed",
    "resolve_pool",
    "risk_figure",
    "scaling_curves",
    "sub_gaussian_figure",
    "task_panel",
    "write_all_figures",
]
