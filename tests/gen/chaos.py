"""Chaos check: SIGKILL ``ttp-diag run`` at random points and resume; then bad inputs.

Two parts, both printed as figures:

1. **Kill and resume.** One uninterrupted ``ttp-diag run --backend tiny`` (tiny random policy,
   tiny random BERT reward-model backbone) gives the reference score table. A second run in a
   fresh folder is SIGKILLed ``--kills`` times at random moments (uniform over the reference
   run's duration, so every stage is hit), resumed after each kill by the same command, then run
   to completion. Printed: kills per stage, rows lost, rows duplicated, whether the final table
   is identical (exactly, every column) to the reference, and temporary files left behind.
2. **Bad-input battery.** Each hostile or careless input of issue 9 is fed to the API or the
   CLI and classified: *good* (one error, no traceback, naming the file/column/value), *bad*
   (a traceback, or a message that does not name the cause) or *worst* (a silent wrong
   result: exit 0 / no error where the input is wrong). Each case is tagged with the area
   (helper) that owns its fix.

``tests/gen/test_kill_resume.py`` runs a fast version of part 1 (3 kills) in the suite;
``tests/gen/test_pipeline.py`` and ``test_chaos_repairs.py`` use its fixtures. Test code, so it
lives under ``tests/`` (``scripts/`` only builds data).

Usage::

    python tests/gen/chaos.py                # 11 kills + the battery (a few minutes on 2 cores)
    python tests/gen/chaos.py --kills 3 --no-battery
    python tests/gen/chaos.py --no-kill --verbose
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

STAGE_FILES = [  # stage -> the file whose appearance marks it done
    ("data", "examples.parquet"),
    ("prompts", "prompts.parquet"),
    ("candidates", "candidates.parquet"),
    ("labels", "labeled.parquet"),
    ("rms", "rm"),
    ("scores", "scores.parquet"),
]
KEY = ["query_id", "cand_id"]


# -- fixtures ------------------------------------------------------------------------------
def write_users(path: Path, n_users: int = 3, n_items: int = 10) -> Path:
    """A small JSONL user file in the HuffPost format (dated profile items and queries)."""
    words = ["storm", "market", "election", "vaccine", "music", "court", "sports", "climate"]
    with open(path, "w") as fh:
        for u in range(n_users):
            prof = [
                {
                    "id": f"u{u}_p{i}",
                    "text": f"{words[(u + i) % 8]} news story number {i} for author {u}",
                    "title": f"{words[(u + i) % 8].title()} Headline {i}",
                    "date": f"2021-01-{i + 1:02d}",
                }
                for i in range(n_items - 2)
            ]
            qs = [
                {
                    "id": f"u{u}_q{i}",
                    "input": "Generate a headline for the following article: "
                    f"{words[(u + i + 3) % 8]} query article {i}",
                    "output": f"{words[(u + i + 3) % 8].title()} Query Headline",
                    "date": f"2021-02-{i + 1:02d}",
                }
                for i in range(2)
            ]
            rec = {"user_id": f"u{u}", "author": f"Author {u}", "profile": prof, "queries": qs}
            fh.write(json.dumps(rec) + "\n")
    return path


def tiny_run_config(work: Path, *, n_users: int = 3, n_items: int = 10, n: int = 4) -> Path:
    """Write users, a tiny reward-model backbone and a run config into ``work``; return it."""
    from ttp_diag.gen.reward_models import make_tiny_backbone

    work.mkdir(parents=True, exist_ok=True)
    data = write_users(work / "users.jsonl", n_users, n_items)
    backbone = make_tiny_backbone(work / "tiny_bert", hidden_size=16)
    cfg = {
        "task": "lamp4",
        "data_path": str(data),
        "backend": "tiny",
        "n": n,
        "max_new_tokens": 6,
        "temperature": 1.0,
        "top_k_users": n_users,
        "max_samples_per_user": n_items - 2,
        "min_items": 5,
        "order": "val_first",
        "rm_backbone": str(backbone),
        "num_threads": 1,
        "rm_settings": {"epochs": 1, "batch_size": 16, "max_length": 48, "verbose": False},
    }
    path = work / "run.json"
    path.write_text(json.dumps(cfg, indent=1))
    return path


def run_command(config: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ttp_diag", "run", "--config", str(config),
        "--run-dir", str(run_dir), "--no-progress", *extra,
    ]


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    root = str(Path(__file__).resolve().parents[2])  # the repository (tests/gen/chaos.py)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def stage_reached(run_dir: Path) -> str:
    """The stage a run was in: the first whose output is not on disk yet."""
    for stage, name in STAGE_FILES:
        if not (run_dir / name).exists():
            return stage
    return "done"


# -- part 1: kill and resume ----------------------------------------------------------------
def kill_and_resume(
    work: Path, *, kills: int = 3, seed: int = 0, log=print, timeout: float = 600
) -> dict:
    """Reference run, then ``kills`` SIGKILLs at random moments with resumes; compare tables.

    Returns a dict of figures (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    config = tiny_run_config(work / "fixture")
    ref_dir, dir_ = work / "reference", work / "killed"
    stages = [st for st, _ in STAGE_FILES]
    # Reference run, watched: how long each stage takes (the kill windows below).
    t0 = time.perf_counter()
    proc = subprocess.Popen(run_command(config, ref_dir), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done_at: dict[str, float] = {}
    while proc.poll() is None:
        reached = stage_reached(ref_dir)
        for st in stages[: stages.index(reached) if reached in stages else len(stages)]:
            done_at.setdefault(st, time.perf_counter() - t0)
        time.sleep(0.02)
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{proc.stderr.read().decode()[-3000:]}")
    proc.stderr.close()
    t_ref = time.perf_counter() - t0
    prev, dur = 0.0, {}
    for st in stages:
        dur[st] = max(done_at.get(st, t_ref) - prev, 0.05)
        prev = done_at.get(st, t_ref)
    log(f"reference run: {t_ref:.1f} s; stage seconds {({k: round(v, 2) for k, v in dur.items()})}")
    per_stage: Counter = Counter()
    finished_early = 0
    for k in range(kills):
        # Spread the kills over the stages in order; within a stage, a random moment of it.
        target = stages[min(len(stages) - 1, k * len(stages) // max(kills, 1))]
        proc = subprocess.Popen(
            run_command(config, dir_), env=_env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        while proc.poll() is None:
            cur = stage_reached(dir_)
            if cur == "done" or stages.index(cur) >= stages.index(target):
                break
            time.sleep(0.01)
        cur = stage_reached(dir_)
        delay = float(rng.uniform(0, 0.9) * dur.get(cur, 0.5))
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            stage = stage_reached(dir_)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
            per_stage[stage] += 1
            log(f"kill {k + 1}: SIGKILL in stage {stage} ({delay:.2f} s into it)")
            continue
        finished_early += 1  # nothing left to kill: it completed first
        log(f"kill {k + 1}: the run finished first (rc {proc.returncode})")
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
        proc.stderr.close()
    out = subprocess.run(run_command(config, dir_), env=_env(), timeout=timeout,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"resume failed (rc {out.returncode}):\n{out.stderr[-3000:]}")
    ref = pd.read_parquet(ref_dir / "scores.parquet")
    got = pd.read_parquet(dir_ / "scores.parquet")
    ref_keys = set(map(tuple, ref[KEY].astype(str).to_numpy()))
    got_keys = set(map(tuple, got[KEY].astype(str).to_numpy()))
    try:
        pd.testing.assert_frame_equal(
            got.sort_values(KEY).reset_index(drop=True),
            ref.sort_values(KEY).reset_index(drop=True),
            check_exact=True,
        )
        identical = True
    except AssertionError:
        identical = False
    leftovers = sorted(
        str(p.relative_to(dir_)) for p in dir_.rglob("*") if p.name.endswith(".tmp")
    )
    return {
        "reference_seconds": round(t_ref, 1),
        "kills": int(sum(per_stage.values())),
        "kills_per_stage": dict(per_stage),
        "finished_before_kill": finished_early,
        "rows_reference": int(len(ref)),
        "rows_lost": len(ref_keys - got_keys),
        "rows_extra": len(got_keys - ref_keys),
        "rows_duplicated": int(got.duplicated(KEY).sum()),
        "identical": identical,
        "temp_files_left": leftovers,
        "run_dir": str(dir_),
        "config": str(config),
    }


# -- part 2: the battery ---------------------------------------------------------------------
_FIX_WORDS = (
    "rename", "use ", "pass ", "give ", "again", "re-save", "check", "choose", "remove", "add ",
    "set ", "copy", "regenerat", "recomput", "must", "expected", "fix", "instead", "e.g.",
    "should", "resume", "is it the right", "needs", "one of", "at least",
)


def _names(msg: str, tokens) -> bool:
    """The message names every token and proposes a fix (the OS's bare words have none)."""
    low = msg.lower()
    return all(t.lower() in low for t in tokens) and any(w in low for w in _FIX_WORDS)


def api_case(fn, tokens=()):
    """Classify an API call that must fail: good / bad / worst, with the message."""
    from ttp_diag.exceptions import TtpDiagError

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            fn()
    except (TtpDiagError, ValueError, TypeError, OSError) as exc:
        msg = " ".join(str(exc).split())
        return ("good" if _names(msg, tokens) else "bad"), f"{type(exc).__name__}: {msg}"
    except Exception as exc:
        return "bad", f"{type(exc).__name__}: {exc} (unexpected type)"
    return "worst", "no error"


def cli_case(argv, tokens=(), ok=None):
    """Classify a CLI call: one ``ttp-diag: error:`` line naming ``tokens`` is good.

    ``ok(stdout)`` judges an exit-0 outcome where success can be right (else exit 0 is worst).
    """
    from ttp_diag.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        rc = exc.code
    except BaseException as exc:
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return "bad", f"traceback: {tb}"
    text = err.getvalue()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if rc == 0:
        return ok(out.getvalue()) if ok else ("worst", "exit 0")
    if "Traceback" in text:
        return "bad", f"rc {rc} with traceback: {last}"
    good = (last.startswith("ttp-diag: error:") or "error:" in last) and _names(last, tokens)
    return ("good" if good else "bad"), f"rc {rc}: {last}"


def battery(work: Path, run_fixture: dict | None = None) -> list[dict]:
    """Run every case; return rows (area, case, verdict, detail)."""
    import ttp_diag as td
    from ttp_diag.gen.data import load_jsonl_users

    work.mkdir(parents=True, exist_ok=True)
    B = td.simulate_score_table(n_users=6, n_queries=4, n_candidates=8, seed=0)
    ns = [1, 2, 4]
    rows: list[dict] = []

    def add(area, case, verdict_detail):
        rows.append({"area": area, "case": case, "verdict": verdict_detail[0],
                     "detail": verdict_detail[1][:160]})

    def table(name, df, **kw):
        p = work / name
        if p.suffix == ".csv":
            df.to_csv(p, index=False, **kw)
        else:
            df.to_parquet(p, index=False)
        return p

    base = table("base.parquet", B)

    # ---- files (robust) ----
    semi = table("semi.csv", B, sep=";")
    add("robust/io", "';'-separated CSV", cli_case(["analyze", semi, "--ns", "1,2"],
                                                    ["semi.csv", "sep"]))
    (work / "empty.csv").write_bytes(b"")
    add("robust/io", "0-byte CSV",
        cli_case(["analyze", work / "empty.csv"], ["empty.csv", "0 bytes"]))
    (work / "x.parquet").mkdir(exist_ok=True)
    add("robust/io", "empty dir named x.parquet",
        cli_case(["analyze", work / "x.parquet"], ["x.parquet", "empty folder"]))
    (work / "latin.csv").write_bytes(B.assign(user_id="Jos\xe9").to_csv(index=False)
                                     .encode("latin-1"))
    add("robust/io", "Latin-1 CSV",
        cli_case(["analyze", work / "latin.csv"], ["latin.csv", "UTF-8"]))
    B.to_parquet(work / "pq.csv")
    add("robust/io", "Parquet bytes named .csv",
        cli_case(["analyze", work / "pq.csv"], ["pq.csv", "rename"]))
    add("robust/io", "missing file", cli_case(["analyze", work / "nope.parquet"], ["nope.parquet"]))
    from ttp_diag.io import write_table

    big = pd.concat([B] * 40, ignore_index=True).assign(
        query_id=lambda d: d["query_id"] + "_" + (d.index // len(B)).astype(str))
    corrupt = work / "corrupt.parquet"
    write_table(big, corrupt)
    raw = bytearray(corrupt.read_bytes())
    rng = np.random.default_rng(0)
    start = len(raw) // 3
    raw[start:start + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    corrupt.write_bytes(bytes(raw))
    add("robust/io", "200 random bytes in Parquet",
        cli_case(["analyze", corrupt, "--ns", "1,2"], ["corrupt.parquet", "damaged"]))
    dupcsv = work / "dupcol.csv"
    dupcsv.write_text("user_id,query_id,cand_id,reward,reward\nu,q,0,0.1,0.2\n")
    add("robust/io", "duplicated column in CSV",
        cli_case(["analyze", dupcsv], ["dupcol.csv", "reward"]))

    # ---- data files (robust) ----
    users = write_users(work / "users.jsonl")
    import gzip

    gz = work / "users.jsonl.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(users.read_bytes() * 200)
    trunc = work / "trunc.jsonl.gz"
    trunc.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    plain_gz = work / "plain.jsonl.gz"
    plain_gz.write_bytes(users.read_bytes())
    garbage = work / "garbage.jsonl"
    garbage.write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    for name, p, toks in [
        ("run --data truncated .gz", trunc, ["trunc.jsonl.gz", "line"]),
        ("run --data plain text named .gz", plain_gz, ["plain.jsonl.gz", "gzip"]),
        ("run --data binary garbage", garbage, ["garbage.jsonl", "line 1"]),
    ]:
        add("robust/data", name, cli_case(
            ["run", "--data", p, "--backend", "tiny", "--run-dir", work / f"r_{p.stem}",
             "--until", "data", "--no-progress"], toks))

    def jsonl(name, recs):
        p = work / name
        p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in recs) + "\n")
        return p

    good_user = json.loads(users.read_text().splitlines()[0])

    def strict_case(p, toks):
        return api_case(lambda: load_jsonl_users(p, strict=True), toks)

    def skip_counted(p, reason_part):
        s = load_jsonl_users(p).attrs["summary"]
        hit = [k for k in s.skipped if reason_part in k]
        return ("good", f"skipped: {dict(s.skipped)}") if hit else ("worst", "not counted")

    empty_user = jsonl("empty_user.jsonl", [good_user, {"user_id": "ghost", "profile": []}])
    add("robust/data", "empty user is a counted skip", skip_counted(empty_user, "no items"))
    add("robust/data", "empty user, strict", strict_case(empty_user, ["ghost"]))
    u = json.loads(json.dumps(good_user))
    u["profile"][0]["title"] = {"a": 1}
    dict_title = jsonl("dict_title.jsonl", [u])
    add("robust/data", "dict in title", skip_counted(dict_title, "'title' is a JSON object"))
    add("robust/data", "dict in title, strict", strict_case(dict_title, ["title", "object"]))
    u = json.loads(json.dumps(good_user))
    u["profile"][3]["date"] = "yesterday-ish"
    bad_date = jsonl("bad_date.jsonl", [u])
    add("robust/data", "bad date", skip_counted(bad_date, "unparseable date"))
    add("robust/data", "bad date, strict", strict_case(bad_date, ["yesterday-ish"]))
    mixed = jsonl("mixed.jsonl", [good_user, "{oops", 5, good_user, {"user_id": "x"}])
    add("robust/data", "bad JSON/non-object/duplicate/no profile, strict",
        strict_case(mixed, ["mixed.jsonl line 2", "bad JSON"]))

    # ---- score-table contract (engine) ----
    dup = B.copy()
    dup.columns = [*B.columns[:-1], "reward"] if B.columns[-1] != "reward" else list(B.columns)
    add("engine/table", "duplicated column name (API)",
        api_case(lambda: td.bon_curve(dup, "score_det", ns), ["reward"]))
    mi = B.copy()
    mi.columns = pd.MultiIndex.from_tuples([(c, "") for c in B.columns])
    add("engine/table", "MultiIndex columns (API)",
        api_case(lambda: td.bon_curve(mi, "score_det", ns), ["column"]))
    huge = B.copy()
    # Corrupt rows of the analysed split (the default split="val" rightly ignores train rows).
    huge.loc[huge.index[huge["split"] == "val"][:26], "score_det"] = 1e272
    add("engine/table", "scores of 1e272 (corrupted values)",
        api_case(lambda: td.validate_score_table(huge), ["score_det"]))
    huge_all = B.copy()
    huge_all.loc[:25, "score_det"] = 1e272
    add("engine/table", "scores of 1e272 in train rows, split=None",
        api_case(lambda: td.validate_score_table(huge_all, split=None), ["score_det"]))

    # ---- statistics (stats) ----
    oracle = td.bon_curve(B, "oracle", ns)
    add("stats", "calibrate ci=1.5", api_case(
        lambda: td.calibrate(ns, oracle["utility"], shape="gaussian", ci=1.5), ["ci"]))
    add("stats", "calibrate ci=0", api_case(
        lambda: td.calibrate(ns, oracle["utility"], shape="gaussian", ci=0), ["ci"]))
    one = B[B["user_id"] == B["user_id"].iloc[0]]

    def one_user():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = td.bon_curve(one, "score_det", ns, ci=0.95)
        lo, hi = r.filter(like="low").iloc[:, 0], r.filter(like="high").iloc[:, 0]
        if ((hi - lo) == 0).any():
            return None  # zero-width: silent false precision
        raise ValueError("handled")

    def one_user_case():
        try:
            return ("worst", "zero-width interval") if one_user() is None else ("good", "")
        except Exception as exc:  # a warning turned error, or an explicit error
            return "good", f"{type(exc).__name__}: {exc}"

    add("stats", "bon_curve ci over 1 user", one_user_case())
    scaled = B.assign(reward=B["reward"] * 1e308, score_det=B["score_det"] * 1e308)
    add("stats", "rewards scaled by 1e308 (analyze)", cli_case(
        ["analyze", table("scaled.parquet", scaled), "--ns", "1,2,4"], ["overflow"],
        ok=lambda out: ("worst", "exit 0") if "constant" in out or "nan" in out.lower()
        else ("good", "exit 0, finite")))
    zero = table("zero.parquet", B.assign(reward=0.0))
    add("stats/shape", "all-zero rewards (risk)", cli_case(
        ["risk", zero, "--out", work / "risk_zero"], ["reward"],
        ok=lambda out: ("worst", "exit 0 with nan") if "nan" in out.lower()
        else ("good", "exit 0")))
    add("stats/shape", "all-zero rewards (analyze)", cli_case(
        ["analyze", zero, "--ns", "1,2"], ["no reward signal"],
        ok=lambda out: ("good", "exit 0") if "nan" not in out.lower() else ("worst", "nan")))
    cal = td.calibrate(ns, oracle["utility"], shape="gaussian")
    diag = td.diagnose(B, "score_det")
    add("stats/shape", "predict_bon_curve with arguments swapped",
        api_case(lambda: td.predict_bon_curve(ns, cal, diag), ["diagnos"]))

    # ---- CLI/analysis (shape) ----
    add("shape", "demo --var var_missing", cli_case(
        ["demo", "--table", base, "--out", work / "d1", "--var", "var_missing", "--n-boot", "20"],
        ["var_missing"]))
    add("shape", "demo --n-boot 0", cli_case(
        ["demo", "--table", base, "--out", work / "d2", "--n-boot", "0"], ["n-boot"]))
    no_score = table("noscore.parquet", B.drop(columns=[c for c in B if c.startswith("score_")]))
    add("shape", "figures on a table with no score_* column", cli_case(
        ["figures", no_score, "--out", work / "f1"], ["score_"]))
    afile = work / "afile.txt"
    afile.write_text("x")
    add("shape", "demo --out naming an existing file", cli_case(
        ["demo", "--table", base, "--out", afile, "--n-boot", "20"], ["afile.txt"]))
    add("shape", "risk --out naming an existing file", cli_case(
        ["risk", base, "--out", afile], ["afile.txt"]))
    xss = B.assign(user_id="<script>alert(1)</script>" + B["user_id"].astype(str))
    xss_p = table("xss.parquet", xss)

    def md_escaped(_out):
        texts = [p.read_text(errors="replace") for p in (work / "risk_xss").rglob("*.md")]
        if not texts:
            return "bad", "no markdown written"
        raw = any("<script>" in t for t in texts)
        return ("worst", "raw <script> in markdown") if raw else ("good", "escaped")

    add("shape", "<script> user id in risk_report.md", cli_case(
        ["risk", xss_p, "--out", work / "risk_xss"], [], ok=md_escaped))

    # ---- run folder (pipeline) ----
    add("pipeline", "run --run-dir naming an existing file", cli_case(
        ["run", "--data", users, "--backend", "tiny", "--run-dir", afile, "--until", "data",
         "--no-progress"], ["afile.txt"]))
    if run_fixture:
        rows.extend(run_folder_cases(work, run_fixture))
    return rows


def run_folder_cases(work: Path, fx: dict) -> list[dict]:
    """Damage a finished tiny run folder in several ways; each resume must repair or name it."""
    import shutil

    rows = []
    src = Path(fx["run_dir"])
    ref = pd.read_parquet(src / "scores.parquet")
    config = Path(fx["config"])

    def damaged(name, damage, tokens, area="pipeline"):
        d = work / f"run_{name.replace(' ', '_').replace('/', '_')}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(src, d)
        target = damage(d)
        if target is None:
            rows.append({"area": area, "case": name, "verdict": "bad",
                         "detail": "nothing to damage (layout changed?)"})
            return

        def repaired(_out):
            got = pd.read_parquet(d / "scores.parquet")
            try:
                pd.testing.assert_frame_equal(got.sort_values(KEY).reset_index(drop=True),
                                              ref.sort_values(KEY).reset_index(drop=True))
                return "good", "repaired on resume: identical table"
            except AssertionError:
                return "worst", f"exit 0 with a different table ({len(got)} vs {len(ref)} rows)"

        env_saved = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        v = cli_case(["run", "--config", config, "--run-dir", d, "--no-progress"],
                     [target.name], ok=repaired)
        if env_saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        rows.append({"area": area, "case": name, "verdict": v[0], "detail": v[1][:160]})

    def first(d, pattern):
        hits = sorted(d.rglob(pattern))
        return hits[0] if hits else None

    def truncate(pattern, keep=0.5, then_remove_outputs=("labeled.parquet", "scores.parquet")):
        def f(d):
            p = first(d, pattern)
            if p is None:
                return None
            p.write_bytes(p.read_bytes()[: int(p.stat().st_size * keep)])
            for o in then_remove_outputs:  # force the stage that reads it to run again
                with contextlib.suppress(FileNotFoundError):
                    (d / o).unlink()
            return p
        return f

    def fewer_texts(d):
        p = None
        for q in sorted(d.rglob("*.json")):
            if "cand" in str(q.relative_to(d)) and not q.name.startswith("_"):
                p = q
                break
        if p is None:
            return None
        obj = json.loads(p.read_text())
        lst = obj.get("texts") if isinstance(obj, dict) else obj
        if not isinstance(lst, list) or len(lst) < 2:
            return None
        del lst[-1]
        p.write_text(json.dumps(obj))
        for o in ("candidates.parquet", "labeled.parquet", "scores.parquet"):
            with contextlib.suppress(FileNotFoundError):
                (d / o).unlink()
        return p

    damaged("truncated per-query candidate JSON", truncate("cand*/*.json", then_remove_outputs=(
        "candidates.parquet", "labeled.parquet", "scores.parquet")), ["json"])
    damaged("candidate JSON edited to fewer texts", fewer_texts, ["json"])
    damaged("truncated config.json", truncate("config.json", then_remove_outputs=()), [])
    damaged("truncated run_summary.json", truncate("run_summary.json", then_remove_outputs=()), [])
    damaged("truncated rm/*.safetensors", truncate("*.safetensors"), ["safetensors"], area="rm")
    damaged("truncated scores.parquet", truncate("scores.parquet", then_remove_outputs=()),
            ["scores.parquet"])
    damaged("truncated labeled.parquet", truncate("labeled.parquet",
                                                  then_remove_outputs=("scores.parquet",)),
            ["labeled.parquet"])

    # --time-budget: one line and its own exit code (10), not a TimeoutError traceback
    from ttp_diag.exceptions import TimeBudgetExceeded

    d = work / "run_budget"
    shutil.rmtree(d, ignore_errors=True)
    v = cli_case(["run", "--config", config, "--run-dir", d, "--no-progress", "--time-budget",
                  "0"], ["budget"])
    # Not an error but a resumable stop: one line (no traceback), its own exit code, and the
    # way to go on are what count, not an "error:" prefix.
    code_ok = v[1].startswith(f"rc {TimeBudgetExceeded.exit_code}:")
    if code_ok and "traceback" not in v[1].lower() and _names(v[1], ["budget", "resume"]):
        v = ("good", v[1])
    elif v[0] == "good" and not code_ok:
        v = ("bad", v[1] + " (exit code is not TimeBudgetExceeded's)")
    rows.append({"area": "pipeline", "case": "--time-budget 0", "verdict": v[0],
                 "detail": v[1][:160]})

    # two runs with different seeds on one folder at the same time
    d = work / "run_two"
    shutil.rmtree(d, ignore_errors=True)
    procs = [subprocess.Popen(run_command(config, d, "--seed", str(sd)), env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for sd in (7, 8)]
    outs = [(p.wait(timeout=900), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()
    ok = [rc == 0 for rc, _ in outs]
    cfg_seed = None
    with contextlib.suppress(Exception):
        cfg_seed = json.loads((d / "config.json").read_text()).get("seed")
    if all(ok):
        v = ("worst", f"both runs exit 0 on one folder; config.json says seed {cfg_seed}")
    elif any(ok):
        last = [e.strip().splitlines()[-1] for rc, e in outs if rc != 0][0]
        tb = "Traceback" in outs[ok.index(False)][1]
        named = _names(last, ["lock"]) or _names(last, ["another"])
        v = ("good" if named and not tb else "bad", f"one refused: {last}")
    else:
        v = ("bad", "both failed: " + outs[0][1].strip().splitlines()[-1])
    rows.append({"area": "pipeline", "case": "two concurrent runs, seeds 7 and 8, one folder",
                 "verdict": v[0], "detail": v[1][:160]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=11)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="work folder (default: a new temporary folder)")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--no-battery", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print every battery case")
    args = ap.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="ttp_chaos_"))
    print(f"work folder: {work}")
    fx = None
    if not args.no_kill:
        fx = kill_and_resume(work / "kill", kills=args.kills, seed=args.seed)
        print("\n== kill and resume (tiny backend) ==")
        for k in ("reference_seconds", "kills", "kills_per_stage", "finished_before_kill",
                  "rows_reference", "rows_lost", "rows_extra", "rows_duplicated", "identical",
                  "temp_files_left"):
            print(f"{k:>22}: {fx[k]}")
    if not args.no_battery:
        import logging

        logging.disable(logging.WARNING)  # the battery judges messages, not logs
        rows = pd.DataFrame(battery(work / "battery", fx))
        logging.disable(logging.NOTSET)
        print("\n== bad-input battery ==")
        with pd.option_context("display.max_colwidth", 110, "display.width", 250,
                               "display.max_rows", 500):
            shown = rows if args.verbose else rows[rows["verdict"] != "good"]
            print(shown.to_string(index=False))
        counts = rows["verdict"].value_counts()
        print(f"\n{len(rows)} cases: good {counts.get('good', 0)} / bad {counts.get('bad', 0)} / "
              f"worst {counts.get('worst', 0)}")
        print(rows.groupby(["area", "verdict"]).size().unstack(fill_value=0).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
