"""Issue 17, nothing silent (second pass): hostile and careless arguments of the analysis API
and the command line. Each numbered test is one item of the issue and failed before its fix;
``test_sweep_*`` run the same classes of argument over the whole public surface (the table of
cases, with before/after, is in ``docs/hostile-inputs.md``).

The rule: one clear package error naming the argument/value and the fix, a warning where the
result still means something, or a correct result.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ttp_diag as td
from ttp_diag.cli import main
from ttp_diag.exceptions import ConfigError, InputFileError


@pytest.fixture(scope="module")
def table():
    # 6 candidates per query: the largest pool is 6
    return td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0)


@pytest.fixture(scope="module")
def table_file(table, tmp_path_factory):
    p = tmp_path_factory.mktemp("t") / "t.parquet"
    table.to_parquet(p)
    return p


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- 1. N past the pool ------------------------------------------------------------------------
def test_01_n_past_the_pool_is_said_and_never_labelled_as_n(table):
    with pytest.warns(UserWarning, match=r"N = 50 exceeds the largest candidate pool \(6"):
        fit = td.BestOfN(ns=[1, 6, 50]).fit(table)
    # the oracle at N=50 is the oracle at N=6: the curve really is clipped
    orc = fit.curve("oracle")["utility"].to_numpy()
    assert orc[2] == orc[1]
    summ = fit.summary
    assert "capture_N50" not in summ.columns and "capture_N6" in summ.columns
    assert fit.capture_column == "capture_N6"
    assert any("N = 50" in n for n in summ.attrs["notes"])
    text = fit.summary_text()
    # the printed capture is gain-weighted over the grid (one definition, issue 20); the note
    # says which N were clipped and no label names N = 50 as if it were measured
    assert "note: N = 50" in text and "capture_N50" not in text
    d = fit.to_dict()
    assert d["n_effective"] == [1, 6, 6] and any("N = 50" in n for n in d["notes"])
    # the law is fitted and compared where the curve was measured (N = 6), not at g(50):
    # the same calibration as ns=[1, 6, 6] by hand, and the prediction flat past the pool
    hand = td.calibrate([1, 6, 6], orc, mu=float(fit.curve("random")["utility"].iloc[0]))
    assert fit.calibration_.c_sigma == pytest.approx(hand.c_sigma, rel=1e-12)
    pred = fit.predictions_.query("selector == 'score_prob'")["predicted"].to_numpy()
    assert pred[2] == pred[1]
    # within the pool nothing is said and the label is N itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = td.BestOfN(ns=[1, 2, 6]).fit(table)
    assert ok.capture_column == "capture_N6" and ok.notes == []


def test_01_cli_analyze_says_clipped_n(table_file, capsys):
    code, out, err = _cli(["analyze", table_file, "--ns", "1,50", "--pool", "clip"], capsys)
    assert code == 0
    assert "N used (pool)" in out and "note: N = 50 exceeds the largest candidate pool" in out
    assert "ttp-diag: warning: N = 50" in err and err.count("\n") == 1  # one line, no source


# -- 2. a falling oracle curve -----------------------------------------------------------------
def test_02_falling_oracle_curve_warns():
    with pytest.warns(UserWarning, match=r"oracle curve falls as N grows \(c\*sigma = -"):
        cal = td.calibrate([1, 2, 4, 8], [0.4, 0.3, 0.2, 0.1])
    assert cal.c_sigma < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        td.calibrate([1, 2, 4, 8], [0.1, 0.2, 0.3, 0.35])


# -- 3. n_to_close_gap arguments ---------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(share=0.5, rho_total=5.0), r"rho_total must be a correlation in \[-1, 1\]; got 5.0"),
    (dict(share=0.5, rho_total=float("nan")), r"rho_total must be a correlation .* got nan"),
    (dict(share=1.5, rho_total=0.5), r"share must be a fraction of the oracle gap in \(0, 1\]"),
    (dict(share=[], rho_total=0.5), r"share must be a fraction"),
    (dict(share=0.5, rho_total=0.5, n_ref=0), r"n_ref must be a reference candidate count >= 1"),
])
def test_03_n_to_close_gap_refuses(kw, match):
    with pytest.raises(ConfigError, match=match):
        td.n_to_close_gap(**kw)


def test_03_n_to_close_gap_still_answers():
    # hand computation: rho * sqrt(ln N) >= 0.5 * sqrt(ln 30) with rho = 0.5 -> N = 30
    assert td.n_to_close_gap(0.5, rho_total=0.5, n_ref=30) == 30.0
    assert td.n_to_close_gap(1.0, rho_total=1.0, n_ref=30) == 30.0
    assert math.isinf(td.n_to_close_gap(0.5, rho_total=-0.2))


# -- 4. a minimum number of bootstrap draws for an interval --------------------------------------
@pytest.mark.parametrize("call", [
    lambda t: td.diagnose(t, "score_prob", ci=0.9, n_boot=1),
    lambda t: td.bon_curve(t, "score_prob", [1, 2], ci=0.95, n_boot=19),
    lambda t: td.bon_curves(t, ["oracle"], [1, 2], ci=0.95, n_boot=5),
    lambda t: td.BestOfN(ns=[1, 2], ci=0.9, n_boot=3).fit(t),
    lambda t: td.compare_selectors(t, "score_prob", "score_det", [1, 2], ci=0.95, n_boot=2),
    lambda t: __import__("ttp_diag.bon").bon.bootstrap_user_ci(np.ones((8, 1)), ci=0.99,
                                                              n_boot=99),
])
def test_04_interval_needs_enough_draws(table, call):
    with pytest.raises(ConfigError, match=r"cannot give a \d+% interval: it needs at least \d+ "
                                          r"draws .* else less than one draw falls outside"):
        call(table)


def test_04_minimum_is_ceil_one_over_one_minus_ci(table):
    from ttp_diag._checks import min_boot_draws

    assert [min_boot_draws(c) for c in (0.5, 0.9, 0.95, 0.99, 0.999)] == [10, 10, 20, 100, 1000]
    d = td.diagnose(table, "score_prob", ci=0.9, n_boot=10)  # the minimum itself is fine
    lo, hi = d.intervals["beta"] if hasattr(d, "intervals") else d.summary.set_index(
        "quantity").loc["beta", ["ci_low", "ci_high"]]
    assert lo <= hi


def test_04_full_report_and_figures_need_enough_draws(table, tmp_path):
    from ttp_diag.full_report import full_report
    from ttp_diag.plots.gallery import write_all_figures

    with pytest.raises(ConfigError, match="needs at least 20 draws"):
        full_report(table, tmp_path / "r", n_boot=3)
    with pytest.raises(ConfigError, match="needs at least 20 draws"):
        write_all_figures(table, tmp_path / "f", n_boot=3)


# -- 5, 6. analyze --ns , and --n-boot 0 ---------------------------------------------------------
def test_05_empty_ns_is_refused(table_file, capsys):
    code, out, err = _cli(["analyze", table_file, "--ns", ","], capsys)
    assert code == ConfigError.exit_code and out == ""
    assert err.strip() == ("ttp-diag: error: --ns is empty (got ','); give candidate counts, "
                           "e.g. --ns 1,5,10.")


@pytest.mark.parametrize("flags, match", [
    (["--n-boot", "0"], r"--n-boot must be a whole number >= 1"),
    (["--n-boot", "-3"], r"--n-boot must be a whole number >= 1"),
    (["--n-boot", "5", "--ci", "0.95"], r"--n-boot=5 draws cannot give a 95% interval"),
    (["--ci", "95"], r"--ci must be a confidence level in \(0, 1\).*did you mean 0.95"),
    (["--ci", "nan"], r"--ci must be a confidence level"),
    (["--seed", "-1"], r"--seed must be a non-negative integer"),
])
def test_06_analyze_bootstrap_flags(table_file, capsys, flags, match):
    code, out, err = _cli(["analyze", table_file, "--ns", "1,2", *flags], capsys)
    assert code == ConfigError.exit_code, err
    assert err.count("\n") == 1 and __import__("re").search(match, err), err


# -- 9. duplicate score columns ------------------------------------------------------------------
def test_09_duplicate_scores_named(table, table_file, capsys):
    with pytest.raises(ConfigError, match=r"scores names 'score_det' twice"):
        td.BestOfN(ns=[1, 2]).fit(table, ["score_det", "score_det"])
    code, _, err = _cli(["analyze", table_file, "--scores", "score_det,score_det"], capsys)
    assert code == ConfigError.exit_code and "--scores names 'score_det' twice" in err
    code, _, err = _cli(["analyze", table_file, "--scores", ","], capsys)
    assert code == ConfigError.exit_code and "--scores is empty" in err


# -- 10. demo with too few draws -----------------------------------------------------------------
@pytest.mark.parametrize("n_boot", ["1", "2", "3"])
def test_10_demo_few_draws_is_a_clear_error(table_file, tmp_path, capsys, n_boot):
    code, _, err = _cli(["demo", "--table", table_file, "--out", tmp_path / "o",
                         "--n-boot", n_boot], capsys)
    assert code == ConfigError.exit_code
    assert "needs at least 20 draws" in err and "yerr" not in err
    assert not (tmp_path / "o").exists()


def test_10_bands_never_have_negative_error_bars(table, monkeypatch):
    # a percentile band need not contain the mean (few or skewed draws): it used to reach
    # matplotlib as a negative error bar ("'yerr' must not contain negative values")
    import matplotlib

    matplotlib.use("Agg")
    import ttp_diag.bon as bon
    from ttp_diag.plots.curves import plot_bands

    def above_the_mean(u, **kw):
        m = np.asarray(u, dtype=float).mean(axis=0)
        return m + 0.01, m + 0.02

    monkeypatch.setattr(bon, "bootstrap_user_ci", above_the_mean)
    fit = td.BestOfN(ns=[1, 2, 6]).fit(table)
    ax = plot_bands(fit, n_boot=20, seed=3)
    for container in ax.containers:  # error bars drawn, none of negative length
        for seg in container.lines[2][0].get_segments():
            assert seg[1][1] >= seg[0][1]


# -- 11. a pipe or a device as the table ---------------------------------------------------------
def test_11_table_from_a_pipe(table, tmp_path):
    csv = table.to_csv(index=False).encode()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-m", "ttp_diag", "analyze", "/dev/stdin", "--ns",
                          "1,2", "--json"], input=csv, capture_output=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    assert json.loads(res.stdout)["n_rows"] == int((table["split"] == "val").sum())
    res = subprocess.run([sys.executable, "-m", "ttp_diag", "analyze", "/dev/stdin"],
                         input=b"", capture_output=True, env=env, timeout=300)
    err = res.stderr.decode()
    assert res.returncode == InputFileError.exit_code and "nothing arrived on it" in err


def test_11_devices_are_named(tmp_path):
    with pytest.raises(InputFileError, match=r"'/dev/null' is a device, not a file"):
        td.io.read_table("/dev/null")
    fifo = tmp_path / "p.csv"
    os.mkfifo(fifo)
    import threading

    def feed():
        with open(fifo, "w") as fh:
            fh.write("user_id,query_id,cand_id,reward\nu,q,0,0.5\n")

    th = threading.Thread(target=feed)
    th.start()
    assert td.io.read_table(fifo)["reward"].tolist() == [0.5]
    th.join()


# -- 13. n_boot too large for memory -------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda t: td.diagnose(t, "score_prob", ci=0.95, n_boot=10**10),
    lambda t: td.bon_curve(t, "score_prob", [1, 2], ci=0.95, n_boot=10**10),
    lambda t: td.BestOfN(ns=[1, 2], ci=0.95, n_boot=10**10).fit(t),
    lambda t: td.compare_selectors(t, "score_prob", "score_det", [1, 2], n_boot=10**11),
    lambda t: td.diagnose(t, "score_prob", n_null=10**11),
])
def test_13_huge_n_boot_refused_before_allocating(table, call):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"need about [\d.]+ GiB of memory .* allowed"):
        call(table)
    assert time.perf_counter() - t0 < 30


def test_13_cli_huge_n_boot(table_file, capsys):
    code, _, err = _cli(["analyze", table_file, "--ns", "1,2", "--ci", "0.95", "--n-boot",
                         "100000000000"], capsys)
    assert code == ConfigError.exit_code and "GiB of memory" in err and err.count("\n") == 1


def test_13_memory_limit_is_configurable(monkeypatch):
    from ttp_diag._checks import check_boot_memory

    monkeypatch.setenv("TTP_DIAG_MAX_BOOT_GIB", "0.001")  # about 1 MiB
    assert check_boot_memory(1000, 100) == 1000  # 0.8 MB
    with pytest.raises(ConfigError, match="at most 1342"):
        check_boot_memory(2000, 100)


# -- 14. Ctrl-C ----------------------------------------------------------------------------------
def test_14_interrupt_is_one_line_and_130(monkeypatch, capsys):
    import ttp_diag.cli.analyze as analyze

    def boom(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze, "run", boom)
    code = main(["analyze", "x.csv"])
    err = capsys.readouterr().err
    assert code == 130 and err.count("\n") == 1 and err.startswith("ttp-diag: interrupted")


def test_14_swallowed_interrupt_still_exits_130(monkeypatch, capsys):
    """An interrupt raised inside a finaliser is printed as "Exception ignored" and lost
    by Python; the command must still stop with 130 and one line."""
    import gc

    import ttp_diag.cli.analyze as analyze

    class Finaliser:
        def __del__(self):
            raise KeyboardInterrupt

    def swallowed(args):
        Finaliser()
        gc.collect()
        return 0

    monkeypatch.setattr(analyze, "run", swallowed)
    code = main(["analyze", "x.csv"])
    err = capsys.readouterr().err
    assert code == 130 and "Exception ignored" not in err and err.count("\n") == 1
    # the handler is back to Python's default afterwards (in-process callers keep theirs)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_14_sigint_during_shutdown_is_not_a_traceback(table_file, tmp_path):
    """Ctrl-C after the command finished, while Python shuts down (an atexit handler here):
    it used to print "Exception ignored ... KeyboardInterrupt" or end with -2."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit, os, signal, time\n"
        "def _late():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.2)\n"
        "atexit.register(_late)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{site}{os.pathsep}{Path(__file__).resolve().parents[1]}"}
    res = subprocess.run([sys.executable, "-m", "ttp_diag", "analyze", str(table_file),
                          "--ns", "1,2", "--json"], capture_output=True, env=env, timeout=300)
    err = res.stderr.decode()
    assert res.returncode == 0, (res.returncode, err)
    assert "KeyboardInterrupt" not in err and "Exception ignored" not in err, err
    assert json.loads(res.stdout)["ns"] == [1, 2]  # the output is complete


