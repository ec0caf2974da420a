"""Issue 17, nothing silent (second pass), generation side: run settings refused at the
boundary (items 7, 12), stale results after an input changed (8), a users file with a
byte-order mark and CRLF line ends (15), stale temporaries cleaned on resume (16).

Only the ``data`` stage runs here (no model is loaded), so these tests are fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")

from ttp_diag.cli import main  # noqa: E402
from ttp_diag.exceptions import ConfigError, RunFolderError  # noqa: E402
from ttp_diag.gen.pipeline import RunConfig, run_pipeline  # noqa: E402


def _users(path: Path, n_users: int = 3, n_items: int = 8, tag: str = "Headline") -> Path:
    """A small JSONL users file (HuffPost format); ``tag`` is in every gold headline."""
    lines = []
    for u in range(n_users):
        prof = [{"id": f"u{u}_p{i}", "text": f"story {i} of author {u}",
                 "title": f"{tag} {u}-{i}", "date": f"2021-01-{i + 1:02d}"}
                for i in range(n_items)]
        lines.append(json.dumps({"user_id": f"u{u}", "profile": prof}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cfg(data: Path, **kw) -> RunConfig:
    base = dict(task="lamp4", data_path=str(data), backend="tiny", n=2, top_k_users=3,
                max_samples_per_user=8, min_items=5, policy="persona", progress=False)
    base.update(kw)
    return RunConfig(**base)


# -- 7, 12: run settings ---------------------------------------------------------------------
@pytest.mark.parametrize("flags, match", [
    (["--time-budget", "nan"], r"candidate_time_budget_s \(--time-budget\) must be a number of "
                               r"seconds .* in \[0, inf\]; got nan"),
    (["--time-budget", "-5"], r"--time-budget\) must be a number of seconds .* got -5"),
    (["--time-budget", "inf"], r"--time-budget\) must be"),
    (["--users", "0"], r"top_k_users \(--users\) must be a number of users >= 1; got 0"),
    (["--seed", "-1"], r"seed \(--seed\) must be a seed >= 0; got -1"),
    (["--threads", "0"], r"num_threads \(--threads\) must be a number of threads >= 1"),
    (["--max-samples", "0"], r"--max-samples\) must be"),
    (["--val-fraction", "1.5"], r"val_fraction \(--val-fraction\) must be a share .* \(0, 1\)"),
    (["--top-p", "0"], r"top_p \(--top-p\) must be"),
    (["--temperature", "inf"], r"temperature \(--temperature\) must be"),
    (["--rm-data-pct", "nan"], r"rm_data_pct must be a percent in \(0, 100\]"),
])
def test_07_12_run_settings_refused_at_the_boundary(tmp_path, capsys, flags, match):
    data = _users(tmp_path / "users.jsonl")
    code = main(["run", "--data", str(data), "--backend", "tiny", "--run-dir",
                 str(tmp_path / "run"), "--until", "data", "--no-progress", *flags])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code, err
    assert err.count("\n") == 1 and re.search(match, err), err
    assert not (tmp_path / "run").exists()  # refused before anything is written


# -- 8: stale results after an input changed -----------------------------------------------------
def test_08_changed_users_file_is_refused_naming_the_stage(tmp_path):
    data = _users(tmp_path / "users.jsonl")
    run = tmp_path / "run"
    run_pipeline(_cfg(data), run, until="data")
    rec = json.loads((run / "inputs.json").read_text())
    assert rec["data_path"]["stage"] == "data" and len(rec["data_path"]["sha256"]) == 64
    old = pd.read_parquet(run / "examples.parquet")
    assert old["output"].str.contains("Headline").all()
    # the same command on the same file resumes (nothing recomputed)
    mtime = (run / "examples.parquet").stat().st_mtime_ns
    run_pipeline(_cfg(data), run, until="data")
    assert (run / "examples.parquet").stat().st_mtime_ns == mtime

    _users(data, tag="Changed")  # every gold headline replaced
    with pytest.raises(RunFolderError, match=r"input changed .*data_path .*users.jsonl "
                                             r"\(sha256 \w{12} -> \w{12}\) feeds stage 'data'.*"
                                             r"--refresh"):
        run_pipeline(_cfg(data), run, until="data")
    # untouched by the refusal
    assert (run / "examples.parquet").stat().st_mtime_ns == mtime

    out = run_pipeline(_cfg(data), run, until="data", refresh=True)
    new = pd.read_parquet(run / "examples.parquet")
    assert new["output"].str.contains("Changed").all()
    assert out["outputs"]["examples"]["output"].str.contains("Changed").all()
    stale = list(run.glob("stale-*"))
    assert len(stale) == 1 and (stale[0] / "examples.parquet").is_file()
    # recorded again: the next plain run resumes
    run_pipeline(_cfg(data), run, until="data")


def test_08_cli_refresh_flag(tmp_path, capsys):
    data = _users(tmp_path / "users.jsonl")
    argv = ["run", "--data", str(data), "--backend", "tiny", "--policy", "persona",
            "--run-dir", str(tmp_path / "run"), "--until", "data", "--no-progress",
            "--users", "3", "--max-samples", "8"]
    assert main(argv) == 0
    _users(data, tag="Changed")
    capsys.readouterr()
    assert main(argv) == RunFolderError.exit_code
    err = capsys.readouterr().err
    assert "feeds stage 'data'" in err and "--refresh" in err and err.count("\n") == 1
    assert main([*argv, "--refresh"]) == 0
    ex = pd.read_parquet(tmp_path / "run" / "examples.parquet")
    assert ex["output"].str.contains("Changed").all()


def test_08_changed_model_folder_invalidates_from_its_stage(tmp_path):
    """A reward-model backbone folder feeds 'rms': a changed file in it is refused only once
    'rms' has results, and --refresh moves rm/ and scores.parquet aside, not the earlier
    stages."""
    from ttp_diag.gen.run_folder import check_inputs

    run = tmp_path / "run"
    run.mkdir()
    bb = tmp_path / "backbone"
    bb.mkdir()
    (bb / "weights.bin").write_bytes(b"\x00" * 64)
    started = {"data", "prompts", "candidates", "labels"}
    inputs = {"rm_backbone": (str(bb), "rms")}
    assert check_inputs(run, inputs, started.__contains__) == []
    (bb / "weights.bin").write_bytes(b"\x01" * 64)
    # 'rms' has not started: a new backbone is fine, and is recorded
    assert check_inputs(run, inputs, started.__contains__) == []
    (run / "rm").mkdir()
    (run / "scores.parquet").write_bytes(b"x")
    (run / "labeled.parquet").write_bytes(b"x")
    started |= {"rms", "scores"}
    (bb / "extra.json").write_text("{}")  # a new file in the folder is a change too
    with pytest.raises(RunFolderError, match=r"rm_backbone .*feeds stage 'rms'.*rms, scores"):
        check_inputs(run, inputs, started.__contains__)
    assert check_inputs(run, inputs, started.__contains__, refresh=True) == ["rms", "scores"]
    assert not (run / "rm").exists() and not (run / "scores.parquet").exists()
    assert (run / "labeled.parquet").exists()


def test_08_fingerprint_reuses_checksum_only_for_unchanged_files(tmp_path):
    from ttp_diag.gen.run_folder import fingerprint

    p = tmp_path / "f.txt"
    p.write_text("a")
    fp = fingerprint(p)
    assert fingerprint(p, fp)["sha256"] == fp["sha256"]
    p.write_text("b")  # same size; a new mtime makes it re-read
    import hashlib

    assert fingerprint(p, fp)["sha256"] == hashlib.sha256(b"b").hexdigest()


# -- 15: byte-order mark and CRLF ----------------------------------------------------------------
def test_15_bom_and_crlf_users_file_keeps_every_user(tmp_path):
    from ttp_diag.gen import data as D

    plain = _users(tmp_path / "plain.jsonl")
    text = plain.read_text(encoding="utf-8")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    a = D.load_jsonl_users(plain, "lamp4")
    b = D.load_jsonl_users(bom, "lamp4")
    assert sorted(b["user_id"].unique()) == ["u0", "u1", "u2"]
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


# -- 16: stale temporaries -----------------------------------------------------------------------
def test_16_stale_temporaries_removed_on_resume(tmp_path):
    data = _users(tmp_path / "users.jsonl")
    run = tmp_path / "run"
    run_pipeline(_cfg(data), run, until="data")
    # what a SIGKILL in the middle of atomic writes leaves behind
    (run / "rm").mkdir()
    (run / "rm" / ".global.tmp-k2j4x9").mkdir()
    (run / "rm" / ".global.tmp-k2j4x9" / "model.safetensors").write_bytes(b"half")
    (run / "rm" / "head.safetensors.ab12.tmp").write_bytes(b"half")
    (run / ".scores.parquet.zz9.tmp").write_bytes(b"half")
    (run / "candidates").mkdir()
    (run / "candidates" / ".q1.json.x7.tmp").write_bytes(b"half")
    # a shard's run folder inside: another process may be writing it, so it is left alone
    (run / "shard-1").mkdir()
    (run / "shard-1" / ".labeled.parquet.k1.tmp").write_bytes(b"in flight")
    run_pipeline(_cfg(data), run, until="data")
    left = [str(p.relative_to(run)) for p in run.rglob("*") if ".tmp" in p.name]
    assert left == ["shard-1/.labeled.parquet.k1.tmp"]
    assert (run / "examples.parquet").is_file() and (run / "rm").is_dir()


# -- sweep: the other generation subcommands check their flags before any work ------------------
@pytest.mark.parametrize("argv, match", [
    (["sweep", "--run-dir", "RUN", "--param", "rm_data_pct=50", "--out", "OUT",
      "--n-boot", "0"], r"--n-boot must be a whole number >= 1"),
    (["sweep", "--run-dir", "RUN", "--param", "rm_data_pct=50", "--out", "OUT",
      "--ci", "1.5"], r"--ci must be a confidence level"),
    (["sweep", "--run-dir", "RUN", "--param", "rm_data_pct=50", "--out", "OUT",
      "--threads", "0"], r"--threads must be a number of threads >= 1"),
    (["evaluate", "--run-dir", "RUN", "--n-boot", "3"], r"--n-boot=3 draws cannot give a 95%"),
    (["evaluate", "--run-dir", "RUN", "--seed", "-1"], r"--seed must be a non-negative"),
    (["evaluate", "--run-dir", "RUN", "--lambda-grid", "1,nan"], r"--lambda-grid must be a "
                                                                  r"reward weight"),
    (["evaluate", "--run-dir", "RUN", "--train-users", "0"], r"--train-users must be a share"),
    (["evaluate", "--run-dir", "RUN", "--top-k", "0"], r"--top-k must be a whole number >= 1"),
])
def test_gen_subcommands_check_flags_first(tmp_path, capsys, argv, match):
    argv = [a.replace("RUN", str(tmp_path / "run")).replace("OUT", str(tmp_path / "out"))
            for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code, err
    assert err.count("\n") == 1 and re.search(match, err), err
    assert not (tmp_path / "out").exists()
