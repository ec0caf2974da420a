#!/usr/bin/env python
"""Unit costs of test-time personalization on this machine (the paper's appendix B.7).

Measures, on real HuffPost items (or synthetic text when the shared set is absent):

* reward-model training, ms per training sample (one epoch of the Probabilistic user RM:
  forward, Gaussian NLL + contrastive loss, backward, step),
* reward-model scoring, ms per candidate (inference with the trained model),
* candidate generation, ms per candidate (SmolLM2-135M-Instruct, RAG prompt, the demo's
  sampling settings),

and prints them as a table next to the paper's H100 numbers (19 ms, 2.3 ms, 1498 ms with
Qwen2.5-1.5B RMs and a Qwen3-4B policy). ``--quick`` swaps in tiny random models to check
the plumbing in seconds.

Usage::

    python benchmarks/bench_costs.py --device cpu    # MiniLM RM + SmolLM2 policy, minutes
    python benchmarks/bench_costs.py --device cuda   # the same on a GPU (bf16 by default)
    python benchmarks/bench_costs.py --quick         # tiny models
    python benchmarks/bench_costs.py --threads 2 --json costs.json

Generation is timed in both modes of ``TransformersBackend`` ("prefix": one call per
prompt with a shared prompt cache; "batched": several prompts per left-padded call) and
the faster one is named; ``AUTO_MODE`` in ``ttp_diag/gen/backends.py`` records the choice.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HUFFPOST = Path("/work/shared/data/lamp4_reconstructed_huffpost/users.jsonl.gz")
PAPER_MS = {
    "rm_train_ms_per_sample": 19.0,
    "rm_score_ms_per_candidate": 2.3,
    "generate_ms_per_candidate": 1498.0,
}


def _articles(n: int):
    """(article, headline) pairs of the longest-profile HuffPost author, or synthetic ones."""
    if HUFFPOST.is_file():
        with gzip.open(HUFFPOST, "rt") as fh:
            users = [json.loads(line) for line in fh]
        u = max(users, key=lambda r: len(r["profile"]))
        return [(p["text"], p["title"]) for p in u["profile"][-n:]]
    return [
        (
            f"Officials said on day {i} that the storm had moved north.",
            f"Storm Moves North, Day {i}",
        )
        for i in range(n)
    ]


def bench_rm(n_train: int, n_score: int, quick: bool, threads: int) -> dict:
    import numpy as np

    from ttp_diag.gen.prompts import reward_model_prompt
    from ttp_diag.gen.reward_models import UserRewardModels, make_tiny_backbone

    rng = np.random.default_rng(0)
    arts = _articles(max(n_train, n_score))
    texts = [
        reward_model_prompt("lamp4", a, h if rng.random() < 0.5 else h.split()[0])
        for a, h in (arts * 2)[: max(n_train, n_score)]
    ]
    y = rng.uniform(0, 1, len(texts))
    backbone = None
    if quick:
        backbone = make_tiny_backbone(Path(tempfile.mkdtemp()) / "tiny", hidden_size=16)
    rm = UserRewardModels("prob", backbone, epochs=1, batch_size=16, verbose=False, device="cpu")
    users = ["bench"] * n_train
    t0 = time.perf_counter()
    rm.fit(texts[:n_train], y[:n_train], users=users, groups=[i // 8 for i in range(n_train)])
    train_s = time.perf_counter() - t0
    score_texts = texts[:n_score]
    rm.score(score_texts[:8], ["bench"] * 8)  # warm-up
    t0 = time.perf_counter()
    rm.score_with_var(score_texts, ["bench"] * n_score)
    score_s = time.perf_counter() - t0
    return {
        "rm_backbone": "tiny random BERT" if quick else "all-MiniLM-L6-v2 + LoRA r=8",
        "rm_train_samples": n_train,
        "rm_train_ms_per_sample": 1000 * train_s / n_train,
        "rm_score_candidates": n_score,
        "rm_score_ms_per_candidate": 1000 * score_s / n_score,
    }


def bench_generation(
    n_articles: int,
    n: int,
    max_new_tokens: int,
    temperature: float,
    quick: bool,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    batch_size: int = 4,
    modes: tuple[str, ...] = ("prefix", "batched"),
    repeats: int = 3,
) -> dict:
    """ms per candidate of each generation mode, chunks of ``batch_size`` prompts per call
    (as ``CandidateGenerator`` makes them); modes alternate over ``repeats`` rounds so that
    load from other processes hits both alike; the median round is reported."""
    import statistics

    from ttp_diag.gen.backends import TransformersBackend, default_dtype, tiny_random_backend
    from ttp_diag.gen.prompts import policy_prompt

    arts = _articles(n_articles + 3)
    hist = [{"body": a, "output": h} for a, h in arts[:3]]
    prompts = [policy_prompt("lamp4", a, history=hist) for a, _ in arts[3 : 3 + n_articles]]
    if quick:
        be, name = tiny_random_backend(first_line=True), "tiny random Llama"
        be.device = device
    else:
        be, name = (
            TransformersBackend("smollm2", first_line=True, device=device, dtype=dtype),
            "SmolLM2-135M-Instruct (GGUF->safetensors)",
        )
    be.generate(prompts[:1], n=2, max_new_tokens=4, seed=0)  # load + warm-up
    times: dict[str, list[float]] = {m: [] for m in modes}
    counts: dict[str, int] = {}
    for rep in range(repeats):
        for mode in modes if rep % 2 == 0 else modes[::-1]:
            be.mode = mode
            be.generate(prompts[:1], n=2, max_new_tokens=2, seed=0)  # mode warm-up
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            t0 = time.perf_counter()
            n_cand = 0
            for i in range(0, len(prompts), batch_size):
                outs = be.generate(
                    prompts[i : i + batch_size],
                    n=n,
                    temperature=temperature,
                    top_p=0.95,
                    max_new_tokens=max_new_tokens,
                    seed=1 + i,
                )
                n_cand += sum(len(o) for o in outs)
            times[mode].append(time.perf_counter() - t0)
            counts[mode] = n_cand
    res = {
        "policy": name,
        "gen_device": device,
        "gen_dtype": dtype or default_dtype(device),
        "gen_articles": n_articles,
        "gen_samples_per_article": n,
        "gen_max_new_tokens": max_new_tokens,
        "gen_prompts_per_call": batch_size,
        "gen_repeats": repeats,
    }
    for m in modes:
        med = statistics.median(times[m])
        res[f"generate_ms_per_candidate_{m}"] = 1000 * med / counts[m]
        res[f"generate_candidates_per_s_{m}"] = counts[m] / med
        res[f"generate_rounds_s_{m}"] = [round(t, 2) for t in times[m]]
    best = min(modes, key=lambda m: res[f"generate_ms_per_candidate_{m}"])
    res["generate_best_mode"] = best
    res["generate_ms_per_candidate"] = res[f"generate_ms_per_candidate_{best}"]
    res["generate_s_per_article"] = res["generate_ms_per_candidate"] * n / 1000
    return res


def bench_retrieval(n_texts: int, quick: bool, device: str) -> dict:
    """MiniLM encoding of history items for retrieval, ms per text (one pass)."""
    if quick:
        return {}
    from ttp_diag.gen.retrieval import MiniLMEncoder

    texts = [a for a, _ in _articles(n_texts)]
    enc = MiniLMEncoder(device=device)
    enc.encode(texts[:4])  # load + warm-up
    t0 = time.perf_counter()
    enc.encode(texts)
    s = time.perf_counter() - t0
    return {"retrieval_texts": len(texts), "retrieval_ms_per_text": 1000 * s / len(texts)}


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for p in ("torch", "transformers", "peft", "vllm"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "absent"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="tiny random models (plumbing check)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:0, ...)")
    ap.add_argument("--dtype", help="generation dtype (default: bf16 on CUDA, fp32 on CPU)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-samples", type=int, default=128)
    ap.add_argument("--score-candidates", type=int, default=256)
    ap.add_argument("--articles", type=int, default=8)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--batch-size", type=int, default=4, help="prompts per generate call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-rm", action="store_true", help="generation (and retrieval) only")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {a.device}: torch {torch.__version__} sees no CUDA GPU")
    torch.set_num_threads(a.threads)
    gpu = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else None
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{a.threads} torch thread(s)" + (f", {gpu}" if gpu else ""),
        "versions": versions(),
    }
    if not a.skip_rm:
        res.update(bench_rm(a.train_samples, a.score_candidates, a.quick, a.threads))
    res.update(bench_retrieval(64, a.quick, a.device))
    res.update(
        bench_generation(
            a.articles, a.n, a.max_new_tokens, a.temperature, a.quick,
            device=a.device, dtype=a.dtype, batch_size=a.batch_size, repeats=a.repeats,
        )
    )
    rows = []
    if not a.skip_rm:
        rows += [
            ("RM training (ms / sample)", res["rm_train_ms_per_sample"],
             PAPER_MS["rm_train_ms_per_sample"]),
            ("RM scoring (ms / candidate)", res["rm_score_ms_per_candidate"],
             PAPER_MS["rm_score_ms_per_candidate"]),
        ]
    if "retrieval_ms_per_text" in res:
        rows.append(("retrieval encode (ms / text)", res["retrieval_ms_per_text"], None))
    for m in ("prefix", "batched"):
        rows.append((f"generation, {m} (ms / cand.)", res[f"generate_ms_per_candidate_{m}"],
                     PAPER_MS["generate_ms_per_candidate"]))
    v = res["versions"]
    print(f"machine: {res['machine']}")
    print("versions: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    print(f"device: {res['gen_device']}, dtype: {res['gen_dtype']}; policy: {res['policy']}"
          + (f"; reward model: {res['rm_backbone']}" if not a.skip_rm else ""))
    print(f"generation: {a.articles} headline prompts, n={a.n}, {a.max_new_tokens} new tokens, "
          f"{a.batch_size} prompts per call, median of {a.repeats} alternating rounds")
    print(f"{'cost':<34}{'this machine':>14}{'paper (H100)':>14}")
    for name, mine, paper in rows:
        ps = f"{paper:>14.1f}" if paper is not None else f"{'-':>14}"
        print(f"{name:<34}{mine:>14.1f}{ps}")
    for m in ("prefix", "batched"):
        print(f"candidates/s, {m}: {res[f'generate_candidates_per_s_{m}']:.1f} "
              f"(rounds, s: {res[f'generate_rounds_s_{m}']})")
    print(f"faster mode here: {res['generate_best_mode']}")
    if not a.skip_rm:
        ratio = res["generate_ms_per_candidate"] / res["rm_score_ms_per_candidate"]
        print(
            f"generation / scoring: {ratio:.0f}x here, "
            f"{PAPER_MS['generate_ms_per_candidate'] / PAPER_MS['rm_score_ms_per_candidate']:.0f}x "
            "in the paper"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
