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

    python benchmarks/bench_costs.py             # MiniLM RM + SmolLM2 policy, 2-4 min, 1 core
    python benchmarks/bench_costs.py --quick         # tiny models
    python benchmarks/bench_costs.py --threads 2 --json costs.json
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
    rm.predict(score_texts[:8], users=["bench"] * 8)  # warm-up
    t0 = time.perf_counter()
    rm.predict(score_texts, users=["bench"] * n_score, return_var=True)
    score_s = time.perf_counter() - t0
    return {
        "rm_backbone": "tiny random BERT" if quick else "all-MiniLM-L6-v2 + LoRA r=8",
        "rm_train_samples": n_train,
        "rm_train_ms_per_sample": 1000 * train_s / n_train,
        "rm_score_candidates": n_score,
        "rm_score_ms_per_candidate": 1000 * score_s / n_score,
    }


def bench_generation(
    n_articles: int, n: int, max_new_tokens: int, temperature: float, quick: bool
) -> dict:
    from ttp_diag.gen.backends import TransformersBackend, tiny_random_backend
    from ttp_diag.gen.prompts import policy_prompt

    arts = _articles(n_articles + 3)
    hist = [{"body": a, "output": h} for a, h in arts[:3]]
    prompts = [policy_prompt("lamp4", a, history=hist) for a, _ in arts[3 : 3 + n_articles]]
    if quick:
        be, name = tiny_random_backend(first_line=True), "tiny random Llama"
    else:
        be, name = (
            TransformersBackend("smollm2", first_line=True),
            "SmolLM2-135M-Instruct (GGUF->fp32)",
        )
    be.generate(prompts[:1], n=2, max_new_tokens=4, seed=0)  # load + warm-up
    t0 = time.perf_counter()
    outs = be.generate(
        prompts, n=n, temperature=temperature, top_p=0.95, max_new_tokens=max_new_tokens, seed=1
    )
    s = time.perf_counter() - t0
    n_cand = sum(len(o) for o in outs)
    return {
        "policy": name,
        "gen_articles": n_articles,
        "gen_samples_per_article": n,
        "gen_max_new_tokens": max_new_tokens,
        "generate_ms_per_candidate": 1000 * s / n_cand,
        "generate_s_per_article": s / n_articles,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="tiny random models (plumbing check)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-samples", type=int, default=128)
    ap.add_argument("--score-candidates", type=int, default=256)
    ap.add_argument("--articles", type=int, default=3)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{a.threads} torch thread(s)",
        "torch": torch.__version__,
    }
    res.update(bench_rm(a.train_samples, a.score_candidates, a.quick, a.threads))
    res.update(bench_generation(a.articles, a.n, a.max_new_tokens, a.temperature, a.quick))
    rows = [
        (
            "RM training (ms / sample)",
            res["rm_train_ms_per_sample"],
            PAPER_MS["rm_train_ms_per_sample"],
        ),
        (
            "RM scoring (ms / candidate)",
            res["rm_score_ms_per_candidate"],
            PAPER_MS["rm_score_ms_per_candidate"],
        ),
        (
            "generation (ms / candidate)",
            res["generate_ms_per_candidate"],
            PAPER_MS["generate_ms_per_candidate"],
        ),
    ]
    ratio = res["generate_ms_per_candidate"] / res["rm_score_ms_per_candidate"]
    print(f"machine: {res['machine']}, torch {res['torch']}")
    print(f"reward model: {res['rm_backbone']}; policy: {res['policy']}")
    print(f"{'cost':<30}{'this machine':>14}{'paper (H100)':>14}")
    for name, mine, paper in rows:
        print(f"{name:<30}{mine:>14.1f}{paper:>14.1f}")
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
