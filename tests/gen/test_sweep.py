"""Reward-model sweeps: the data-% switch, sweep points equal plain runs, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
pytest.importorskip("transformers")
pytest.importorskip("peft")

from test_pipeline import _write_users  # noqa: E402  (tests/gen is on sys.path)

from ttp_diag.gen.pipeline import RunConfig, run_pipeline  # noqa: E402
from ttp_diag.gen.reward_models.tables import subsample_user_train  # noqa: E402
from ttp_diag.gen.sweep import parse_param, plan_sweep, run_sweep  # noqa: E402


def _config(data, backbone, **kw):
    base = dict(task="lamp4", data_path=str(data), backend="tiny", n=4, max_new_tokens=6,
                temperature=1.0, top_k_users=5, max_samples_per_user=10, min_items=5,
                retrieval_k=0, rm_backbone=backbone, rm_kinds=["prob"], progress=False,
                rm_settings={"epochs": 1, "batch_size": 16, "max_length": 48, "verbose": False})
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture(scope="module")
def parent(tmp_path_factory, tiny_backbone):
    d = tmp_path_factory.mktemp("sweep")
    data = _write_users(d / "users.jsonl", n_users=5)  # 5 users: bootstrap intervals exist
    cfg = _config(data, tiny_backbone)
    run_pipeline(cfg, d / "parent", until="labels")
    return d, data, cfg


@pytest.fixture(scope="module")
def rewarded(parent):
    """A copy of the parent whose labels vary (the tiny policy's texts all score 0)."""
    import shutil

    d, _, _ = parent
    shutil.copytree(d / "parent", d / "rewarded")
    lab = pd.read_parquet(d / "rewarded" / "labeled.parquet")
    lab["reward"] = np.random.default_rng(0).uniform(0, 1, len(lab)).round(3)
    lab.to_parquet(d / "rewarded" / "labeled.parquet", index=False)
    return d / "rewarded"


# -- the data-% switch ------------------------------------------------------------------
def _table(n_users=4, n_queries=20, n_cands=3):
    rows = [{"user_id": f"u{u}", "query_id": f"u{u}-q{q}", "cand_id": c,
             "split": "train" if q < n_queries - 4 else "val"}
            for u in range(n_users) for q in range(n_queries) for c in range(n_cands)]
    return pd.DataFrame(rows)


def _kept(t):
    return set(t.loc[t["split"] == "train", "query_id"])


def test_data_pct_is_deterministic_nested_and_keeps_whole_queries():
    t = _table()
    a = subsample_user_train(t, 25, seed=3)
    # the same rows again, and from a shuffled table (the order of rows does not matter)
    assert _kept(subsample_user_train(t, 25, seed=3)) == _kept(a)
    shuffled = t.sample(frac=1.0, random_state=0)
    assert _kept(subsample_user_train(shuffled, 25, seed=3)) == _kept(a)
    # ceil(25% of 16) = 4 train queries per user, each with all 3 candidates; val untouched
    tr = a[a["split"] == "train"]
    assert tr.groupby("user_id")["query_id"].nunique().tolist() == [4, 4, 4, 4]
    assert (tr.groupby("query_id").size() == 3).all()
    assert a[a["split"] == "val"].equals(t[t["split"] == "val"])
    # nested: 10% (2 queries) inside 50% (8) inside 100% (all 16)
    k10, k50 = _kept(subsample_user_train(t, 10, seed=3)), _kept(subsample_user_train(t, 50,
                                                                                       seed=3))
    assert len(k10) == 4 * 2 and len(k50) == 4 * 8 and k10 < k50 < _kept(t)
    assert subsample_user_train(t, 100, seed=3) is t
    # another seed draws other queries
    assert _kept(subsample_user_train(t, 25, seed=4)) != _kept(a)


@pytest.mark.parametrize("pct", [0, -5, 100.5, 250])
def test_data_pct_outside_0_100_is_refused(pct):
    with pytest.raises(ValueError, match=r"\(0, 100\].*got"):
        subsample_user_train(_table(), pct)
    with pytest.raises(ValueError, match=r"rm_data_pct must be a percent in \(0, 100\]"):
        RunConfig(data_path="x", backend="tiny", rm_data_pct=pct).validate()
    with pytest.raises(ValueError, match=r"data_pct.*outside \(0, 100\]"):
        parse_param(f"data_pct=50,{pct}")


def test_data_pct_trains_on_the_subset_and_is_a_flag(parent, tiny_backbone, tmp_path):
    _, data, _ = parent
    out = run_pipeline(_config(data, tiny_backbone, rm_data_pct=50), tmp_path / "half")
    summ = json.loads((tmp_path / "half" / "run_summary.json").read_text())
    labeled = out["outputs"]["labeled"]
    expect = subsample_user_train(labeled, 50, seed=0)
    assert summ["stages"]["rms"]["train_rows"] == int((expect["split"] == "train").sum())
    assert summ["stages"]["rms"]["train_rows"] < int((labeled["split"] == "train").sum())
    assert len(out["outputs"]["scores"]) == len(labeled)  # every row is still scored
    from ttp_diag.gen.run_config import stage_of

    assert stage_of("rm_data_pct") == "rms"
    with pytest.raises(ValueError, match="other settings.*rm_data_pct"):
        run_pipeline(_config(data, tiny_backbone, rm_data_pct=25), tmp_path / "half")

    import argparse

    from ttp_diag.cli.run import build_config, register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    args = ap.parse_args(["run", "--run-dir", "r", "--data", "u", "--rm-data-pct", "25"])
    assert build_config(args).rm_data_pct == 25.0


# -- sweeps -----------------------------------------------------------------------------
def test_a_sweep_point_equals_a_plain_run(parent, tiny_backbone, tmp_path):
    d, data, cfg = parent
    res = run_sweep(d / "parent", tmp_path / "sw", ["lora_rank=4", "data_pct=50"],
                    log=lambda s: None)
    assert [r["status"] for r in res] == ["done", "done"]
    for name, kw in (("lora_rank=4", {"rm_settings": {**cfg.rm_settings, "lora_r": 4}}),
                     ("data_pct=50", {"rm_data_pct": 50.0})):
        plain = run_pipeline(_config(data, tiny_backbone, **kw), tmp_path / f"plain-{name}")
        got = pd.read_parquet(tmp_path / "sw" / name / "scores.parquet")
        pd.testing.assert_frame_equal(got, plain["outputs"]["scores"])
    # the earlier stages are the parent's files (linked), not regenerated
    for f in ("candidates.parquet", "labeled.parquet", "prompts.parquet"):
        a, b = d / "parent" / f, tmp_path / "sw" / "lora_rank=4" / f
        assert a.read_bytes() == b.read_bytes()
    man = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [(p["dir"], p["is_default"]) for p in man["points"]] == [("lora_rank=4", False),
                                                                   ("data_pct=50", False)]


def test_finished_points_are_skipped_and_an_unfinished_one_runs(rewarded, tmp_path):
    sw = tmp_path / "sw"
    lines: list[str] = []
    run_sweep(rewarded, sw, ["pooling=mean,last"], log=lines.append)
    assert lines[0].startswith("[1/2] pooling=mean (full model): training prob")
    mtime = (sw / "pooling=mean" / "scores.parquet").stat().st_mtime_ns
    (sw / "pooling=last" / "scores.parquet").unlink()  # as if stopped before scoring
    lines.clear()
    res = run_sweep(rewarded, sw, ["pooling=mean,last"], log=lines.append)
    assert [r["status"] for r in res] == ["skipped", "done"]
    assert lines[0] == "[1/2] pooling=mean (full model): finished before, skipped"
    assert (sw / "pooling=mean" / "scores.parquet").stat().st_mtime_ns == mtime
    assert not [p for p in sw.iterdir() if p.name.startswith(".")]  # no temp folder left

    from ttp_diag.analysis.sweeps import sweep_table

    tab = sweep_table(sw, n_boot=50)
    assert set(tab["value"]) == {"mean", "last"}
    assert tab.loc[tab["value"] == "mean", "is_default"].all()
    import ttp_diag as td

    sc = pd.read_parquet(sw / "pooling=last" / "scores.parquet")
    ref = td.BestOfN(ci=0.95, n_boot=50).fit(sc, ["score_prob"])
    mine = tab[(tab["value"] == "last") & (tab["rm"] == "score_prob")]
    np.testing.assert_allclose(mine["utility"], ref.curve("score_prob")["utility"], rtol=1e-12)
    assert mine["rho_eff"].iloc[0] == pytest.approx(ref.diagnostics_["score_prob"].rho_eff)


def test_loss_points_pick_the_reward_model_and_bad_input_is_named(parent):
    d, _, _ = parent
    pts = plan_sweep(d / "parent", ["loss=mse,nll+contrastive"])
    assert [(p.config.rm_kinds, p.config.rm_settings["contrastive"], p.is_default)
            for p in pts] == [(["det"], False, False), (["prob"], True, True)]
    with pytest.raises(ValueError, match="unknown sweep parameter"):
        parse_param("lora_rnak=4")
    with pytest.raises(ValueError, match=r"pooling: \['max'\] not allowed"):
        parse_param("pooling=mean,max")
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        parse_param("lora_rank")
    from ttp_diag.gen.run_folder import RunFolderError, RunLock

    (d / "busy").mkdir(exist_ok=True)
    with RunLock(d / "busy"), pytest.raises(RunFolderError, match="already locked"):
        run_sweep(d / "parent", d / "busy", ["lora_rank=4"], log=lambda s: None)
    with pytest.raises(FileNotFoundError, match="no labels yet"):
        (d / "empty").mkdir(exist_ok=True)
        (d / "empty" / "config.json").write_text("{}")
        plan_sweep(d / "empty", ["lora_rank=4"])


def test_cli_sweep_writes_the_results_table(rewarded, tmp_path, capsys):
    from ttp_diag.cli import main

    rc = main(["sweep", "--run-dir", str(rewarded), "--param", "head=mlp,linear",
               "--out", str(tmp_path / "sw"), "--n-boot", "50", "--no-progress"])
    assert rc == 0
    tab = pd.read_csv(tmp_path / "sw" / "sweep_results.csv")
    assert list(tab.columns[:5]) == ["param", "value", "is_default", "rm", "n"]
    assert set(tab["rm"]) == {"random", "oracle", "score_prob"}
    out = capsys.readouterr().out
    assert "head=linear" in out and "results:" in out
    rc = main(["sweep", "--run-dir", str(rewarded), "--param", "head=cnn",
               "--out", str(tmp_path / "sw")])
    assert rc != 0 and "not allowed" in capsys.readouterr().err


def test_the_full_model_point_reuses_the_parents_reward_model(parent, rewarded, tmp_path):
    _, _, cfg = parent
    scored = run_pipeline(cfg, rewarded)["outputs"]["scores"]  # the parent trains prob once
    res = run_sweep(rewarded, tmp_path / "sw", ["lora_rank=8,2"], log=lambda s: None)
    assert [r["status"] for r in res] == ["done", "done"]
    full, other = tmp_path / "sw" / "lora_rank=8", tmp_path / "sw" / "lora_rank=2"
    src = sorted((rewarded / "rm" / "prob").rglob("*.safetensors"))
    linked = sorted((full / "rm" / "prob").rglob("*.safetensors"))
    assert src and [f.stat().st_ino for f in linked] == [f.stat().st_ino for f in src]
    got = pd.read_parquet(full / "scores.parquet")
    np.testing.assert_array_equal(got["score_prob"], scored["score_prob"])
    # another setting trains its own model (new files), with other scores
    assert not set(f.stat().st_ino for f in (other / "rm" / "prob").rglob("*.safetensors")) & {
        f.stat().st_ino for f in src}
    assert not np.array_equal(pd.read_parquet(other / "scores.parquet")["score_prob"],
                              scored["score_prob"])


def test_lora_policy_scores_val_queries_with_the_runs_models_and_resumes(parent, rewarded,
                                                                          tmp_path):
    from ttp_diag.gen.lora_policy import lora_policy_run

    _, _, cfg = parent
    run_pipeline(cfg, rewarded)  # reward models trained (cached when another test did it)
    lines: list[str] = []
    t = lora_policy_run(rewarded, tmp_path / "lora", epochs=1, n=3, log=lines.append)
    val = pd.read_parquet(rewarded / "prompts.parquet").query("split == 'val'")
    assert set(t["query_id"]) == set(val["query_id"]) and (t["split"] == "val").all()
    assert {"reward", "score_prob", "var_prob", "text"} <= set(t.columns)
    assert t.groupby("query_id").size().max() <= 3
    from ttp_diag.gen.labels import label_table

    gold = t.merge(val[["query_id", "output"]], on="query_id")
    ref = label_table(gold, text_col="text", gold_col="output", out_col="r", n_jobs=1,
                      progress=False)["r"]
    np.testing.assert_allclose(t["reward"], ref)
    assert len(lines) == 5 and all("LoRA on" in s for s in lines)
    lines.clear()
    again = lora_policy_run(rewarded, tmp_path / "lora", epochs=1, n=3, log=lines.append)
    pd.testing.assert_frame_equal(again, t)
    assert all(s.endswith("finished before, skipped") for s in lines)
    with pytest.raises(ValueError, match="other settings"):
        lora_policy_run(rewarded, tmp_path / "lora", epochs=2, n=3, log=lines.append)


def test_cli_lora_policy_forwards_its_settings(monkeypatch, capsys):
    import ttp_diag.gen.lora_policy as lp
    from ttp_diag.cli import main

    seen = []

    def fake(run_dir, out, **kw):
        seen.append((run_dir, out, kw))
        return pd.DataFrame({"query_id": ["q1", "q1", "q2"]})

    monkeypatch.setattr(lp, "lora_policy_run", fake)
    assert main(["lora-policy", "runs/p", "runs/l", "--epochs", "3", "--n", "5"]) == 0
    assert seen == [("runs/p", "runs/l", dict(epochs=3, lr=0.0005, r=8, n=5, max_support=32))]
    assert "3 candidates of 2 queries" in capsys.readouterr().out
    # `python -m ttp_diag.gen.lora_policy` is the same command
    assert lp.main(["runs/p", "runs/l"]) == 0
    assert seen[-1] == ("runs/p", "runs/l", dict(epochs=2, lr=0.0005, r=8, n=None,
                                                  max_support=32))
