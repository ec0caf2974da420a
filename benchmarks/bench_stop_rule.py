#!/usr/bin/env python
"""Before/after on CPU: the prefix mode with the old host-side first-line stop (a Python loop
over the last tokens, copied to the host each step) vs the device one (per-token tables).

Usage: ``python benchmarks/bench_stop_rule.py`` (SmolLM2, 4 headline prompts, n=16, 32 new
tokens, 2 alternating rounds; checks that both give the same texts).
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

torch.set_num_threads(1)
from bench_costs import _articles  # noqa: E402

from ttp_diag.gen.backends import TransformersBackend  # noqa: E402
from ttp_diag.gen.prompts import policy_prompt  # noqa: E402


def old_stop(self):
    from transformers import StoppingCriteria, StoppingCriteriaList
    tok = self._tok
    pieces = {}
    class _FirstLineDone(StoppingCriteria):
        def __init__(self):
            self.has_text = None
        def __call__(self, input_ids, scores, **kwargs):
            last = input_ids[:, -1].tolist()
            if self.has_text is None:
                self.has_text = [False] * len(last)
            done = []
            for i, t in enumerate(last):
                s = pieces.get(t)
                if s is None:
                    s = pieces[t] = tok.decode([t])
                if "\n" in s and (self.has_text[i] or s.split("\n")[0].strip()):
                    done.append(True)
                    continue
                if s.strip():
                    self.has_text[i] = True
                done.append(False)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
    return StoppingCriteriaList([_FirstLineDone()])

arts = _articles(7)
hist = [{"body": a, "output": h} for a, h in arts[:3]]
prompts = [policy_prompt("lamp4", a, history=hist) for a, _ in arts[3:7]]
be = TransformersBackend("smollm2", first_line=True, mode="prefix")
be.generate(prompts[:1], n=2, max_new_tokens=4, seed=0)
new_stop = TransformersBackend._newline_stop
times = {"before (host stop)": [], "after (device stop)": []}
same = None
for rep in range(2):
    order = list(times) if rep == 0 else list(times)[::-1]
    for name in order:
        TransformersBackend._newline_stop = old_stop if name.startswith("before") else new_stop
        t0 = time.perf_counter()
        out = be.generate(prompts, n=16, temperature=0.7, top_p=0.95, max_new_tokens=32, seed=1)
        times[name].append(time.perf_counter() - t0)
        if rep == 0:
            same = out if same is None else (same == out)
for name, ts in times.items():
    print(f"{name}: median {statistics.median(ts):.1f} s for 64 candidates = "
          f"{64 / statistics.median(ts):.2f} candidates/s (rounds {[round(t, 1) for t in ts]})")
print("same texts both ways (seed 1):", same)
