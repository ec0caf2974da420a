"""Every analysis result follows one convention: summary DataFrame, text, plot(ax=None)."""

import warnings

import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag import analysis as A


@pytest.fixture(scope="module")
def table():
    return td.simulate_score_table(n_users=12, n_queries=4, n_candidates=8, seed=0,
                                   collapsed_sigma_ratio=0.5)


RESULTS = {
    "label_std": lambda t: A.label_std_by_collapse(t, "score_det", normal_threshold=0.2),
    "rescue": lambda t: A.rescue_analysis(t, "score_det", "score_prob"),
    "variance_error": lambda t: A.variance_error_correlation(t, "score_prob", "var_prob"),
    "sub_gaussian": lambda t: A.sub_gaussian_check(t),
    "linearity": lambda t: A.linearity_check(t),
    "risk": lambda t: A.risk_report(t),
    "label_risk": lambda t: A.label_risk(t),
    "bestofn": lambda t: td.BestOfN(ns=[1, 2, 4]).fit(t),
}
PLOTS = {"label_std", "rescue", "variance_error", "sub_gaussian", "linearity", "risk",
         "bestofn"}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_result_convention(table, name, capsys):
    res = RESULTS[name](table)
    assert isinstance(res.summary, pd.DataFrame) and len(res.summary) >= 1
    text = str(res)
    assert text and "DataFrame" not in text and "object at" not in text
    res.print_summary()
    assert capsys.readouterr().out.strip()
    if name in PLOTS:
        from matplotlib.figure import Figure

        ax = Figure().subplots()
        assert res.plot(ax=ax) is ax
        assert ax.get_xlabel() and ax.get_ylabel()
        assert res.plot().figure is not ax.figure
        assert capsys.readouterr().out == ""  # plotting never prints


@pytest.mark.parametrize("name", ["label_std", "rescue", "variance_error", "sub_gaussian",
                                  "risk"])
def test_summary_is_a_plain_frame_and_text_is_str(table, name):
    res = RESULTS[name](table)
    assert type(res.summary) is pd.DataFrame and not callable(res.summary)
    assert str(res) == res._text()


def test_linearity_check_follows_the_convention(table):
    res = A.linearity_check(table)
    assert type(res.summary) is pd.DataFrame and str(res) == res._text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(res.summary["score"]) == td.score_columns(table)
