"""ttp_diag.io: one clear error per bad file, checksummed Parquet, atomic files and folders."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.exceptions import CorruptFileError, InputFileError, TtpDiagError
from ttp_diag.io import (
    atomic_dir,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    read_json,
    read_table,
    remove_temp_files,
    write_table,
)


@pytest.fixture(scope="module")
def base():
    return td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0)


# -- reading: one error naming the file and the fix ------------------------------------------
def _bad_files(tmp, base):
    """(description, path, words the message must contain) for each bad input of issue 9."""
    semi = tmp / "semi.csv"
    base.to_csv(semi, sep=";", index=False)
    empty = tmp / "empty.csv"
    empty.write_bytes(b"")
    empty_dir = tmp / "x.parquet"
    empty_dir.mkdir()
    latin = tmp / "latin.csv"
    latin.write_bytes(base.head(3).assign(user_id="Jos\xe9").to_csv(index=False).encode("latin-1"))
    pq_as_csv = tmp / "really_parquet.csv"
    base.to_parquet(pq_as_csv)
    csv_as_pq = tmp / "really_csv.parquet"
    base.to_csv(csv_as_pq, index=False)
    dup = tmp / "dup.csv"
    dup.write_text("user_id,query_id,cand_id,reward,reward\nu,q,0,0.1,0.2\n")
    header_only = tmp / "header.csv"
    header_only.write_text("user_id,query_id,cand_id,reward\n")
    binary = tmp / "garbage.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    unknown = tmp / "table.xlsx"
    unknown.write_bytes(b"PK\x03\x04")
    truncated = tmp / "trunc.parquet"
    base.to_parquet(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    return [
        ("semicolon CSV", semi, ["';'-separated", "sep=';'"]),
        ("0-byte CSV", empty, ["0 bytes", "write it again"]),
        ("empty dir named .parquet", empty_dir, ["empty folder", "write the table"]),
        ("Latin-1 CSV", latin, ["not utf-8", "UTF-8", "line 2"]),
        ("Parquet named .csv", pq_as_csv, ["Parquet bytes", "really_parquet.parquet"]),
        ("CSV named .parquet", csv_as_pq, ["CSV text", "rename it to .csv"]),
        ("duplicated column", dup, ["duplicated column", "'reward'"]),
        ("header only", header_only, ["no rows"]),
        ("binary", binary, ["binary"]),
        ("unknown extension", unknown, ["'.xlsx'", ".parquet or .csv"]),
        ("truncated Parquet", truncated, ["truncated", "write it again"]),
        ("missing", tmp / "nope.parquet", ["does not exist"]),
    ]


def test_each_bad_file_gets_one_error_naming_file_and_fix(tmp_path, base):
    for desc, path, words in _bad_files(tmp_path, base):
        with pytest.raises(InputFileError) as info:
            read_table(path)
        msg = str(info.value)
        assert path.name in msg, (desc, msg)
        for w in words:
            assert w.lower() in msg.lower(), (desc, w, msg)
        assert isinstance(info.value, (TtpDiagError, ValueError))


def test_cli_reports_bad_files_in_one_line(tmp_path, base, capsys):
    from ttp_diag.cli import main

    for desc, path, _ in _bad_files(tmp_path, base):
        rc = main(["analyze", str(path), "--ns", "1,2"])
        err = capsys.readouterr().err
        assert rc in (5, 6), (desc, rc, err)
        assert err.startswith("ttp-diag: error: ") and err.count("\n") == 1, (desc, err)
        assert "Traceback" not in err and path.name in err, (desc, err)


def test_good_files_still_read(tmp_path, base):
    write_table(base, tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "a.parquet"), base)
    write_table(base, tmp_path / "a.csv")
    back = read_table(tmp_path / "a.csv")
    assert back.shape == base.shape and np.allclose(back["reward"], base["reward"])
    # options the error messages point to do work
    base.to_csv(tmp_path / "s.csv", sep=";", index=False)
    assert read_table(tmp_path / "s.csv", sep=";").shape == base.shape
    (tmp_path / "l.csv").write_bytes("user_id,reward\nJos\xe9,1\n".encode("latin-1"))
    assert read_table(tmp_path / "l.csv", encoding="latin-1")["user_id"][0] == "Jos\xe9"
    # a UTF-8 byte-order mark (Excel) is not part of the first column name
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfuser_id,reward\nu,1\n")
    assert list(read_table(tmp_path / "bom.csv").columns) == ["user_id", "reward"]
    # a partitioned Parquet folder reads as one table
    (tmp_path / "ds.parquet").mkdir()
    base.iloc[:10].to_parquet(tmp_path / "ds.parquet" / "part-0.parquet")
    assert len(read_table(tmp_path / "ds.parquet")) == 10


# -- checksums -----------------------------------------------------------------------------
def _corrupt(path, seed, n=200):
    """Overwrite ``n`` random bytes inside the data pages (not the magic/footer)."""
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    footer_len = int.from_bytes(raw[-8:-4], "little")
    hi = len(raw) - 8 - footer_len
    start = int(rng.integers(4, hi - n))
    raw[start : start + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))


def test_200_random_bytes_in_parquet_are_a_named_error(tmp_path):
    rng = np.random.default_rng(1)
    big = pd.DataFrame(
        {"query_id": np.repeat(np.arange(2000), 8).astype(str), "score": rng.normal(size=16000)}
    )
    silent = 0
    for seed in range(8):
        p = tmp_path / f"s{seed}.parquet"
        write_table(big, p)
        _corrupt(p, seed)
        with pytest.raises(CorruptFileError, match=f"s{seed}.parquet.*damaged"):
            read_table(p)
        # the same damage in a file without page checksums often reads silently
        q = tmp_path / f"plain{seed}.parquet"
        big.to_parquet(q, index=False)
        _corrupt(q, seed)
        with contextlib.suppress(CorruptFileError):
            silent += not read_table(q).equals(big)
    assert silent >= 1  # the checksum is what catches it


def test_cli_exits_nonzero_on_corrupted_table(tmp_path, base, capsys):
    from ttp_diag.cli import main

    p = tmp_path / "scores.parquet"
    write_table(pd.concat([base] * 50, ignore_index=True), p)
    _corrupt(p, 3)
    assert main(["analyze", str(p), "--ns", "1,2"]) == 6
    err = capsys.readouterr().err
    assert "scores.parquet" in err and "damaged" in err and "Traceback" not in err


def test_read_json_names_truncated_file(tmp_path):
    p = tmp_path / "run_summary.json"
    atomic_write_json(p, {"stages": {"data": {"users": 3}}})
    assert read_json(p)["stages"]["data"]["users"] == 3
    p.write_text(p.read_text()[:10])
    with pytest.raises(CorruptFileError, match="run_summary.json.*not valid JSON"):
        read_json(p)
    p.write_text("")
    with pytest.raises(CorruptFileError, match="empty"):
        read_json(p)


# -- atomic files --------------------------------------------------------------------------
def test_atomic_writes_leave_no_temp_and_keep_old_file_on_error(tmp_path):
    p = tmp_path / "out.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        atomic_write(p, lambda tmp: (Path(tmp).write_text("half"), (_ for _ in ()).throw(
            RuntimeError("boom"))))
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01" and (p.stat().st_mode & 0o777) == 0o644
    atomic_write_json(tmp_path / "c.json", {"a": np.float64(1.5)})
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": 1.5}
    df = pd.DataFrame({"a": [1, 2]})
    df.attrs["x"] = object()
    atomic_write_parquet(df, tmp_path / "d.parquet")
    assert read_table(tmp_path / "d.parquet").equals(df)
    assert sorted(os.listdir(tmp_path)) == ["c.json", "d.parquet", "out.txt"]


def test_atomic_write_does_not_follow_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    # the old helpers used predictable names like ".out.txt.tmp"; plant links at them
    for name in (".out.txt.tmp", "out.txt.tmp", ".out.txt.tmp.tmp"):
        os.symlink(victim, tmp_path / name)
    atomic_write_text(tmp_path / "out.txt", "new")
    assert victim.read_text() == "keep" and (tmp_path / "out.txt").read_text() == "new"


def test_atomic_write_refuses_a_folder(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputFileError, match="is a folder"):
        atomic_write_text(tmp_path / "d", "x")


# -- atomic folders ------------------------------------------------------------------------
def _save(target, k):
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text(json.dumps({"writer": k}))
        (tmp / "weights.bin").write_bytes(k.to_bytes(4, "little") * 5000)


def test_concurrent_folder_saves_never_fail_or_mix(tmp_path):
    target = tmp_path / "rm" / "global"
    errors, seen, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                w = json.loads((target / "config.json").read_text())["writer"]
                seen.append(w)
            except FileNotFoundError:
                pass  # before the first save
            except Exception as exc:  # pragma: no cover - the failure being tested
                errors.append(exc)

    _save(target, 0)
    t = threading.Thread(target=reader)
    t.start()
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(_save, target, k) for k in range(1, 201)]
        for f in futures:
            try:
                f.result()
            except Exception as exc:
                errors.append(exc)
    stop.set()
    t.join()
    assert errors == []
    w = json.loads((target / "config.json").read_text())["writer"]
    assert (target / "weights.bin").read_bytes() == w.to_bytes(4, "little") * 5000
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "weights.bin"]
    assert os.listdir(target.parent) == ["global"]  # no temporary or old folder left
    assert seen  # the reader did read while the writers ran


def test_atomic_dir_error_leaves_old_folder(tmp_path):
    target = tmp_path / "m"
    _save(target, 1)
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{half")
        raise RuntimeError("killed mid-save")
    assert json.loads((target / "config.json").read_text()) == {"writer": 1}
    assert os.listdir(tmp_path) == ["m"]
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputFileError, match="is a file"), atomic_dir(tmp_path / "f"):
        pass


def test_remove_temp_files_after_a_kill(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    # a writer killed between mkstemp and rename leaves its temporary file behind
    code = (
        "import sys, time; from ttp_diag.io import atomic_write\n"
        "atomic_write(sys.argv[1], lambda p: (open(p, 'w').write('half'), time.sleep(60)))\n"
    )
    target = tmp_path / "sub" / "scores.parquet"
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)])
    for _ in range(300):
        if list((tmp_path / "sub").glob(".*.tmp")) if (tmp_path / "sub").exists() else []:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list((tmp_path / "sub").glob(".*.tmp"))
    assert len(left) == 1 and not target.exists()
    keep = tmp_path / "sub" / "keep.tmp"  # not one of ours: no leading dot
    keep.write_text("x")
    (tmp_path / ".m.abc.tmp").mkdir()  # an orphaned atomic_dir
    removed = {p.name for p in remove_temp_files(tmp_path)}
    assert removed == {left[0].name, ".m.abc.tmp"}
    assert keep.exists() and not left[0].exists()


def test_atomic_dir_replace_false_keeps_the_folder_already_there(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target, replace=False) as tmp:
        (tmp / "f").write_text("first")
    # another writer finishes while this one is building: its folder is kept, ours discarded
    with atomic_dir(target, replace=False) as tmp:
        (tmp / "f").write_text("second")
    assert (target / "f").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left
    with atomic_dir(target) as tmp:  # the default replaces
        (tmp / "f").write_text("third")
    assert (target / "f").read_text() == "third"
    assert remove_temp_files(tmp_path) == []
