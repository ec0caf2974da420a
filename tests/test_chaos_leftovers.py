"""Leftovers of the bad-input battery (issue 9): each case fails with one message naming it."""

import numpy as np
import pytest

import ttp_diag as td


@pytest.fixture(scope="module")
def diag_cal():
    table = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0)
    ns = [1, 2, 4]
    oracle = td.bon_curve(table, "reward", ns)
    return td.diagnose(table, "score_det"), td.calibrate(ns, oracle["utility"], shape="gaussian")


def test_predict_bon_curve_swapped_arguments_are_named(diag_cal):
    diag, cal = diag_cal
    good = td.predict_bon_curve([1, 2, 4], diag, cal)
    assert np.all(np.isfinite(good))
    with pytest.raises(TypeError, match=r"swapped.*\(ns, diagnostics, calibration\)"):
        td.predict_bon_curve([1, 2, 4], cal, diag)
    with pytest.raises(TypeError, match="swapped"):
        td.predict_bon_curve_per_query([1, 2, 4], cal, diag)
    with pytest.raises(TypeError, match="swapped"):
        td.n_to_close_gap(0.5, cal, diag)


def test_predict_bon_curve_wrong_object_names_the_argument(diag_cal):
    diag, cal = diag_cal
    with pytest.raises(TypeError, match=r"diagnostics \(the second argument\).*got str"):
        td.predict_bon_curve([1, 2], "score_det", cal)
    with pytest.raises(TypeError, match=r"calibration \(the third argument\).*got Diagnostics"):
        td.predict_bon_curve([1, 2], None, diag)
