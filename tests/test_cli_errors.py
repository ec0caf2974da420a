"""The error contract: one base class, one line on the command line, one exit code per class."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ttp_diag as td
from ttp_diag import exceptions as E
from ttp_diag.cli import main

_CLASSES = [
    E.TtpDiagError,
    E.ScoreTableError,
    E.DataError,
    E.InputFileError,
    E.CorruptFileError,
    E.ConfigError,
    E.RunFolderError,
    E.NotFittedError,
    E.TimeBudgetExceeded,
]


def test_hierarchy_and_old_names():
    for cls in _CLASSES:
        assert issubclass(cls, E.TtpDiagError)
    # code written against the older ValueError contract keeps working
    for cls in (E.ScoreTableError, E.DataError, E.InputFileError, E.ConfigError, E.NotFittedError):
        assert issubclass(cls, ValueError)
    assert issubclass(E.NotFittedError, AttributeError)
    # one class each, wherever it is imported from
    from ttp_diag.gen.data import DataError
    from ttp_diag.table import ScoreTableError

    assert ScoreTableError is E.ScoreTableError is td.ScoreTableError
    assert DataError is E.DataError
    with pytest.raises(td.TtpDiagError, match="reward"):
        td.validate_score_table(td.simulate_score_table(n_users=2, seed=0).drop(columns="reward"))


def test_exit_codes_are_distinct_and_documented():
    codes = [cls.exit_code for cls in _CLASSES]
    assert len(set(codes)) == len(codes)
    assert not {0, 2, E.EXIT_OS_ERROR, E.EXIT_INTERRUPTED} & set(codes[1:])
    for cls in _CLASSES:  # the table in the module docstring lists every class with its code
        assert f"{cls.__name__:<24}{cls.exit_code:<6}" in E.__doc__, cls.__name__


@pytest.fixture
def raising(monkeypatch):
    """Make ``ttp-diag analyze`` raise a given exception."""
    import ttp_diag.cli.analyze as analyze

    def use(exc):
        def boom(args):
            raise exc

        parser_register = analyze.register

        def register(sub):
            parser_register(sub)
            sub.choices["analyze"].set_defaults(func=boom)

        monkeypatch.setattr(analyze, "register", register)

    return use


@pytest.mark.parametrize("cls", _CLASSES)
def test_cli_turns_each_package_error_into_one_line(cls, raising, capsys):
    raising(cls("column 'reward' is missing;\n  add it"))
    assert main(["analyze", "t.parquet"]) == cls.exit_code
    err = capsys.readouterr().err
    assert err == "ttp-diag: error: column 'reward' is missing; add it\n"


@pytest.mark.parametrize(
    "exc, code",
    [
        (ValueError("ci must be in (0, 1)"), 1),
        (FileNotFoundError(2, "No such file or directory", "x.parquet"), E.EXIT_OS_ERROR),
        (PermissionError(13, "Permission denied", "out/"), E.EXIT_OS_ERROR),
        (KeyboardInterrupt(), E.EXIT_INTERRUPTED),
    ],
)
def test_cli_plain_errors(exc, code, raising, capsys):
    raising(exc)
    assert main(["analyze", "t.parquet"]) == code
    err = capsys.readouterr().err
    assert err.startswith("ttp-diag: ") and err.count("\n") == 1 and "Traceback" not in err
    if isinstance(exc, OSError):
        assert type(exc).__name__ in err and exc.filename in err
        assert "check the" in err  # the OS names the path, the CLI adds what to do


def test_cli_output_folder_that_is_a_file(tmp_path, capsys):
    import ttp_diag as td

    table = tmp_path / "t.parquet"
    td.io.write_table(td.simulate_score_table(n_users=4, n_queries=3, seed=0), table)
    blocker = tmp_path / "out.txt"
    blocker.write_text("x")
    rc = main(["risk", str(table), "--out", str(blocker)])
    err = capsys.readouterr().err
    assert rc == E.InputFileError.exit_code and "out.txt" in err and "choose another path" in err
    assert err.count("\n") == 1


def test_bugs_keep_their_traceback(raising):
    raising(KeyError("bug"))
    with pytest.raises(KeyError):
        main(["analyze", "t.parquet"])


def test_traceback_on_request(raising, monkeypatch):
    raising(E.DataError("x"))
    monkeypatch.setenv("TTP_DIAG_TRACEBACK", "1")
    with pytest.raises(E.DataError):
        main(["analyze", "t.parquet"])


def test_python_dash_m(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ttp_diag", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("ttp-diag ")
    out = subprocess.run(
        [sys.executable, "-m", "ttp_diag", "analyze", str(tmp_path / "nope.parquet")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == E.InputFileError.exit_code
    assert out.stderr.startswith("ttp-diag: error: score table") and "nope.parquet" in out.stderr
    assert "Traceback" not in out.stderr
