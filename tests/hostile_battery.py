"""The hostile-argument battery of issue 17: the same classes of bad argument tried on every
public function of ``ttp_diag/__init__.py`` and every analysis subcommand, each case run in a
forked child (memory capped, time limited) and classified:

* ``error``   - one package error (:class:`ttp_diag.TtpDiagError`) naming the argument: good
* ``named``   - a ValueError/TypeError raised on purpose by the package (its last frame is in
  ``ttp_diag``), or a one-line ``ttp-diag: error:`` from the command line: good
* ``warning`` - a result with a warning that says what is wrong: good
* ``ok``      - a correct result (the input is legitimate after all): good
* ``raw``     - an exception from numpy/pandas/Python internals, a traceback: bad
* ``silent``  - a result without a word although the input is wrong: worst
* ``hang``    - no answer within the time limit (or the memory cap blown): bad

``python tests/hostile_battery.py`` prints the table (markdown with ``--markdown``);
``tests/test_hostile.py::test_battery`` fails on any bad outcome not listed as open. Run it
against an older tree (``PYTHONPATH=<old tree>``) to get the "before" column.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd

GOOD = ("error", "named", "warning", "ok")
NAN, INF = float("nan"), float("inf")


def _fixtures(tmp: Path) -> dict:
    import ttp_diag as td

    t = td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0)
    f = tmp / "t.parquet"
    t.to_parquet(f)
    bom = tmp / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + t.to_csv(index=False).replace("\n", "\r\n").encode())
    taken = tmp / "taken.txt"
    taken.write_text("keep me")
    return {"t": t, "file": str(f), "bom": str(bom), "taken": str(taken), "tmp": tmp,
            "d": td.diagnose(t, "score_prob"), "cal": td.calibrate([1, 2, 4, 6], table=t)}


def api_cases(fx: dict) -> list[tuple[str, str, Callable[[], object], str]]:
    """(function, input, call, expect) with expect "refuse" (error or warning) or "ok"."""
    import ttp_diag as td
    from ttp_diag import io as tio

    t, d, cal = fx["t"], fx["d"], fx["cal"]
    R, OK = "refuse", "ok"
    return [
        # BestOfN
        ("BestOfN", "ns=[1, 6, 50] (N past the pool)", lambda: td.BestOfN(ns=[1, 6, 50]).fit(t), R),
        ("BestOfN", "ns=[]", lambda: td.BestOfN(ns=[]).fit(t), R),
        ("BestOfN", "ns=[0, 2]", lambda: td.BestOfN(ns=[0, 2]).fit(t), R),
        ("BestOfN", "ns=[1, 1, 2]", lambda: td.BestOfN(ns=[1, 1, 2]).fit(t), R),
        ("BestOfN", "ns=[4, 1]", lambda: td.BestOfN(ns=[4, 1]).fit(t), R),
        ("BestOfN", "ns=[1, nan]", lambda: td.BestOfN(ns=[1, NAN]).fit(t), R),
        ("BestOfN", "ns='1,2'", lambda: td.BestOfN(ns="1,2").fit(t), R),
        ("BestOfN", "scores=[] (random and oracle only)",
         lambda: td.BestOfN(ns=[1, 2]).fit(t, []).curves_, OK),
        ("BestOfN", "scores=[a, a]",
         lambda: td.BestOfN(ns=[1, 2]).fit(t, ["score_det", "score_det"]), R),
        ("BestOfN", "ci=0.9, n_boot=1", lambda: td.BestOfN(ns=[1, 2], ci=0.9, n_boot=1).fit(t), R),
        ("BestOfN", "n_boot=0 (no ci)", lambda: td.BestOfN(ns=[1, 2], n_boot=0).fit(t), R),
        ("BestOfN", "ci=1.5", lambda: td.BestOfN(ns=[1, 2], ci=1.5).fit(t), R),
        ("BestOfN", "ci=nan", lambda: td.BestOfN(ns=[1, 2], ci=NAN).fit(t), R),
        ("BestOfN", "seed=-1", lambda: td.BestOfN(ns=[1, 2], seed=-1).fit(t), R),
        ("BestOfN", "ci=0.95, n_boot=10**10",
         lambda: td.BestOfN(ns=[1, 2], ci=0.95, n_boot=10**10).fit(t), R),
        ("BestOfN", "mu=inf", lambda: td.BestOfN(ns=[1, 2], mu=INF).fit(t), R),
        ("BestOfN", "collapse_threshold=2",
         lambda: td.BestOfN(ns=[1, 2], collapse_threshold=2).fit(t), R),
        # bon_*
        ("bon_curve", "ns=[]", lambda: td.bon_curve(t, "oracle", []), R),
        ("bon_curve", "ns=[-1]", lambda: td.bon_curve(t, "oracle", [-1]), R),
        ("bon_curve", "ns=[inf]", lambda: td.bon_curve(t, "oracle", [INF]), R),
        ("bon_curve", "ci=0.95, n_boot=2", lambda: td.bon_curve(t, "oracle", [1], ci=0.95,
                                                                n_boot=2), R),
        ("bon_curve", "ci=0.95, n_boot=10**10",
         lambda: td.bon_curve(t, "oracle", [1], ci=0.95, n_boot=10**10), R),
        ("bon_curve", "ci=inf", lambda: td.bon_curve(t, "oracle", [1], ci=INF), R),
        ("bon_curve", "score missing", lambda: td.bon_curve(t, "score_nope", [1]), R),
        ("bon_curves", "selectors=[oracle, oracle]",
         lambda: td.bon_curves(t, ["oracle", "oracle"], [1, 2]), R),
        ("bon_curves", "selectors=[]", lambda: td.bon_curves(t, [], [1, 2]), R),
        ("bon_per_query", "ns=[0]", lambda: td.bon_per_query(t, "oracle", [0]), R),
        ("bon_curve_dataset", "a folder that is not a dataset",
         lambda: td.bon_curve_dataset(str(fx["tmp"]), "oracle", [1]), R),
        ("selection_weights", "n=0", lambda: td.selection_weights(6, np.arange(6), 0), R),
        ("selection_weights", "rank >= pool", lambda: td.selection_weights(3, np.arange(5), 1), R),
        # diagnostics
        ("diagnose", "ci=0.9, n_boot=1", lambda: td.diagnose(t, "score_prob", ci=0.9, n_boot=1),
         R),
        ("diagnose", "ci=0.95, n_boot=10**10",
         lambda: td.diagnose(t, "score_prob", ci=0.95, n_boot=10**10), R),
        ("diagnose", "n_null=-1", lambda: td.diagnose(t, "score_prob", n_null=-1), R),
        ("diagnose", "n_null=10**11", lambda: td.diagnose(t, "score_prob", n_null=10**11), R),
        ("diagnose", "collapse_threshold=nan",
         lambda: td.diagnose(t, "score_prob", collapse_threshold=NAN), R),
        ("diagnose", "seed=-1", lambda: td.diagnose(t, "score_prob", seed=-1), R),
        ("diagnose", "score='random'", lambda: td.diagnose(t, "random"), R),
        ("compare_selectors", "ns=[]", lambda: td.compare_selectors(t, "score_prob", "score_det",
                                                                    []), R),
        ("compare_selectors", "n_boot=0",
         lambda: td.compare_selectors(t, "score_prob", "score_det", [1], n_boot=0), R),
        ("compare_selectors", "ci=0.95, n_boot=3",
         lambda: td.compare_selectors(t, "score_prob", "score_det", [1], ci=0.95, n_boot=3), R),
        ("compare_selectors", "n_boot=10**11",
         lambda: td.compare_selectors(t, "score_prob", "score_det", [1], n_boot=10**11), R),
        ("compare_selectors", "seed=-2",
         lambda: td.compare_selectors(t, "score_prob", "score_det", [1], seed=-2), R),
        # theory
        ("calibrate", "falling oracle curve", lambda: td.calibrate([1, 2, 4, 8],
                                                                   [0.4, 0.3, 0.2, 0.1]), R),
        ("calibrate", "ci=0", lambda: td.calibrate([1, 2, 4], [0.1, 0.2, 0.25], ci=0), R),
        ("calibrate", "oracle with nan", lambda: td.calibrate([1, 2, 4], [0.1, NAN, 0.2]), R),
        ("calibrate", "ns=[0, 1, 2]", lambda: td.calibrate([0, 1, 2], [0.1, 0.2, 0.25]), R),
        ("calibrate", "lengths differ", lambda: td.calibrate([1, 2, 4], [0.1, 0.2]), R),
        ("calibrate", "mu=nan", lambda: td.calibrate([1, 2, 4], [0.1, 0.2, 0.25], mu=NAN), R),
        ("n_to_close_gap", "rho_total=5", lambda: td.n_to_close_gap(0.5, rho_total=5.0), R),
        ("n_to_close_gap", "rho_total=nan", lambda: td.n_to_close_gap(0.5, rho_total=NAN), R),
        ("n_to_close_gap", "share=1.5", lambda: td.n_to_close_gap(1.5, rho_total=0.5), R),
        ("n_to_close_gap", "share=0", lambda: td.n_to_close_gap(0.0, rho_total=0.5), R),
        ("n_to_close_gap", "n_ref=0", lambda: td.n_to_close_gap(0.5, rho_total=0.5, n_ref=0), R),
        ("n_to_close_gap", "rho_total='a'", lambda: td.n_to_close_gap(0.5, rho_total="a"), R),
        ("predict_bon_curve", "ns=[0]", lambda: td.predict_bon_curve([0], d, cal), R),
        ("predict_bon_curve", "rho_plus=2",
         lambda: td.predict_bon_curve([1], mu=0, c_sigma=1, alpha=0, beta=0, rho_plus=2,
                                      rho_minus=0), R),
        ("predict_bon_curve", "swapped objects", lambda: td.predict_bon_curve([1], cal, d), R),
        ("predict_bon_curve_per_query", "ns=[]", lambda: td.predict_bon_curve_per_query([], d,
                                                                                        cal), R),
        ("total_correlation", "beta=1.5", lambda: td.total_correlation(0, 1.5, 0.5, 0), R),
        ("total_correlation", "alpha=nan", lambda: td.total_correlation(NAN, 0, 0.5, 0), R),
        ("effective_correlation", "rho_minus=-2", lambda: td.effective_correlation(0, 0.5, -2),
         R),
        ("collapsed_refinement", "alpha=-0.1",
         lambda: td.collapsed_refinement([1, 2], mu=0, c_sigma=1, alpha=-0.1, beta=0,
                                         rho_plus=0.5, rho_minus=0, rho_collapsed=0), R),
        ("correlation_scaling", "rho=1.5",
         lambda: td.correlation_scaling([1, 2], mu=0, sigma=1, rho=1.5), R),
        ("oracle_bound", "sigma=inf", lambda: td.oracle_bound([1, 2], mu=0, sigma=INF), R),
        ("unified_law", "c_sigma=nan",
         lambda: td.unified_law([1, 2], mu=0, c_sigma=NAN, alpha=0, beta=0, rho_plus=0.5,
                                rho_minus=0), R),
        ("curve_shape", "shape='cubic'", lambda: td.curve_shape([1, 2], "cubic"), R),
        ("curve_shape", "ns=[0]", lambda: td.curve_shape([0], "sqrt_log"), R),
        ("expected_max_normal", "N=0", lambda: td.expected_max_normal(0), R),
        ("expected_max_normal", "N=inf", lambda: td.expected_max_normal(INF), R),
        # metrics
        ("rel_mae", "empty", lambda: td.rel_mae([], []), R),
        ("rel_mae", "nan", lambda: td.rel_mae([1.0], [NAN]), R),
        ("r_squared", "lengths differ", lambda: td.r_squared([1.0, 2.0], [1.0]), R),
        ("capture_rate", "lengths differ", lambda: td.capture_rate([0.1, 0.2], [0.3, 0.4, 0.5],
                                                                   [0.1, 0.1]), R),
        ("mean_capture_rate", "empty", lambda: td.mean_capture_rate([], [], []), R),
        ("gain_error", "nan", lambda: td.gain_error([NAN], [0.2], [0.1]), R),
        ("capture_error", "inf", lambda: td.capture_error([INF], [0.2], [0.3], [0.1]), R),
        # simulation and tables
        ("simulate_score_table", "n_users=0", lambda: td.simulate_score_table(n_users=0), R),
        ("simulate_score_table", "n_users=nan", lambda: td.simulate_score_table(n_users=NAN), R),
        ("simulate_score_table", "sigma=-1", lambda: td.simulate_score_table(sigma=-1.0), R),
        ("simulate_score_table", "seed=-1", lambda: td.simulate_score_table(seed=-1), R),
        ("simulate_score_table", "n_candidates=1",
         lambda: td.simulate_score_table(n_candidates=1), R),
        ("SimulatedRM", "rho_plus=3", lambda: td.simulate_score_table(
            n_users=4, models={"score_x": td.SimulatedRM(rho_plus=3.0)}), R),
        ("validate_score_table", "duplicate column",
         lambda: td.validate_score_table(pd.concat([t, t[["score_prob"]]], axis=1)), R),
        ("validate_score_table", "reward inf",
         lambda: td.validate_score_table(t.assign(reward=INF)), R),
        ("validate_score_table", "scores=[a, a]",
         lambda: td.validate_score_table(t, scores=["score_det", "score_det"]), R),
        ("ScoreTable", "not a DataFrame", lambda: td.ScoreTable([1, 2, 3]), R),
        ("score_columns", "not a DataFrame", lambda: td.score_columns("table"), R),
        ("load_demo", "split='nope'", lambda: td.load_demo(split="nope"), R),
        # files
        ("io.read_table", "/dev/null (a device)", lambda: tio.read_table("/dev/null"), R),
        ("io.read_table", "a folder", lambda: tio.read_table(str(fx["tmp"])), R),
        ("io.read_table", "BOM + CRLF CSV", lambda: tio.read_table(fx["bom"]), OK),
        ("io.write_table", "path is a folder", lambda: tio.write_table(t, str(fx["tmp"])), R),
        ("full_report", "out_dir an existing file",
         lambda: __import__("ttp_diag.full_report").full_report.full_report(t, fx["taken"]), R),
        ("full_report", "n_boot=3",
         lambda: __import__("ttp_diag.full_report").full_report.full_report(
             t, str(fx["tmp"] / "rep"), n_boot=3), R),
    ]


def cli_cases(fx: dict) -> list[tuple[str, str, list[str], str]]:
    f, tmp, taken, bom = fx["file"], str(fx["tmp"]), fx["taken"], fx["bom"]
    R, OK = "refuse", "ok"
    a = ["analyze", f, "--ns", "1,2"]
    return [
        ("analyze", "--ns ,", ["analyze", f, "--ns", ","], R),
        ("analyze", "--ns 0", ["analyze", f, "--ns", "0"], R),
        ("analyze", "--ns 1,50 --pool clip", ["analyze", f, "--ns", "1,50", "--pool", "clip"], R),
        ("analyze", "--n-boot 0 (no --ci)", [*a, "--n-boot", "0"], R),
        ("analyze", "--n-boot 1 --ci 0.9", [*a, "--n-boot", "1", "--ci", "0.9"], R),
        ("analyze", "--n-boot 10**11 --ci 0.95", [*a, "--n-boot", "100000000000", "--ci",
                                                  "0.95"], R),
        ("analyze", "--ci 95", [*a, "--ci", "95"], R),
        ("analyze", "--ci nan", [*a, "--ci", "nan"], R),
        ("analyze", "--seed -1", [*a, "--seed", "-1"], R),
        ("analyze", "--collapse-threshold nan", [*a, "--collapse-threshold", "nan"], R),
        ("analyze", "--scores a,a", [*a, "--scores", "score_det,score_det"], R),
        ("analyze", "--scores ,", [*a, "--scores", ","], R),
        ("analyze", "TABLE=/dev/null", ["analyze", "/dev/null"], R),
        ("analyze", "TABLE=a folder", ["analyze", tmp], R),
        ("analyze", "TABLE=BOM+CRLF CSV", ["analyze", bom, "--ns", "1,2"], OK),
        ("demo", "--n-boot 1", ["demo", "--table", f, "--out", f"{tmp}/d1", "--n-boot", "1"], R),
        ("demo", "--n-boot 3", ["demo", "--table", f, "--out", f"{tmp}/d3", "--n-boot", "3"], R),
        ("demo", "--seed -1", ["demo", "--table", f, "--out", f"{tmp}/d4", "--seed", "-1"], R),
        ("demo", "--cost-per-candidate nan", ["demo", "--table", f, "--out", f"{tmp}/d5",
                                              "--cost-per-candidate", "nan"], R),
        ("demo", "--cost-per-candidate -1", ["demo", "--table", f, "--out", f"{tmp}/d6",
                                             "--cost-per-candidate", "-1"], R),
        ("demo", "--scores a a", ["demo", "--table", f, "--out", f"{tmp}/d7", "--scores",
                                  "score_det", "score_det"], R),
        ("demo", "--ns ,", ["demo", "--table", f, "--out", f"{tmp}/d8", "--ns", ","], R),
        ("demo", "--out an existing file", ["demo", "--table", f, "--out", taken], R),
        ("figures", "--n-boot 5", ["figures", f, "--out", f"{tmp}/f1", "--n-boot", "5"], R),
        ("figures", "--scores ,", ["figures", f, "--out", f"{tmp}/f2", "--scores", ","], R),
        ("figures", "--ns ,", ["figures", f, "--out", f"{tmp}/f3", "--ns", ","], R),
        ("figures", "--out an existing file", ["figures", f, "--out", taken], R),
        ("figures", "--names a a", ["figures", f, f, "--out", f"{tmp}/f4", "--names", "a", "a"],
         R),
        ("figures", "--training-baseline nan", ["figures", f, "--out", f"{tmp}/f5",
                                                "--training-baseline", "nan"], R),
        ("risk", "--collapse-threshold inf", ["risk", f, "--out", f"{tmp}/r1",
                                              "--collapse-threshold", "inf"], R),
        ("risk", "--out an existing file", ["risk", f, "--out", taken], R),
        ("risk", "TABLE=/dev/null", ["risk", "/dev/null", "--out", f"{tmp}/r2"], R),
    ]


# -- running one case in a forked child ---------------------------------------------------------
def _classify_api(call: Callable[[], object], expect: str) -> tuple[str, str]:
    from ttp_diag.exceptions import TtpDiagError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with redirect_stdout(io.StringIO()):
                call()
    except TtpDiagError as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    except (ValueError, TypeError, KeyError) as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        ours = tb and "ttp_diag" in tb[-1].filename and "site-packages" not in tb[-1].filename
        return ("named" if ours else "raw"), f"{type(exc).__name__}: {exc}"
    except MemoryError as exc:
        return "raw", f"MemoryError: {exc}"
    except Exception as exc:  # noqa: BLE001 - classifying is the point
        return "raw", f"{type(exc).__name__}: {exc}"
    # numpy's own words ("invalid value encountered in sqrt") say nothing about the argument
    numpy_noise = ("invalid value encountered", "divide by zero", "overflow encountered",
                   "Mean of empty slice", "Degrees of freedom")
    told = [w for w in caught if issubclass(w.category, (UserWarning, RuntimeWarning))
            and not issubclass(w.category, DeprecationWarning)
            and not str(w.message).startswith(numpy_noise)]
    if told:
        return "warning", str(told[0].message)
    return ("ok" if expect == "ok" else "silent"), "returned without a word"


def _classify_cli(argv: list[str], expect: str) -> tuple[str, str]:
    from ttp_diag.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
            code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    except BaseException as exc:  # noqa: BLE001
        return "raw", f"traceback: {type(exc).__name__}: {exc}"
    msg = err.getvalue().strip()
    lines = msg.splitlines()
    if code == 0:
        warned = [ln for ln in lines if "warning" in ln]
        if warned:
            return "warning", warned[0]
        return ("ok" if expect == "ok" else "silent"), f"exit 0: {out.getvalue()[-120:]!r}"
    if "Traceback" in msg or not lines:
        return "raw", f"exit {code}: {msg[-200:]}"
    if len(lines) == 1 and lines[0].startswith("ttp-diag: error:") or code == 2:
        return "named", f"exit {code}: {lines[-1]}"
    return "raw", f"exit {code}: {' | '.join(lines[-3:])}"


def _in_child(fn: Callable[[], tuple[str, str]], timeout: float) -> tuple[str, str]:
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rd)
        try:
            cap = 3 * 2**30
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            res = fn()
        except BaseException as exc:  # noqa: BLE001
            res = ("raw", f"{type(exc).__name__}: {exc}")
        with os.fdopen(wr, "w") as fh:
            json.dump(list(res), fh)
        os._exit(0)
    os.close(wr)
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError()))
    signal.alarm(int(timeout))
    try:
        with os.fdopen(rd) as fh:
            data = fh.read()
        os.waitpid(pid, 0)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "hang", f"no answer in {timeout:g} s"
    finally:
        signal.alarm(0)
    try:
        return tuple(json.loads(data))
    except ValueError:
        return "hang", "the child died (memory cap?)"


def run_battery(tmp: Path, *, timeout: float = 60.0) -> list[dict]:
    """Every case, classified: rows of ``kind, target, input, outcome, message``."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    fx = _fixtures(Path(tmp))
    rows = []
    for fn, what, call, expect in api_cases(fx):
        outcome, msg = _in_child(lambda c=call, e=expect: _classify_api(c, e), timeout)
        rows.append({"kind": "api", "target": fn, "input": what, "outcome": outcome,
                     "message": " ".join(msg.split())[:160]})
    for cmd, what, argv, expect in cli_cases(fx):
        outcome, msg = _in_child(lambda a=argv, e=expect: _classify_cli(a, e), timeout)
        rows.append({"kind": "cli", "target": f"ttp-diag {cmd}", "input": what,
                     "outcome": outcome, "message": " ".join(msg.split())[:160]})
    return rows


if __name__ == "__main__":  # pragma: no cover
    import tempfile

    rows = run_battery(Path(tempfile.mkdtemp()))
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1))
    elif "--markdown" in sys.argv:
        print("| target | input | outcome | message |\n| --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['target']} | {r['input']} | {r['outcome']} | "
                  f"{r['message'].replace('|', '/')} |")
    else:
        for r in rows:
            print(f"{r['outcome']:<8} {r['target']:<28} {r['input']:<34} {r['message'][:90]}")
    counts = pd.Series([r["outcome"] for r in rows]).value_counts().to_dict()
    print(f"{len(rows)} cases: {counts}", file=sys.stderr)
