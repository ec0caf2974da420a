"""Pure numpy/scipy theory: expected maxima, the scaling laws, calibration and prediction."""

from .calibration import Calibration, calibrate
from .extremes import DEFAULT_SHAPE, SHAPES, curve_shape, expected_max_normal
from .laws import (
    collapsed_refinement,
    correlation_scaling,
    effective_correlation,
    oracle_bound,
    total_correlation,
    unified_law,
)
from .prediction import n_to_close_gap, predict_bon_curve, predict_bon_curve_per_query

__all__ = [
    "DEFAULT_SHAPE",
    "SHAPES", "Calibration", "calibrate", "collapsed_refinement", "correlation_scaling",
    "curve_shape", "effective_correlation", "expected_max_normal", "n_to_close_gap",
    "oracle_bound", "predict_bon_curve", "predict_bon_curve_per_query", "total_correlation",
    "unified_law",
]
