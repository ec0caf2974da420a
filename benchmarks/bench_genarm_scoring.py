"""GenARM scoring speed on this machine: seconds per text for a small batch.

Builds GenARM on its default backbone (SmolLM2-135M-Instruct with LoRA rank 8), fits it on
8 pairs for one step (the cost of scoring does not depend on the LoRA weights' values), then
scores ``--n`` headline-length texts ``--reps`` times and prints the median time per batch
and per text. Usage: ``python benchmarks/bench_genarm_scoring.py --n 32 --reps 3``.
"""

import argparse
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import torch

    from ttp_diag.gen.reward_models import GenARM

    rng = np.random.default_rng(0)
    words = ["senate", "vote", "budget", "storm", "city", "mayor", "team", "wins", "record",
             "study", "finds", "new", "health", "school", "plan", "court", "rules", "market",
             "falls", "star", "film", "season", "fans"]
    texts = [" ".join(rng.choice(words, 12)).capitalize() for _ in range(args.n)]
    pairs = pd.DataFrame(dict(user_id="u", split="train", prompt="", source="bench",
                              chosen=texts[:8], rejected=texts[8:16]))
    t0 = time.perf_counter()
    m = GenARM(epochs=1, device="cpu").fit(pairs)
    print(f"load + 1 training step on 8 pairs: {time.perf_counter() - t0:.1f} s")
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        m.score(texts)
        times.append(time.perf_counter() - t)
    med = float(np.median(times))
    print(f"GenARM score, {args.n} texts of 12 words, CPU ({torch.get_num_threads()} threads): "
          f"median {med:.2f} s per batch over {args.reps} reps, {1e3 * med / args.n:.0f} ms/text")


if __name__ == "__main__":
    main()
