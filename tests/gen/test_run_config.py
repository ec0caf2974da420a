"""RunConfig: one dataclass end to end; stage map and CLI flags from field metadata."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from ttp_diag.exceptions import ConfigError
from ttp_diag.gen import run_config as RC
from ttp_diag.gen.run_config import RunConfig, cli_fields, parse_shard, stage_of


def test_every_field_declares_its_stage():
    stages = {"data", "prompts", "candidates", "labels", "rms", "scores", "runtime"}
    for f in dataclasses.fields(RunConfig):
        assert f.metadata.get("stage") in stages, f.name


def test_cli_flags_are_derived_from_the_fields():
    from ttp_diag.cli.run import build_config, register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    sub = ap._subparsers._group_actions[0].choices["run"]
    flags = {s for a in sub._actions for s in a.option_strings}
    for f in cli_fields():
        assert f.metadata["flag"] in flags, f.name
    args = ap.parse_args(["run", "--run-dir", "r", "--data", "u.jsonl", "--n", "7", "--strict",
                          "--rm-kinds", "global, prob", "--shard", "1/3", "--gen-mode",
                          "batched", "--temperature", "0.5", "--tensor-parallel-size", "2"])
    cfg = build_config(args)
    assert (cfg.n, cfg.strict, cfg.rm_kinds, cfg.shard) == (7, True, ["global", "prob"], "1/3")
    assert cfg.gen_mode == "batched" and cfg.temperature == 0.5
    assert cfg.backend_kwargs == {"tensor_parallel_size": 2}
    assert cfg.allow_partial is False  # store_true flags left unset keep the default


def test_the_pipeline_reads_attributes_not_a_dict():
    for name in ("pipeline.py", "stages.py"):
        src = (Path(RC.__file__).parent / name).read_text()
        assert not re.search(r'\bc\["', src) and ".resolved()" not in src, name


def test_resolve_returns_a_runconfig_with_task_defaults():
    c = RunConfig(task="longlamp_abstract", data_path="x").resolve()
    assert isinstance(c, RunConfig)
    assert (c.dedup, c.first_line, c.max_new_tokens, c.temperature) == (False, False, 256, 1.5)
    assert stage_of("temperature") == "candidates" and stage_of("device") == "runtime"
    assert stage_of("strict") == "data" and stage_of("rm_kinds") == "rms"
    # prompts per call: a result setting (chunks fix the seeds), resolved by device
    assert RunConfig(data_path="x").resolve().batch_size == 4
    assert RunConfig(data_path="x", device="cuda").resolve().batch_size == 64
    assert RunConfig(data_path="x", device="cuda", batch_size=8).resolve().batch_size == 8


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(policy="retrieval"), "policy must be one of"),
        (dict(backend="llamacpp"), "backend must be one of"),
        (dict(n=0), "n .samples per query. must be an integer >= 1"),
        (dict(n=2.5), "n .samples per query"),
        (dict(n=True), "n .samples per query"),
        (dict(batch_size=0), "batch_size"),
        (dict(rm_kinds=["global", "gpt4"]), r"unknown rm_kinds \['gpt4'\]"),
        (dict(rm_kinds=[]), "unknown rm_kinds"),
        (dict(gen_mode="fast"), "gen_mode must be one of"),
        (dict(shard="3/3"), "0 <= I < K"),
        (dict(shard="a/b"), "I/K"),
        (dict(shard="0/2", order="val_first"), "shard needs order='given'"),
    ],
)
def test_construction_names_the_bad_setting(kw, msg):
    with pytest.raises(ConfigError, match=msg):  # checked on construction, not only at run
        RunConfig(**{"data_path": "x", "backend": "tiny", **kw})
    ok = RunConfig(data_path="x", backend="tiny")
    with pytest.raises(ConfigError, match=msg):  # and on every changed copy
        dataclasses.replace(ok, **kw)


def test_validate_adds_what_a_run_needs():
    RunConfig()  # a partly filled config is fine until it runs
    with pytest.raises(ConfigError, match="data_path is required"):
        RunConfig().validate()
    with pytest.raises(ConfigError, match="needs model="):
        RunConfig(data_path="x", backend="transformers").validate()


def test_rm_kinds_accept_every_registry_name():
    names = RC.rm_kind_names()
    assert {"global", "det", "prob"} <= set(names)
    RunConfig(data_path="x", backend="tiny", rm_kinds=list(names)).validate()


def test_parse_shard():
    assert parse_shard(None) is None and parse_shard("0/1") == (0, 1)


def test_strict_reaches_the_data_loaders(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from ttp_diag.gen import data as D
    from ttp_diag.gen.pipeline import run_pipeline

    seen = {}

    def fake(path, task, *, strict=False):
        seen["strict"] = strict
        raise D.DataError("stop here")

    monkeypatch.setattr(D, "load_jsonl_users", fake)
    with pytest.raises(ValueError, match="stop here"):
        run_pipeline(RunConfig(data_path=str(tmp_path / "u.jsonl"), backend="tiny",
                               strict=True), tmp_path / "run", until="data")
    assert seen == {"strict": True}
