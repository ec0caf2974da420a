"""Analyses behind the figures and reports: assumption checks, failure modes, selectors, risk.

Everything here works on score tables (see :func:`ttp_diag.validate_score_table`) and
returns tidy DataFrames or small result objects; nothing here plots. Matplotlib lives in
:mod:`ttp_diag.plots` only.
"""

from ttp_diag.analysis.assumptions import (
    LinearityCheck,
    SubGaussianCheck,
    ecdf_envelope,
    linearity_check,
    sub_gaussian_check,
    sub_gaussian_parameter,
)
from ttp_diag.analysis.failure_modes import (
    CollapseLabelStd,
    RescueAnalysis,
    VarianceErrorCorrelation,
    label_std_by_collapse,
    rescue_analysis,
    variance_error_correlation,
)
from ttp_diag.analysis.planner import plan_compute
from ttp_diag.analysis.planner_sample import (
    UNIT_COSTS,
    SamplePlan,
    SamplePlanner,
    UnitCosts,
    plan_sample,
)
from ttp_diag.analysis.risk import RiskReport, label_risk, risk_report
from ttp_diag.analysis.selectors import add_selector_columns, selector_table

__all__ = [
    "CollapseLabelStd",
    "LinearityCheck",
    "RescueAnalysis",
    "RiskReport",
    "SubGaussianCheck",
    "VarianceErrorCorrelation",
    "add_selector_columns",
    "ecdf_envelope",
    "label_risk",
    "label_std_by_collapse",
    "linearity_check",
    "plan_compute",
    "plan_sample",
    "SamplePlan",
    "SamplePlanner",
    "UNIT_COSTS",
    "UnitCosts",
    "rescue_analysis",
    "risk_report",
    "selector_table",
    "sub_gaussian_check",
    "sub_gaussian_parameter",
    "variance_error_correlation",
]
