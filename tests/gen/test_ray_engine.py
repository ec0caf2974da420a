"""The pipeline on Ray Data (``engine="ray"``): same answer, fault tolerance, resume without Ray.

One local Ray (2 CPUs) for the module, always shut down. Tiny backend and tiny reward models.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
ray = pytest.importorskip("ray")

from test_pipeline import _write_users  # noqa: E402  (tests/gen is on sys.path)

from ttp_diag._ray import RaySession  # noqa: E402
from ttp_diag.gen.candidates import CandidateGenerator, load_candidates  # noqa: E402
from ttp_diag.gen.pipeline import RunConfig, run_pipeline  # noqa: E402
from ttp_diag.gen.ray_engine import RayCandidateGenerator  # noqa: E402


@pytest.fixture(scope="module")
def ray_local(request):
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2)
    request.addfinalizer(ray.shutdown)
    return ray


def _cfg(data, backbone, **kw):
    base = dict(
        task="lamp4", data_path=str(data), backend="tiny", n=3, max_new_tokens=5,
        temperature=1.0, top_k_users=3, max_samples_per_user=5, min_items=5, batch_size=2,
        policy="persona", num_threads=1, rm_backbone=backbone, progress=False,
        rm_kinds=["global", "prob"],
        rm_settings={"epochs": 1, "batch_size": 16, "max_length": 48, "verbose": False},
    )
    base.update(kw)
    return RunConfig(**base)


def test_ray_run_with_two_workers_equals_the_single_process_run(tmp_path, tiny_backbone,
                                                                 ray_local):
    data = _write_users(tmp_path / "users.jsonl", n_users=3, n_items=7)
    local = run_pipeline(_cfg(data, tiny_backbone), tmp_path / "local")["outputs"]
    res = run_pipeline(_cfg(data, tiny_backbone, engine="ray", ray_workers=2), tmp_path / "ray")
    out = res["outputs"]
    cand = res["stages"]["candidates"]
    assert cand["backend"]["workers"] == 2 and cand["backend"]["engine"] == "ray"
    # which actor did which chunk depends on start-up timing; every one that did is logged
    assert 1 <= cand["last_session"]["ray_workers_used"] <= 2
    assert len(list((tmp_path / "ray" / "ray_workers").glob("*.json"))) >= 1
    # texts and labels row for row, exactly
    pd.testing.assert_frame_equal(out["candidates"], local["candidates"])
    pd.testing.assert_frame_equal(out["labeled"], local["labeled"])
    # (the tiny backend's random characters score 0; ROUGE on Ray on texts that overlap:)
    from ttp_diag.gen.labels import label_table
    from ttp_diag.gen.ray_engine import ray_rouge_labels

    words = pd.DataFrame({"text": ["the cat sat", "a dog", "cat", "", "sat on the mat"] * 3,
                          "gold": ["the cat sat on the mat"] * 15})
    want = label_table(words, n_jobs=1)["reward"].to_numpy()
    assert want[0] > 0.5 and want[3] == 0
    got = ray_rouge_labels(RaySession(workers=2), words)
    assert got.tolist() == want.tolist()
    # scores: the same models (saved, loaded by each actor); float32 rounding of batch-mates
    score_cols = [c for c in local["scores"].columns if c.startswith(("score_", "var_"))]
    assert score_cols == ["score_global", "score_prob", "var_prob"]
    assert list(out["scores"].columns) == list(local["scores"].columns)
    pd.testing.assert_frame_equal(out["scores"].drop(columns=score_cols),
                                  local["scores"].drop(columns=score_cols))
    pd.testing.assert_frame_equal(out["scores"][score_cols], local["scores"][score_cols],
                                  check_exact=False, rtol=1e-4, atol=1e-5)
    assert pd.read_parquet(tmp_path / "ray" / "scores.parquet").shape == local["scores"].shape

    # A Ray run folder resumes without Ray: drop three query files and the tables after them.
    folder = tmp_path / "resumed"
    shutil.copytree(tmp_path / "ray", folder)
    for name in ("candidates.parquet", "labeled.parquet", "scores.parquet"):
        (folder / name).unlink()
    shutil.rmtree(folder / "rm")
    qfiles = sorted(f for f in (folder / "candidates").glob("*.json")
                    if not f.name.startswith("_"))
    for f in qfiles[:3]:
        f.unlink()
    again = run_pipeline(_cfg(data, tiny_backbone, engine="local"), folder)
    assert again["stages"]["candidates"]["last_session"]["queries_generated"] == 3
    pd.testing.assert_frame_equal(again["outputs"]["candidates"], local["candidates"])
    pd.testing.assert_frame_equal(again["outputs"]["scores"], local["scores"])


def test_killed_ray_worker_loses_and_duplicates_no_rows(tmp_path, ray_local):
    """A run stopped by its budget, resumed on Ray with the only actor SIGKILLed after its first
    query file: Ray restarts it and retries its chunk; one worker ends with the single-process
    rows, none lost or doubled."""
    qids = [f"q{i:02d}" for i in range(14)]
    examples = pd.DataFrame({"query_id": qids, "user_id": [f"u{i % 3}" for i in range(14)],
                             "split": "val",
                             "prompt": [f"### Article: story {i}. ### Headline:" for i in
                                        range(14)]})
    sampling = dict(n=3, temperature=1.0, top_p=0.95, max_new_tokens=5, batch_size=1, seed=7,
                    dedup=True, progress=False)
    cfg = RunConfig(data_path="unused", backend="tiny", num_threads=1).resolve()
    from ttp_diag.gen.pipeline import build_backend

    want = CandidateGenerator(build_backend(cfg), **sampling).run(examples, tmp_path / "local")

    workers = tmp_path / "workers"
    killed: list[int] = []

    def kill_once(qid: str) -> None:
        if killed:
            return
        (pid_file,) = workers.glob("*.json")  # one actor so far
        pid = json.loads(pid_file.read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    session = RaySession(workers=1)  # joins the module's Ray
    # first a run stopped by its time budget (should_stop) after 3 queries: partial, resumable
    out = tmp_path / "ray"

    def n_files() -> int:
        return sum(1 for f in out.glob("*.json") if not f.name.startswith("_"))

    part = RayCandidateGenerator(cfg, session=session, **sampling)
    first = part.run(examples, out, should_stop=lambda: n_files() >= 3)
    assert part.stats_["complete"] is False and 3 <= first["query_id"].nunique() < len(qids)
    n_first = n_files()
    # then the resume on Ray, with its only actor killed after the first new query file
    gen = RayCandidateGenerator(cfg, session=session, worker_dir=workers, **sampling)
    got = gen.run(examples, out, callback=kill_once)
    assert killed, "the worker was never killed"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # that process is gone ...
    pids = {json.loads(f.read_text())["pid"] for f in workers.glob("*.json")}
    assert len(pids) == 2 and killed[0] in pids  # ... and a restarted actor finished the run
    pd.testing.assert_frame_equal(got, want)  # 0 rows lost, 0 duplicated, same texts
    assert not got.duplicated(["query_id", "cand_id"]).any()
    assert gen.stats_["queries_generated"] == len(qids) - n_first
    assert gen.stats_["complete"] is True
    again = load_candidates(tmp_path / "ray", examples)
    pd.testing.assert_frame_equal(again, want)


def test_ray_engine_errors_name_the_fix(monkeypatch):
    from ttp_diag._ray import check_address, import_ray
    from ttp_diag.exceptions import ConfigError, EngineError

    t0 = time.perf_counter()
    with pytest.raises(EngineError, match=r"'127.0.0.1:1' is unreachable.*ray start --head"):
        check_address("127.0.0.1:1", timeout_s=2)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(EngineError, match="not host:port"):
        check_address("my-head-node")
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if not installed
    with pytest.raises(EngineError, match=r"pip install 'ttp-diag\[ray\]'") as err:
        import_ray()
    assert isinstance(err.value, ConfigError) and err.value.exit_code == 7
    with pytest.raises(ValueError, match="ray_workers must be an integer >= 1"):
        RunConfig(data_path="x", backend="tiny", engine="ray", ray_workers=0).validate()
    with pytest.raises(ValueError, match="engine must be one of"):
        RunConfig(data_path="x", backend="tiny", engine="dask").validate()


def test_cli_refuses_an_unreachable_address_before_any_stage(tmp_path, capsys):
    from ttp_diag.cli import main

    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=6)
    code = main(["run", "--data", str(data), "--backend", "tiny", "--policy", "persona",
                 "--engine", "ray", "--address", "127.0.0.1:1", "--no-progress",
                 "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 7 and len(err.splitlines()) == 1
    assert "Ray address '127.0.0.1:1' is unreachable" in err and "ray start --head" in err
    assert not (tmp_path / "run").exists()  # nothing was written
