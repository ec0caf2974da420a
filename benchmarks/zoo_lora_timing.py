"""LoRA-backbone timing for one zoo family: Global-RM (``global_bt``) with LoRA rank 8.

The zoo's families train small heads on *frozen* backbone features (a departure from the
second paper, which trains LoRA rank 8 on the backbone). This script measures what the
paper's setting costs on this CPU for one family: the ``global_bt`` head (MLP, 64 hidden
units, on the last token's state) trained jointly with LoRA (rank 8, alpha 16, on the
attention and MLP projections) with Bradley-Terry on the training pairs of the old
``scripts/zoo_run.py`` (headlines without their article, same seeded user split), then the
held-out pair ranking accuracy on its 1,276 held-out pairs. Measured before the
reward-model contract (issue 20) gave the zoo the article as prompt; ``ttp-diag zoo``
replaced that script; the JSON files next to this one are its results.

Backbones: MiniLM (``--backbone minilm``, trained ``--epochs`` over all training pairs) and
SmolLM2-135M (``--backbone smollm2``: with ``--max-steps`` it only times training steps and
extrapolates; a full epoch does not fit the 15-minute budget on this CPU).

Usage: ``python benchmarks/zoo_lora_timing.py --backbone minilm --out runs/zoo_lora``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import ttp_diag as td
from ttp_diag.gen.reward_models import pairs_from_pools, split_pair_users

_TARGETS = {"minilm": ["query", "key", "value", "dense"],
            "smollm2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                        "down_proj"]}


def _pairs(seed: int):
    t = td.load_demo()
    t["rm_text"] = t["text"]
    pairs = split_pair_users(pairs_from_pools(t, split="train", seed=seed), adapt_frac=0.3,
                        support_frac=0.5, seed=seed)
    val = pairs_from_pools(t, split="val", seed=seed)
    adapt = sorted(pairs.loc[pairs.role == "adapt", "user_id"].unique())
    held = pd.concat([val[~val.user_id.isin(adapt)], pairs[pairs.split == "query"]])
    return pairs[pairs.split == "train"], held


class LoRABT:
    """Backbone + LoRA rank 8 + MLP head on the last non-padding token, Bradley-Terry."""

    def __init__(self, kind: str, seed: int = 0, max_length: int = 48):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel, AutoTokenizer

        if kind == "minilm":
            from ttp_diag.gen.reward_models import default_backbone

            path = default_backbone()
        else:
            from ttp_diag.gen.backends import convert_gguf, smollm2_gguf_path

            path = str(convert_gguf(smollm2_gguf_path()))
        self.tok = AutoTokenizer.from_pretrained(path)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "right"
        torch.manual_seed(seed)
        enc = AutoModel.from_pretrained(path)
        for p in enc.parameters():
            p.requires_grad_(False)
        cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=_TARGETS[kind])
        self.enc = get_peft_model(enc, cfg)
        d = enc.config.hidden_size
        self.head = torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.GELU(),
                                        torch.nn.Linear(64, 1))
        self.max_length = max_length

    def reward(self, texts):
        import torch

        b = self.tok(list(texts), padding=True, truncation=True, max_length=self.max_length,
                     return_tensors="pt")
        h = self.enc(**b).last_hidden_state
        last = b["attention_mask"].sum(1) - 1
        return self.head(h[torch.arange(len(texts)), last]).squeeze(-1)

    def param_groups(self, lr: float, head_lr: float):
        return [{"params": [p for p in self.enc.parameters() if p.requires_grad], "lr": lr},
                {"params": list(self.head.parameters()), "lr": head_lr}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", choices=["minilm", "smollm2"], default="minilm")
    ap.add_argument("--out", default="runs/zoo_lora")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--head-lr", type=float, default=5e-3)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, held = _pairs(args.seed)
    t0 = time.perf_counter()
    m = LoRABT(args.backbone, seed=args.seed)
    load_s = time.perf_counter() - t0
    opt = torch.optim.AdamW(m.param_groups(args.lr, args.head_lr), weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    c, r = train.chosen.tolist(), train.rejected.tolist()
    steps, step_s, losses = 0, [], []
    t_train = time.perf_counter()
    for _ in range(args.epochs):
        order = rng.permutation(len(c))
        for s in range(0, len(order), args.batch_size):
            if args.max_steps is not None and steps >= args.max_steps:
                break
            b = order[s:s + args.batch_size]
            ts = time.perf_counter()
            rw = m.reward([c[i] for i in b] + [r[i] for i in b])
            loss = F.softplus(-(rw[: len(b)] - rw[len(b):])).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_s.append(time.perf_counter() - ts)
            losses.append(float(loss.detach()))
            steps += 1
            if steps % 20 == 0:
                print(f"step {steps}: loss(last 20) {np.mean(losses[-20:]):.3f}, "
                      f"{np.mean(step_s[-20:]):.2f} s/step", flush=True)
    train_s = time.perf_counter() - t_train
    steps_per_epoch = int(np.ceil(len(c) / args.batch_size))
    res = dict(backbone=args.backbone, lora_r=8, epochs=args.epochs, lr=args.lr,
               head_lr=args.head_lr, n_train_pairs=len(c), batch_size=args.batch_size,
               steps=steps, steps_per_epoch=steps_per_epoch, load_s=load_s, train_s=train_s,
               s_per_step=float(np.median(step_s)),
               epoch_s_extrapolated=float(np.median(step_s)) * steps_per_epoch,
               loss_first20=float(np.mean(losses[:20])), loss_last20=float(np.mean(losses[-20:])))
    full = args.max_steps is None or steps >= steps_per_epoch * args.epochs
    if full:
        texts = list(dict.fromkeys(held.chosen.tolist() + held.rejected.tolist()))
        ts = time.perf_counter()
        sc = {}
        with torch.inference_mode():
            order = np.argsort([len(x) for x in texts])
            for s in range(0, len(texts), 64):
                b = [texts[i] for i in order[s:s + 64]]
                sc.update(zip(b, m.reward(b).double().numpy(), strict=True))
        res["score_s"] = time.perf_counter() - ts
        res["n_scored_texts"] = len(texts)
        acc = np.array([sc[a] > sc[b] for a, b in zip(held.chosen, held.rejected, strict=True)])
        k, n = int(acc.sum()), len(acc)
        p, z = k / n, 1.96
        cen = (p + z * z / (2 * n)) / (1 + z * z / n)
        h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        res.update(acc_heldout=p, acc_lo=cen - h, acc_hi=cen + h, n_pairs=n)
    print(json.dumps(res, indent=1), flush=True)
    f = out / f"global_bt_lora_{args.backbone}.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, f)


if __name__ == "__main__":
    main()