def test_14_sigint_during_figures_leaves_complete_files(table_file, tmp_path):
    """SIGINT at a few moments of a real ``ttp-diag figures``: exit 130 with one line (or
    0 when it finished first), and every PNG on disk complete, no temporary left."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    seen = set()
    for i, delay in enumerate((0.5, 2.0, 5.0)):
        out = tmp_path / f"f{i}"
        proc = subprocess.Popen([sys.executable, "-m", "ttp_diag", "figures", str(table_file),
                                 "--out", str(out), "--n-boot", "20", "--shapes", "gaussian"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        # the command has started once it prints its first line (an interrupt while Python
        # still imports numpy and pandas is Python's own business)
        assert proc.stdout.readline().startswith(b"ttp-diag figures:")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        err = err.decode()
        seen.add(proc.returncode)
        assert proc.returncode in (0, 130), err
        if proc.returncode == 130:
            assert err.strip().splitlines()[-1].startswith("ttp-diag: interrupted"), err
            assert "Traceback" not in err and "Exception ignored" not in err, err
        if out.exists():
            assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
            for png in out.glob("*.png"):
                assert png.read_bytes()[-8:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"[-8:], png
    assert 130 in seen


# -- sweep: the same classes of argument across the public surface --------------------------------
_T = td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0)
_D = td.diagnose(_T, "score_prob")
_C = td.calibrate([1, 2, 4, 6], table=_T)

SWEEP = [
    # (id, call, expected error class or None for "a warning", message regex)
    ("BestOfN ns=[]", lambda: td.BestOfN(ns=[]).fit(_T), ConfigError, "ns is empty"),
    ("BestOfN ns=[0,2]", lambda: td.BestOfN(ns=[0, 2]).fit(_T), ConfigError,
     "ns value must be a candidate count N >= 1; got 0"),
    ("BestOfN ns=[2,1]", lambda: td.BestOfN(ns=[4, 1]).fit(_T), ConfigError, "increasing"),
    ("BestOfN ns=[1,1,2]", lambda: td.BestOfN(ns=[1, 1, 2]).fit(_T), ConfigError,
     "without repeats"),
    ("BestOfN ns=[1,nan]", lambda: td.BestOfN(ns=[1, float("nan")]).fit(_T), ConfigError,
     "got nan"),
    ("BestOfN ns='1,2'", lambda: td.BestOfN(ns="1,2").fit(_T), TypeError, "list of candidate"),
    ("BestOfN n_boot=0", lambda: td.BestOfN(ns=[1, 2], n_boot=0).fit(_T), ConfigError,
     "n_boot must be a whole number >= 1"),
    ("BestOfN n_boot=1.5", lambda: td.BestOfN(ns=[1, 2], n_boot=1.5).fit(_T), TypeError,
     "whole number"),
    ("BestOfN seed=-1", lambda: td.BestOfN(ns=[1, 2], seed=-1).fit(_T), ConfigError,
     "seed must be a non-negative"),
    ("BestOfN ci=1.0", lambda: td.BestOfN(ns=[1, 2], ci=1.0).fit(_T), ConfigError,
     r"ci must be a confidence level in \(0, 1\)"),
    ("bon_curve ns=[]", lambda: td.bon_curve(_T, "oracle", []), ValueError, "empty"),
    ("bon_curve ci=inf", lambda: td.bon_curve(_T, "oracle", [1], ci=float("inf")), ConfigError,
     "confidence level"),
    ("bon_curves dup selectors", lambda: td.bon_curves(_T, ["oracle", "oracle"], [1, 2]),
     ConfigError, "'oracle' twice"),
    ("bon_curves selectors=[]", lambda: td.bon_curves(_T, [], [1, 2]), ConfigError, "empty"),
    ("calibrate ci=0", lambda: td.calibrate([1, 2, 4], [0.1, 0.2, 0.25], ci=0), ConfigError,
     "confidence level"),
    ("calibrate falling", lambda: td.calibrate([1, 2, 4], [0.3, 0.2, 0.1]), None,
     "oracle curve falls"),
    ("diagnose seed=-1", lambda: td.diagnose(_T, "score_prob", seed=-1), ConfigError,
     "seed must be"),
    ("diagnose threshold=nan", lambda: td.diagnose(_T, "score_prob",
                                                   collapse_threshold=float("nan")),
     ConfigError, r"collapse_threshold must be a correlation threshold in \[-1, 1\]"),
    ("diagnose n_null=-1", lambda: td.diagnose(_T, "score_prob", n_null=-1), ConfigError,
     "n_null must be"),
    ("compare_selectors ns=[]", lambda: td.compare_selectors(_T, "score_prob", "score_det", []),
     ConfigError, "ns is empty"),
    ("compare_selectors seed=-2", lambda: td.compare_selectors(_T, "score_prob", "score_det",
                                                               [1], seed=-2),
     ConfigError, "seed must be"),
    ("n_to_close_gap share=0", lambda: td.n_to_close_gap(0, rho_total=0.5), ConfigError,
     "share must be"),
    ("n_to_close_gap rho=-1.5", lambda: td.n_to_close_gap(0.5, rho_total=-1.5), ConfigError,
     "correlation"),
    ("n_to_close_gap rho='a'", lambda: td.n_to_close_gap(0.5, rho_total="a"), TypeError,
     "correlation"),
    ("predict_bon_curve ns=[0]", lambda: td.predict_bon_curve([0], _D, _C), ValueError, ">= 1"),
    ("predict rho_plus=2", lambda: td.predict_bon_curve([1, 2], mu=0, c_sigma=1, alpha=0,
                                                        beta=0, rho_plus=2, rho_minus=0),
     ValueError, "rho_plus"),
    ("total_correlation beta=1.5", lambda: td.total_correlation(0, 1.5, 0.5, 0), ValueError,
     "beta"),
    ("unified_law c_sigma=nan", lambda: td.unified_law([1, 2], mu=0.0, c_sigma=float("nan"),
                                                       alpha=0, beta=0, rho_plus=0.5,
                                                       rho_minus=0), ValueError, "c_sigma"),
    ("expected_max_normal N=0", lambda: td.expected_max_normal(0), ValueError, ">= 1"),
    ("simulate n_users=0", lambda: td.simulate_score_table(n_users=0), ValueError, "n_users"),
    ("simulate n_users=nan", lambda: td.simulate_score_table(n_users=float("nan")),
     ConfigError, "n_users must be a number of users >= 1; got nan"),
    ("simulate sigma=-1", lambda: td.simulate_score_table(sigma=-1.0), ConfigError,
     r"sigma must be a number in \(0, inf\]"),
    ("rel_mae empty", lambda: td.rel_mae([], []), ValueError, "empty"),
    ("rel_mae nan", lambda: td.rel_mae([1.0], [float("nan")]), ValueError, "NaN|finite|nan"),
    ("capture_rate lengths", lambda: td.capture_rate([0.1, 0.2], [0.3, 0.4, 0.5], [0.1, 0.1]),
     ValueError, "length|shape"),
    ("validate dup columns", lambda: td.validate_score_table(
        pd.concat([_T, _T[["score_prob"]]], axis=1)), ValueError, "score_prob"),
    ("selection_weights n=0", lambda: td.selection_weights(6, np.arange(6), 0), ValueError,
     "n"),
    ("io.read_table /dev/null", lambda: td.io.read_table("/dev/null"), InputFileError,
     "is a device, not a file"),
]


@pytest.mark.parametrize("case", SWEEP, ids=[c[0] for c in SWEEP])
def test_sweep_api(case):
    _, call, exc, match = case
    if exc is None:
        with pytest.warns(UserWarning, match=match):
            call()
        return
    with pytest.raises(exc, match=match):
        call()


CLI_SWEEP = [
    # (id, argv after the table (TABLE and OUT are filled in), exit code, message)
    ("analyze --ns 0", ["analyze", "TABLE", "--ns", "0"], 7, "--ns values must be >= 1"),
    ("analyze --ns a", ["analyze", "TABLE", "--ns", "a"], 7, "--ns must be whole numbers"),
    ("analyze --collapse-threshold nan", ["analyze", "TABLE", "--ns", "1,2",
                                           "--collapse-threshold", "nan"], 7,
     "collapse_threshold"),
    ("analyze --collapse-threshold 2", ["analyze", "TABLE", "--ns", "1,2",
                                         "--collapse-threshold", "2"], 7,
     "collapse_threshold"),
    ("analyze folder", ["analyze", "OUT"], 5, "is an empty folder|is a folder"),
    ("demo --n-boot 0", ["demo", "--table", "TABLE", "--out", "OUT/d", "--n-boot", "0"], 7,
     "--n-boot must be"),
    ("demo --seed -1", ["demo", "--table", "TABLE", "--out", "OUT/d", "--seed", "-1"], 7,
     "--seed must be"),
    ("demo --cost nan", ["demo", "--table", "TABLE", "--out", "OUT/d",
                         "--cost-per-candidate", "nan"], 7, "--cost-per-candidate must be"),
    ("demo --cost 0", ["demo", "--table", "TABLE", "--out", "OUT/d",
                       "--cost-per-candidate", "0"], 7, "--cost-per-candidate must be"),
    ("demo --scores dup", ["demo", "--table", "TABLE", "--out", "OUT/d", "--scores",
                           "score_det", "score_det"], 7, "'score_det' twice"),
    ("demo --ns ,", ["demo", "--table", "TABLE", "--out", "OUT/d", "--ns", ","], 7,
     "--ns is empty"),
    ("figures --n-boot 5", ["figures", "TABLE", "--out", "OUT/f", "--n-boot", "5"], 7,
     "needs at least 20 draws"),
    ("figures --scores ,", ["figures", "TABLE", "--out", "OUT/f", "--scores", ","], 7,
     "--scores is empty"),
    ("figures --out is a file", ["figures", "TABLE", "--out", "TABLE"], None,
     "file|folder"),
    ("risk --collapse-threshold inf", ["risk", "TABLE", "--out", "OUT/r",
                                       "--collapse-threshold", "inf"], 7, "collapse"),
]


@pytest.mark.parametrize("case", CLI_SWEEP, ids=[c[0] for c in CLI_SWEEP])
def test_sweep_cli(case, table_file, tmp_path, capsys):
    _, argv, code, match = case
    argv = [str(table_file) if a == "TABLE" else a.replace("OUT", str(tmp_path)) for a in argv]
    got, out, err = _cli(argv, capsys)
    assert got != 0 and (code is None or got == code), (got, err)
    assert err.startswith("ttp-diag: error:") and err.count("\n") == 1, err
    assert __import__("re").search(match, err), err


# -- the whole battery (tests/hostile_battery.py): no silent result, raw error or hang -------------
#: Cases still open, with the reason (none at the moment; the table in docs/hostile-inputs.md).
OPEN: dict[tuple[str, str], str] = {}


def test_battery(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from hostile_battery import GOOD, run_battery
    finally:
        sys.path.pop(0)
    rows = run_battery(tmp_path, timeout=120)
    assert len(rows) >= 120
    bad = [f"{r['outcome']}: {r['target']} {r['input']}: {r['message']}" for r in rows
           if r["outcome"] not in GOOD and (r["target"], r["input"]) not in OPEN]
    assert not bad, "\n".join(bad)


def test_clipped_n_is_drawn_where_it_was_measured():
    """Issue 17's open case: ``--ns 1,50`` on pools of 6 warned but drew the point at x = 50.
    A clipped N is drawn at the pool size (where Best-of-N was measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttp_diag.plots.curves import plot_bands, plot_predicted, plot_theory

    t = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=6, seed=0)
    with pytest.warns(UserWarning, match="exceeds the largest candidate pool"):
        fit = td.BestOfN([1, 2, 50], n_boot=20, seed=0).fit(t)
    c = fit.curve("oracle")
    assert c["n"].tolist() == [1, 2, 6] and c["n_requested"].tolist() == [1, 2, 50]
    for fn in (plot_theory, plot_predicted, plot_bands):
        ax = fn(fit)
        xs = [x for line in ax.get_lines() for x in np.atleast_1d(line.get_xdata())]
        assert max(xs) <= 6, fn.__name__
        plt.close(ax.figure)
