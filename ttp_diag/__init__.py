"""ttp_diag: exact Best-of-N scaling laws and diagnostics for test-time personalization.

The analysis layers need only numpy, scipy and pandas; the heavy generation pipeline lives in
:mod:`ttp_diag.gen` and is never imported from here.

Examples
--------
>>> import ttp_diag as td
>>> t = td.simulate_score_table(n_users=20, n_queries=8, n_candidates=16, seed=0)
>>> ns = [1, 2, 4, 8, 16]
>>> oracle = td.bon_curve(t, "oracle", ns)
>>> cal = td.calibrate(ns, oracle["utility"], shape="gaussian")
>>> diag = td.diagnose(t, "score_prob")
>>> pred = td.predict_bon_curve(ns, diag, cal)
>>> obs = td.bon_curve(t, "score_prob", ns)["utility"]
>>> td.rel_mae(pred, obs) < 0.05
True
"""

__version__ = "0.1.0"

from . import exceptions, io
from .bestofn import BestOfN
from .bon import bon_curve, bon_curves, bon_per_query, selection_weights
from .dataset import bon_curve_dataset
from .datasets import demo_path, demo_provenance, load_demo
from .diagnostics import Diagnostics, compare_selectors, diagnose
from .diagnostics.heterogeneity import ConcomitantFit, fit_concomitant, select_prediction
from .exceptions import TtpDiagError
from .mapping import map_columns
from .metrics import (
    capture_error,
    capture_rate,
    gain_error,
    mean_capture_rate,
    r_squared,
    rel_mae,
)
from .simulate import (
    DEFAULT_MODELS,
    HeteroProxy,
    SimulatedRM,
    simulate_heterogeneous_table,
    simulate_score_table,
)
from .table import ScoreTable, ScoreTableError, score_columns, validate_score_table
from .theory import (
    DEFAULT_SHAPE,
    SHAPES,
    Calibration,
    calibrate,
    collapsed_refinement,
    correlation_scaling,
    curve_shape,
    effective_correlation,
    expected_max_normal,
    n_to_close_gap,
    oracle_bound,
    predict_bon_curve,
    predict_bon_curve_per_query,
    total_correlation,
    unified_law,
)

__all__ = [
    "exceptions", "io", "BestOfN", "TtpDiagError",
    "DEFAULT_MODELS", "DEFAULT_SHAPE",
    "SHAPES", "Calibration", "Diagnostics", "ScoreTable", "ScoreTableError",
    "SimulatedRM",
    "bon_curve", "bon_curve_dataset", "bon_curves", "bon_per_query", "calibrate", "capture_rate",
    "capture_error", "collapsed_refinement", "compare_selectors", "correlation_scaling",
    "curve_shape", "demo_path", "demo_provenance", "diagnose",
    "effective_correlation", "expected_max_normal", "gain_error", "load_demo", "map_columns",
    "mean_capture_rate",
    "n_to_close_gap",
    "oracle_bound", "plan_sample", "SamplePlan", "SamplePlanner",
    "predict_bon_curve", "predict_bon_curve_per_query", "r_squared", "rel_mae",
    "score_columns", "selection_weights", "simulate_score_table", "total_correlation",
    "unified_law", "validate_score_table",
    # issue 21: heterogeneous pools, the refined (concomitant) prediction
    "ConcomitantFit", "HeteroProxy", "fit_concomitant", "select_prediction",
    "simulate_heterogeneous_table",
]

#: Exported names imported on first use: the analysis layer pulls in scipy.stats, which would
#: several-fold the time of a bare ``import ttp_diag``.
_LAZY = {"plan_sample": "ttp_diag.analysis.planner_sample",
         "SamplePlanner": "ttp_diag.analysis.planner_sample",
         "SamplePlan": "ttp_diag.analysis.planner_sample"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ttp_diag' has no attribute {name!r}")
