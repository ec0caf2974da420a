"""Every bad input named in DESIGN.md raises an error that names the problem and the fix."""

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag import ScoreTableError


@pytest.fixture
def good():
    return pd.DataFrame({
        "user_id": ["a"] * 4 + ["b"] * 4,
        "query_id": ["a1", "a1", "a2", "a2", "b1", "b1", "b2", "b2"],
        "cand_id": [0, 1] * 4,
        "split": ["val"] * 8,
        "reward": [0.1, 0.2, 0.3, 0.0, 0.5, 0.4, 0.2, 0.1],
        "score_det": [0.3, 0.1, 0.2, 0.2, 0.9, 0.8, 0.1, 0.5],
    })


def test_good_table_passes(good):
    out = td.validate_score_table(good)
    assert len(out) == 8
    assert td.score_columns(good) == ["score_det"]


def test_missing_column(good):
    with pytest.raises(ScoreTableError, match=r"missing required column\(s\) \['reward'\]"):
        td.validate_score_table(good.drop(columns="reward"))


@pytest.mark.parametrize("bad,word", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_reward(good, bad, word):
    good.loc[2, "reward"] = bad
    with pytest.raises(ScoreTableError, match=rf"'reward' has 1 non-finite.*1 {word}.*'a2'"):
        td.validate_score_table(good)


def test_non_finite_score(good):
    good.loc[5, "score_det"] = np.nan
    with pytest.raises(ScoreTableError, match=r"'score_det' has 1 non-finite.*'b1'"):
        td.bon_curve(good, "score_det", [1])


def test_non_numeric_reward(good):
    good["reward"] = good["reward"].astype(str)
    with pytest.raises(ScoreTableError, match=r"'reward' must be numeric.*pd.to_numeric"):
        td.validate_score_table(good)


def test_duplicate_candidates(good):
    good.loc[1, "cand_id"] = 0
    with pytest.raises(ScoreTableError, match=r"2 rows share a \(query_id, cand_id\).*'a1'"):
        td.validate_score_table(good)


def test_query_shared_by_two_users(good):
    good.loc[good["query_id"] == "b1", "query_id"] = "a1"
    good.loc[good["user_id"] == "b", "cand_id"] = [2, 3, 0, 1]
    with pytest.raises(ScoreTableError, match=r"shared by more than one user.*'a1'"):
        td.validate_score_table(good)


def test_too_few_candidates(good):
    with pytest.raises(ScoreTableError, match=r"1 query\(ies\) have fewer than 2 candidates.*'a2'"):
        td.validate_score_table(good.drop(index=3))


def test_constant_score_column(good):
    good["score_det"] = 0.7
    with pytest.raises(ScoreTableError, match=r"'score_det' is constant.*cannot rank"):
        td.diagnose(good, "score_det")


def test_split_filter_and_missing_split(good):
    good.loc[:3, "split"] = "train"
    assert len(td.validate_score_table(good)) == 4
    assert len(td.validate_score_table(good, split=None)) == 8
    with pytest.raises(ScoreTableError, match=r"no rows with split == 'test'.*\['train', 'val'\]"):
        td.validate_score_table(good, split="test")


def test_missing_ids(good):
    good.loc[0, "user_id"] = None
    with pytest.raises(ScoreTableError, match="'user_id' has 1 missing"):
        td.validate_score_table(good)


def test_not_a_dataframe():
    with pytest.raises(ScoreTableError, match="must be a pandas DataFrame"):
        td.validate_score_table({"reward": [1]})


def test_input_is_not_modified(good):
    before = good.copy()
    td.bon_curve(good, "score_det", [1, 2])
    td.diagnose(good, "score_det")
    pd.testing.assert_frame_equal(good, before)
