"""Loaders and the paper's example construction (top-k users, cap, time split)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from ttp_diag.datasets import DEMO_COLUMNS
from ttp_diag.gen.data import (
    HUFFPOST_PATH,
    DataError,
    build_examples,
    get_task,
    load_huffpost_users,
    load_jsonl_users,
    load_lamp,
    load_longlamp,
)


def _user(uid, n_prof, n_q, start_day=1, author="A"):
    prof = [
        {
            "id": f"{uid}_p{i}",
            "text": f"article {uid} {i}",
            "title": f"Title {uid} {i}",
            "date": f"2020-01-{start_day + i:02d}",
        }
        for i in range(n_prof)
    ]
    qs = [
        {
            "id": f"{uid}_q{i}",
            "input": f"Generate a headline for the following article: query {uid} {i}",
            "output": f"Gold {uid} {i}",
            "date": f"2020-02-{1 + i:02d}",
        }
        for i in range(n_q)
    ]
    return {"user_id": uid, "author": author, "profile": prof, "queries": qs}


def _write_jsonl(path, recs, gz=False):
    lines = [r if isinstance(r, str) else json.dumps(r) for r in recs]
    data = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(data)
    else:
        path.write_text(data)
    return path


def test_jsonl_items_sorted_by_date_with_queries_last(tmp_path):
    u = _user("u1", 4, 2)
    # shuffle the profile: the loader must restore time order
    u["profile"] = u["profile"][::-1]
    items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl.gz", [u], gz=True))
    assert list(items["item_id"]) == ["u1_p0", "u1_p1", "u1_p2", "u1_p3", "u1_q0", "u1_q1"]
    assert list(items["position"]) == list(range(6))
    # profile items get the LaMP-4 input wording, queries keep theirs; body has no prefix
    assert items.loc[0, "input"] == "Generate a headline for the following article: article u1 0"
    assert items.loc[4, "body"] == "query u1 0"
    assert items.loc[4, "output"] == "Gold u1 0"
    assert items.attrs["summary"].n_items == 6


def test_malformed_records_are_skipped_and_counted(tmp_path):
    good = _user("u1", 3, 1)
    bad_item = _user("u2", 3, 1)
    bad_item["profile"][1]["title"] = "  "  # empty output
    del bad_item["profile"][2]["text"]  # missing field
    bad_item["queries"][0]["output"] = ""  # empty gold
    recs = [good, "{not json", {"author": "x"}, bad_item, good]
    items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", recs))
    s = items.attrs["summary"]
    assert s.n_records == 5
    assert s.skipped["missing field 'user_id'"] == 1
    assert sum(v for k, v in s.skipped.items() if k.startswith("bad JSON")) == 1
    assert s.skipped["duplicate user_id 'u1'"] == 1
    assert s.skipped["missing or empty output field 'title'"] == 1
    assert s.skipped["missing or empty field 'text'"] == 1
    assert s.skipped["missing or empty field 'output'"] == 1
    assert s.n_skipped == 6
    assert items.groupby("user_id").size().to_dict() == {"u1": 4, "u2": 1}
    # every message names its record
    assert any("line 2" in m for m in s.examples)
    assert any("'u2_p1'" in m for m in s.examples)


def test_strict_mode_raises_naming_the_record(tmp_path):
    u = _user("u1", 2, 1)
    u["queries"][0]["output"] = None
    with pytest.raises(DataError, match=r"u1_q0.*output"):
        load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", [u]), strict=True)


def test_build_examples_topk_cap_and_split(tmp_path):
    recs = [_user("a", 20, 5), _user("b", 8, 2), _user("c", 12, 3), _user("d", 2, 1)]
    items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", recs))
    ex = build_examples(
        items, top_k_users=2, max_samples_per_user=10, val_fraction=0.2, min_items=5
    )
    # top-2 by item count: a (25) and c (15); d has too few items
    assert ex.summary["users"] == ["a", "c"]
    assert ex.summary["users_skipped"] == {"d": "only 3 items (< min_items=5)"}
    e = ex.examples
    assert e.groupby("user_id").size().to_dict() == {"a": 10, "c": 10}
    for uid, g in e.groupby("user_id"):
        g = g.sort_values("position")
        # the cap keeps the latest items; the last 20% are val, all after every train item
        full = items[items.user_id == uid].sort_values("position")
        assert list(g["item_id"]) == list(full["item_id"].tail(10))
        assert list(g["split"]) == ["train"] * 8 + ["val"] * 2
        assert (
            g.loc[g.split == "train", "position"].max() < g.loc[g.split == "val", "position"].min()
        )
    assert e["query_id"].is_unique
    # the retrieval pool keeps every item of the selected users, including capped-off ones
    assert len(ex.items) == 25 + 15


def test_build_examples_errors(tmp_path):
    items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", [_user("a", 2, 1)]))
    with pytest.raises(ValueError, match="min_items"):
        build_examples(items, min_items=5)
    with pytest.raises(ValueError, match="val_fraction"):
        build_examples(items, val_fraction=1.0)
    with pytest.raises(ValueError, match="not in the data"):
        build_examples(items, users=["zzz"], min_items=1)


def test_lamp_questions_and_outputs(tmp_path):
    qs = [
        {
            "id": "100",
            "input": "Generate a title for the following abstract of a paper: We study X.",
            "profile": [
                {"id": "p1", "abstract": "Old abstract", "title": "Old title"},
                {"id": "p2", "abstract": "", "title": "No abstract"},
            ],
        },
        {
            "id": "101",
            "input": "Generate a title for the following abstract of a paper: Y.",
            "profile": [{"id": "p3", "abstract": "a", "title": "t"}],
        },
        {"id": "102", "input": "no gold", "profile": []},
    ]
    outs = {
        "task": "LaMP_5",
        "golds": [{"id": "100", "output": "X Is Good"}, {"id": "101", "output": "Y"}],
    }
    (tmp_path / "q.json").write_text(json.dumps(qs))
    (tmp_path / "o.json").write_text(json.dumps(outs))
    items = load_lamp(tmp_path / "q.json", tmp_path / "o.json", "lamp5")
    s = items.attrs["summary"]
    assert s.skipped["missing or empty field 'abstract'"] == 1
    assert s.skipped["no gold output (not in the outputs file, or empty)"] == 1
    u100 = items[items.user_id == "100"].sort_values("position")
    assert list(u100["item_id"]) == ["p1", "100"]
    assert u100.iloc[1]["body"] == "We study X."
    assert u100.iloc[1]["output"] == "X Is Good"
    assert u100.iloc[0]["input"].startswith(
        "Generate a title for the following abstract of a paper: "
    )


def test_lamp_bad_json_is_a_clear_error(tmp_path):
    (tmp_path / "q.json").write_text('[{"id": "1", ')
    with pytest.raises(DataError, match="q.json"):
        load_lamp(tmp_path / "q.json", None, "lamp4")


def test_longlamp_review_schema(tmp_path):
    prof = [
        {"overall": 5.0, "summary": "Great", "description": "A book", "reviewText": "Loved it"},
        {"overall": 4.0, "summary": "Ok", "description": "", "reviewText": "Fine"},
    ]
    rows = [
        {
            "reviewerId": "r1",
            "input": 'Generate the review text for a product with rating "3.0" ...',
            "output": "Meh.",
            "profile": prof,
        },
        {"reviewerId": "r1", "input": "second query", "output": "Again.", "profile": prof},
    ]
    p = tmp_path / "rev.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    items = load_longlamp(p, "product_review")
    # the shared profile appears once; both queries are items; the empty description is skipped
    assert len(items) == 3
    assert items.attrs["summary"].skipped["missing field 'description'"] == 2
    prof_row = items[items.source == "profile"].iloc[0]
    assert prof_row["input"] == (
        'Generate the review text for a product with rating "5.0" and '
        'description "A book". Summary: "Great".'
    )
    assert prof_row["output"] == "Loved it"
    assert get_task("topic_writing").long_form and get_task("lamp4").temperature == 1.7


def test_unknown_task():
    with pytest.raises(ValueError, match="known tasks"):
        get_task("lamp9")


@pytest.mark.skipif(not HUFFPOST_PATH.is_file(), reason="shared HuffPost set not present")
def test_huffpost_set_loads_and_is_time_ordered():
    items = load_huffpost_users()
    s = items.attrs["summary"]
    assert s.n_users == 100 and s.n_skipped == 0
    ex = build_examples(items, top_k_users=10, max_samples_per_user=36)
    assert ex.summary["n_examples"] == 360 and ex.summary["n_val"] == 80
    # Lee Moran has the longest profile (843 items)
    assert ex.summary["users"][0] == "huffpost_000"
    for _, g in ex.examples.groupby("user_id"):
        d = g.sort_values("position")["date"].tolist()
        assert d == sorted(d)


def test_load_demo_missing_file_is_a_clear_error(monkeypatch):
    import ttp_diag.datasets as ds

    monkeypatch.setattr(ds, "_TABLE", "no_such_demo.parquet")
    with pytest.raises(FileNotFoundError, match="build_demo_data.py"):
        ds.load_demo()


def test_load_demo_contract():
    import ttp_diag.datasets as ds

    try:
        table = ds.load_demo()
    except FileNotFoundError:
        pytest.skip("the demo table has not been built yet")
    for col in DEMO_COLUMNS:
        assert col in table.columns
    assert set(table["split"]) == {"train", "val"}
    assert not table.duplicated(["query_id", "cand_id"]).any()
    assert table.groupby("query_id")["user_id"].nunique().max() == 1
    assert table["reward"].between(0, 1).all()
    assert (ds.load_demo("val")["split"] == "val").all()
    prov = ds.demo_provenance()
    assert prov["attribution"]["license"].startswith("CC BY 4.0")
    assert {u["user_id"] for u in prov["user_slice"]} == set(table["user_id"])
    with pytest.raises(ValueError, match="split"):
        ds.load_demo("test")


# -- issue 9: damaged files, silent skips, strict mode ---------------------------------------
def test_truncated_gz_names_file_and_line(tmp_path):
    from ttp_diag.exceptions import CorruptFileError

    recs = [_user(f"u{i}", 30, 5) for i in range(40)]
    p = _write_jsonl(tmp_path / "users.jsonl.gz", recs, gz=True)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match=r"users\.jsonl\.gz.*truncated.*after line \d+"):
        load_jsonl_users(p)


def test_plain_text_named_gz_and_binary_garbage(tmp_path):
    from ttp_diag.exceptions import InputFileError

    plain = _write_jsonl(tmp_path / "users.jsonl.gz", [_user("u1", 5, 1)])  # not compressed
    with pytest.raises(InputFileError, match=r"users\.jsonl\.gz.*not gzip-compressed.*rename"):
        load_jsonl_users(plain)
    garbage = tmp_path / "users.jsonl"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"no usable record.*users\.jsonl line 1"):
        load_jsonl_users(garbage)
    with pytest.raises(DataError, match=r"users\.jsonl line 1: (binary|not UTF-8)"):
        load_jsonl_users(garbage, strict=True)
    gz_garbage = tmp_path / "g.jsonl.gz"
    with gzip.open(gz_garbage, "wb") as fh:
        fh.write(b"\xff\xfe\x00\x01garbage\n" * 3)
    with pytest.raises(DataError, match=r"g\.jsonl\.gz line 1"):
        load_jsonl_users(gz_garbage)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputFileError, match="empty"):
        load_jsonl_users(tmp_path / "empty.jsonl")
    with pytest.raises(InputFileError, match="does not exist"):
        load_jsonl_users(tmp_path / "missing.jsonl")


def test_empty_user_is_a_counted_skip(tmp_path):
    recs = [_user("u1", 5, 1), {"user_id": "ghost", "profile": [], "queries": []}]
    s = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", recs)).attrs["summary"]
    assert s.n_users == 1
    assert s.skipped["user has no items (empty profile and no queries)"] == 1
    assert any("ghost" in m for m in s.examples)
    with pytest.raises(DataError, match="'ghost'.*no items"):
        load_jsonl_users(tmp_path / "u.jsonl", strict=True)
    # a user all of whose items are skipped is counted too
    bad = _user("u3", 2, 0)
    for it in bad["profile"]:
        it["title"] = ""
    s = load_jsonl_users(_write_jsonl(tmp_path / "v.jsonl", [_user("u1", 5, 1), bad]))
    assert s.attrs["summary"].skipped["user has none of its 2 items left (each skipped, see above)"]


def test_object_in_text_field_is_never_gold_text(tmp_path):
    u = _user("u1", 5, 2)
    u["profile"][1]["title"] = {"a": 1}
    u["queries"][0]["output"] = ["x"]
    items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", [u]))
    assert not items["output"].str.contains("{'a'|\\['x'\\]", regex=True).any()
    s = items.attrs["summary"]
    assert s.skipped["field 'title' is a JSON object, not text"] == 1
    assert s.skipped["field 'output' is a JSON array, not text"] == 1
    assert len(items) == 5
    with pytest.raises(DataError, match=r"'u1_p1'.*field 'title' is a JSON object.*\{\"a\": 1\}"):
        load_jsonl_users(tmp_path / "u.jsonl", strict=True)
    # numbers are text (ids, ratings), booleans are not
    u = _user("u2", 5, 1)
    u["profile"][0]["id"] = 17
    u["profile"][1]["text"] = True
    items = load_jsonl_users(_write_jsonl(tmp_path / "w.jsonl", [u]))
    assert "17" in set(items["item_id"]) and len(items) == 5


def test_bad_date_is_a_named_skip_not_the_oldest_item(tmp_path):
    u = _user("u1", 6, 1)
    u["profile"][4]["date"] = "not a date"
    u["profile"][5]["date"] = "2020-13-45"
    items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", [u]))
    assert list(items["item_id"]) == ["u1_p0", "u1_p1", "u1_p2", "u1_p3", "u1_q0"]
    s = items.attrs["summary"]
    assert s.skipped["unparseable date"] == 2
    assert any("'u1_p4'" in m and "'not a date'" in m for m in s.examples)
    with pytest.raises(DataError, match=r"'u1_p4'.*unparseable date 'not a date'.*ISO 8601"):
        load_jsonl_users(tmp_path / "u.jsonl", strict=True)
    # other real-world formats still parse and sort by time
    u = _user("u2", 3, 0)
    u["profile"][0]["date"] = "March 5, 2020"
    u["profile"][1]["date"] = "2020-01-01T10:00:00Z"
    u["profile"][2]["date"] = "2019-12-31"
    items = load_jsonl_users(_write_jsonl(tmp_path / "v.jsonl", [u]))
    assert list(items["item_id"]) == ["u2_p2", "u2_p1", "u2_p0"]


def test_skips_are_reported_first_few_then_a_count(tmp_path, caplog):
    recs = [_user("u1", 5, 1)] + ["{bad"] * 9 + [7, _user("u1", 5, 1)]
    with caplog.at_level("WARNING", logger="ttp_diag.gen.data"):
        items = load_jsonl_users(_write_jsonl(tmp_path / "u.jsonl", recs))
    s = items.attrs["summary"]
    text = s.format(max_examples=3)
    assert text.splitlines()[0].endswith(
        "skipped 9 x bad JSON, 1 x duplicate user_id 'u1', 1 x record is a JSON int, not an object"
    )
    assert "u.jsonl line 2: bad JSON" in text and "... and 8 more skipped" in text
    assert "u.jsonl line 2: bad JSON" in caplog.text and "11 x" not in caplog.text
    d = s.to_dict()
    assert d["n_skipped"] == 11 and d["skipped"]["bad JSON"] == 9
    # strict mode: the first skip is an error naming the record
    with pytest.raises(DataError, match=r"u\.jsonl line 2: bad JSON.*strict=False"):
        load_jsonl_users(tmp_path / "u.jsonl", strict=True)


def test_cli_run_bad_data_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    from ttp_diag.cli import main

    plain = _write_jsonl(tmp_path / "users.jsonl.gz", [_user("u1", 5, 1)])
    rc = main(["run", "--data", str(plain), "--backend", "tiny", "--run-dir",
               str(tmp_path / "r"), "--until", "data", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 5 and "users.jsonl.gz" in err and "not gzip-compressed" in err
    assert "Traceback" not in err
