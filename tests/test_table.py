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


# --- issue 9: table-level hostile inputs; issue 7.4: the ScoreTable value object ---------------

B_ARGS = dict(n_users=6, n_queries=4, n_candidates=8, seed=0)


def test_duplicated_column_name(good):
    dup = pd.concat([good, good[["reward"]]], axis=1)
    with pytest.raises(ScoreTableError, match=r"duplicated column name\(s\) \['reward'\].*"
                                              r"~table.columns.duplicated\(\)"):
        td.bon_curve(dup, "score_det", [1])


def test_multiindex_columns(good):
    mi = good.copy()
    mi.columns = pd.MultiIndex.from_product([["x"], good.columns])
    with pytest.raises(ScoreTableError, match=r"MultiIndex columns.*get_level_values"):
        td.validate_score_table(mi)


@pytest.mark.parametrize("col", ["reward", "score_prob"])
def test_values_whose_square_overflows_are_refused(col):
    b = td.simulate_score_table(**B_ARGS)
    b[col] = b[col] * 1e308
    with pytest.raises(ScoreTableError, match=rf"column '{col}' has \d+ value\(s\) of magnitude "
                                              r"above 1e\+100.*overflow.*rescale"):
        td.bon_curve(b, "score_prob", [1, 2])


def test_corrupted_values_outside_a_sane_range():
    b = td.simulate_score_table(**B_ARGS)
    rows = b.index[b["split"] == "val"][[3, 40]]
    b.loc[rows, "score_det"] = [2.5e14, -1e13]  # a damaged page: garbage far out of range
    with pytest.raises(ScoreTableError, match=r"'score_det' has 2 value\(s\) more than 1e\+12 "
                                              r"times.*corrupted.*check_range=False"):
        td.ScoreTable(b, scores=["score_det"])
    st = td.ScoreTable(b, scores=["score_det"], check_range=False)  # genuine values: allowed
    assert len(st) == int((b["split"] == "val").sum())
    b.loc[rows, "score_det"] = 1e272
    with pytest.raises(ScoreTableError, match=r"magnitude above 1e\+100"):
        td.ScoreTable(b, scores=["score_det"], check_range=False)


def test_range_check_accepts_heavy_but_genuine_columns():
    b = td.simulate_score_table(**B_ARGS)
    b["score_det"] = np.exp(8 * b["score_det"])  # a monotone transform: wide, not corrupt
    b["reward"] = (b["reward"] > b["reward"].quantile(0.97)).astype(float)  # mostly zeros
    td.ScoreTable(b, scores=["score_det"])


def test_ci_with_too_few_users_is_nan_with_a_warning():
    one = td.simulate_score_table(n_users=1, n_queries=4, n_candidates=8, seed=0)
    with pytest.warns(RuntimeWarning, match=r"1 user\(s\) are too few.*NaN"):
        out = td.bon_curve(one, "score_prob", [1, 4], ci=0.95)
    assert out[["ci_low", "ci_high"]].isna().all().all()
    assert out["utility"].notna().all()


@pytest.mark.parametrize("ci", [1.5, 0, 1, -0.1, 95, float("nan")])
def test_ci_validated_alike(ci):
    b = td.simulate_score_table(**B_ARGS)
    with pytest.raises(ValueError, match="confidence level in \\(0, 1\\)"):
        td.bon_curve(b, "score_prob", [1], ci=ci)


def test_shared_checks():
    from ttp_diag._checks import check_ci, check_n_boot, check_seed

    assert check_ci(0.9) == 0.9 and check_ci(None) is None
    with pytest.raises(ValueError, match="did you mean 0.95"):
        check_ci(95)
    with pytest.raises(TypeError):
        check_ci(True)
    with pytest.raises(ValueError, match="got None"):
        check_ci(None, allow_none=False)
    assert check_n_boot(10.0) == 10
    for bad in (0, -3):
        with pytest.raises(ValueError, match="n_boot must be a whole number >= 1"):
            check_n_boot(bad)
    with pytest.raises(TypeError):
        check_n_boot(2.5)
    assert check_seed(np.int64(3)) == 3 and check_seed(None) is None
    with pytest.raises(TypeError):
        check_seed("0")


def test_score_table_value_object(good):
    st = td.ScoreTable(good)
    assert (st.n_queries, st.n_users, len(st)) == (4, 2, 8)
    assert list(st.query_ids) == ["a1", "a2", "b1", "b2"]
    np.testing.assert_array_equal(st.pool_sizes, [2, 2, 2, 2])
    np.testing.assert_array_equal(st.user_of_query, [0, 0, 1, 1])
    np.testing.assert_array_equal(st.q_codes, [0, 0, 1, 1, 2, 2, 3, 3])
    assert st.frame is good  # no copy when no split filter applies
    assert td.score_columns(st) == ["score_det"]
    assert "ScoreTable(8 rows" in repr(st)
    # functions that validate accept it, and a DataFrame still works the same
    pd.testing.assert_frame_equal(td.validate_score_table(st), td.validate_score_table(good))
    d1, d2 = td.diagnose(st, "score_det"), td.diagnose(good, "score_det")
    assert d1.alpha == d2.alpha and d1.beta == d2.beta


def test_score_table_split_semantics(good):
    good.loc[:3, "split"] = "train"
    everything = td.ScoreTable(good, split=None)
    assert len(everything) == 8
    val = everything.for_split("val")
    assert len(val) == 4 and everything.for_split("val") is val  # cached
    pd.testing.assert_frame_equal(td.bon_curve(everything, "score_det", [1, 2]),
                                  td.bon_curve(good, "score_det", [1, 2]))
    pd.testing.assert_frame_equal(td.bon_curve(everything, "score_det", [1, 2], split=None),
                                  td.bon_curve(good, "score_det", [1, 2], split=None))
    with pytest.raises(ScoreTableError, match="no rows with split == 'train'"):
        td.bon_curve(val, "score_det", [1], split="train")


def test_score_table_checks_columns_on_first_use(good):
    good["score_bad"] = 0.5
    st = td.ScoreTable(good, scores=["score_det"])
    with pytest.raises(ScoreTableError, match="'score_bad' is constant"):
        td.bon_curve(st, "score_bad", [1])
    with pytest.raises(ScoreTableError, match="score column 'nope' not found"):
        td.bon_curve(st, "nope", [1])


def test_duplicates_found_with_unsorted_or_string_candidates(good):
    good["cand_id"] = ["x", "y"] * 4
    td.validate_score_table(good)
    good.loc[3, "cand_id"] = "x"
    with pytest.raises(ScoreTableError, match=r"2 rows share a \(query_id, cand_id\).*'a2'"):
        td.validate_score_table(good)
    scattered = good.iloc[[3, 0, 5, 2, 7, 1, 4, 6]]
    with pytest.raises(ScoreTableError, match=r"2 rows share.*'a2'"):
        td.validate_score_table(scattered)


def test_duplicates_found_with_sparse_candidate_ids(good):
    good["cand_id"] = [10**12, 7] * 4  # unsorted and far apart: the hashed-key path
    td.validate_score_table(good)
    good.loc[5, "cand_id"] = 10**12
    with pytest.raises(ScoreTableError, match=r"2 rows share a \(query_id, cand_id\).*'b1'"):
        td.validate_score_table(good)
