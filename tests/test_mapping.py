"""Bring your own table (issue 22): column mapping and list explosion in read_table / --map.

The reference is a long score table from ``td.simulate_score_table``; it is folded by hand
into the layout real pipelines write (one row per prompt, lists of responses, gold rewards and
one score list per reward model, their own column names) and saved as JSONL and Parquet. Read
back through the mapping, it must give the same exact Best-of-N curves as the original.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.cli import main
from ttp_diag.mapping import map_columns, parse_map

MAP = dict(user="author", query="prompt_id", candidate="responses", reward="gold",
           scores={"det": "rm_det", "prob": "rm_prob"}, split="part")


@pytest.fixture(scope="module")
def long_table():
    t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=5, seed=4)
    t["text"] = [f"cand {i}" for i in range(len(t))]
    return t.drop(columns=["score_global", "var_prob", "difficulty"])


def _wide(t: pd.DataFrame) -> pd.DataFrame:
    g = t.sort_values(["query_id", "cand_id"]).groupby("query_id", sort=True)
    return pd.DataFrame({
        "prompt_id": list(g.groups), "author": g["user_id"].first().to_numpy(),
        "part": g["split"].first().to_numpy(),
        "responses": [list(x) for x in g["text"].agg(list)],
        "gold": [list(x) for x in g["reward"].agg(list)],
        "rm_det": [list(x) for x in g["score_det"].agg(list)],
        "rm_prob": [list(x) for x in g["score_prob"].agg(list)],
    })


def _same_curves(a: pd.DataFrame, b: pd.DataFrame) -> None:
    for sel in ("random", "oracle", "score_det", "score_prob"):
        np.testing.assert_allclose(td.bon_curve(a, sel, [1, 3, 5])["utility"],
                                   td.bon_curve(b, sel, [1, 3, 5])["utility"], rtol=1e-12)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet"])
def test_wide_file_round_trips_to_the_same_curves(long_table, tmp_path, fmt):
    wide = _wide(long_table)
    path = tmp_path / f"wide.{fmt}"
    if fmt == "parquet":
        wide.to_parquet(path)
    else:
        wide.to_json(path, orient="records", lines=True, double_precision=15)
    got = td.io.read_table(path, columns=MAP)
    assert len(got) == len(long_table)
    assert set(got.columns) >= {"user_id", "query_id", "cand_id", "reward", "score_det",
                                "score_prob", "text", "split"}
    _same_curves(got, long_table)
    # the texts stay with their candidates
    merged = got.merge(long_table, on=["query_id", "cand_id"], suffixes=("", "_ref"))
    assert (merged["text"] == merged["text_ref"]).all()
    np.testing.assert_allclose(merged["reward"], merged["reward_ref"], rtol=1e-13)


def test_ragged_lists_name_the_row_and_columns(long_table):
    wide = _wide(long_table)
    wide.at[2, "gold"] = wide.at[2, "gold"][:-1]
    with pytest.raises(td.ScoreTableError, match=r"ragged lists in row 2 .*candidate has 5 "
                                                 r"values but reward has 4"):
        map_columns(wide, **MAP)


def test_missing_field_and_scalar_in_list_column(long_table):
    wide = _wide(long_table)
    with pytest.raises(td.ScoreTableError, match=r"reward='golden' is not a column.*--map "
                                                 r"reward=COLUMN"):
        map_columns(wide, **{**MAP, "reward": "golden"})
    wide.at[1, "rm_det"] = 0.5
    with pytest.raises(td.ScoreTableError, match=r"row 1 holds 0.5"):
        map_columns(wide, **MAP)
    with pytest.raises(td.ScoreTableError, match="no user"):
        map_columns(wide.drop(columns="author"), **{k: v for k, v in MAP.items()
                                                    if k != "user"})


def test_constant_and_derived_users():
    raw = pd.DataFrame({"pid": ["ann/1", "ann/2", "bob/1"], "c": [[0.1, 0.2]] * 3,
                        "r": [[0.0, 1.0]] * 3})
    one = map_columns(raw, user="const:me", query="pid", reward="r", scores={"x": "c"})
    assert set(one["user_id"]) == {"me"} and len(one) == 6
    two = map_columns(raw, user="prefix:pid:/", query="pid", reward="r", scores={"x": "c"})
    assert two.groupby("user_id")["query_id"].nunique().to_dict() == {"ann": 2, "bob": 1}
    three = map_columns(raw, user=lambda d: d["pid"].str[:1], query="pid", reward="r",
                        scores={"x": "c"})
    assert sorted(set(three["user_id"])) == ["a", "b"]
    with pytest.raises(td.ScoreTableError, match="prefix:COLUMN:SEP"):
        map_columns(raw, user="prefix:pid", reward="r", scores={"x": "c"})


def test_long_table_is_only_renamed(long_table):
    renamed = long_table.rename(columns={"user_id": "who", "reward": "gold",
                                         "score_det": "d"})
    got = map_columns(renamed, user="who", reward="gold", scores={"det": "d"})
    _same_curves(got.assign(score_prob=long_table["score_prob"].to_numpy()), long_table)


def test_parse_map_and_its_errors():
    assert parse_map(["user=a", "scores.p=b,var.p=v"]) == {
        "user": "a", "scores": {"p": "b"}, "var": {"p": "v"}}
    for bad in (["user"], ["scores=x"], ["colour=red"], ["user="]):
        with pytest.raises(td.ScoreTableError, match="FIELD=COLUMN"):
            parse_map(bad)


def test_cli_map_on_a_jsonl_file(long_table, tmp_path, capsys):
    path = tmp_path / "wide.jsonl"
    _wide(long_table).to_json(path, orient="records", lines=True, double_precision=15)
    args = ["--map", "user=author", "query=prompt_id", "candidate=responses", "reward=gold",
            "scores.det=rm_det", "scores.prob=rm_prob", "split=part"]
    assert main(["analyze", str(path), "--ns", "1,3,5", "--json", *args]) == 0
    res = json.loads(capsys.readouterr().out)
    want = td.bon_curve(long_table, "score_det", [1, 3, 5])["utility"].tolist()
    assert res["models"]["score_det"]["observed"] == pytest.approx(want)
    assert main(["analyze", str(path), "--map", "user=author", "reward=nope"]) == 3
    assert "reward='nope' is not a column" in capsys.readouterr().err


def test_hugging_face_dataset(long_table):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_pandas(_wide(long_table))
    _same_curves(map_columns(ds, **MAP), long_table)
