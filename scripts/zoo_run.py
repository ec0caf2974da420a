"""Train the reward-model zoo on the 10 real HuffPost users of the demo table and diagnose it.

Protocol (second paper, section 3.1, on this package's data): pairs are built from the
labelled candidate pools of the demo table (higher vs lower true reward, gap >= 0.1, at most
20 pairs per query); the train-split pairs are split by a seeded user split into 7 training
users (their train pairs train the models) and 3 adaptation users (half of their train-split
queries are the support set used to adapt, the other half the held-out query set). Every
model then scores every candidate, the score table gets one ``score_<name>`` column per
model, and the package's diagnostics read them.

The LM-based models (genarm, pdpo: one forward pass per text) score only the rows the
report reads (val split and the held-out pairs' texts); their other rows are NaN.

Reported per model: held-out pair ranking accuracy (training users: pairs from their
val-split pools; adaptation users: their query pairs), alpha, beta, rho_eff (diagnose, val
split), Best-of-N gain at the largest N (pool='clip'), training seconds.

Usage: ``python scripts/zoo_run.py --out runs/zoo`` (resumes: a finished model is reused).
Model settings: ``--set genarm.length_norm=true --set genarm.beta=2.0`` (values parsed as
JSON, else kept as strings); they update ``SETTINGS`` and are written to ``settings.json``
in the output folder. Use a new ``--out`` for new settings: a finished model is reused.
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
from ttp_diag.gen.reward_models import REGISTRY, pairs_from_pools, split_users

# CPU budget (15 minutes per model on this machine): GenARM trains on 800 pairs (default
# 400); P-DPO on 400 pairs, and it adapts each new user's token
# for 2 epochs over at most 32 support pairs (its defaults: 4 and 64).
SETTINGS = {"genarm": {"verbose": True, "max_train_pairs": 800},
            "pdpo": {"verbose": True, "adapt_epochs": 2, "max_support_pairs": 32}}

LM_MODELS = {"genarm", "pdpo"}

ZOO = ["mpu", "mpu_avg", "lore", "lore_alt", "pref", "pal", "vpl", "global_bt", "global_bt_v2",
       "genarm", "pdpo"]


def _parse_sets(items: list[str]) -> dict[str, dict]:
    """``["genarm.beta=2.0", ...]`` -> ``{"genarm": {"beta": 2.0}}`` merged over SETTINGS."""
    out = {k: dict(v) for k, v in SETTINGS.items()}
    for item in items:
        key, sep, val = item.partition("=")
        name, dot, param = key.partition(".")
        if not sep or not dot or name not in REGISTRY:
            raise SystemExit(f"--set {item!r}: expected MODEL.PARAM=VALUE with MODEL one of "
                             f"{sorted(REGISTRY)}, e.g. --set genarm.beta=2.0")
        if param not in REGISTRY[name]._param_names():
            raise SystemExit(f"--set {item!r}: {name} has no setting {param!r}; valid: "
                             f"{sorted(REGISTRY[name]._param_names())}")
        try:
            v = json.loads(val)
        except json.JSONDecodeError:
            v = val
        out.setdefault(name, {})[param] = v
    return out


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


def _gain_ci(table: pd.DataFrame, col: str, n_boot: int = 2000, seed: int = 0):
    """Percentile bootstrap over users of the Best-of-16 gain (user-level resampling)."""
    pu = td.bon_curve(table, col, [1, 16], per_user=True, pool="clip")
    g = pu.pivot(index="user_id", columns="n", values="utility")
    gain = (g[16] - g[1]).to_numpy()
    rng = np.random.default_rng(seed)
    boots = rng.choice(gain, (n_boot, len(gain))).mean(1)
    return np.quantile(boots, [0.025, 0.975])


def _row(name, acc, held, d, u, table, secs, score_s=float("nan")) -> dict:
    lo, hi = _wilson(int(acc.sum()), len(acc))
    glo, ghi = _gain_ci(table, f"score_{name}")
    who = held.who.to_numpy()
    iv = d.intervals or {}
    nan2 = (float("nan"), float("nan"))
    return dict(model=name, acc_heldout=acc.mean(), acc_lo=lo, acc_hi=hi, n_pairs=len(acc),
                acc_train_users=acc[who == "train_users"].mean(),
                acc_adapt_users=acc[who == "adapt_users"].mean(),
                alpha=d.alpha, alpha_lo=iv.get("alpha", nan2)[0], alpha_hi=iv.get("alpha", nan2)[1],
                alpha_null=d.null["alpha_null"], alpha_p=d.null["alpha_p"],
                beta=d.beta, beta_lo=iv.get("beta", nan2)[0], beta_hi=iv.get("beta", nan2)[1],
                beta_null=d.null["beta_null"], beta_p=d.null["beta_p"],
                rho_eff=d.rho_eff, rho_eff_lo=iv.get("rho_eff", nan2)[0],
                rho_eff_hi=iv.get("rho_eff", nan2)[1],
                bon_gain_N16=float(u.loc[16] - u.loc[1]), gain_lo=glo, gain_hi=ghi,
                train_s=secs, score_s=score_s)


def _pair_acc(held: pd.DataFrame, scored: pd.DataFrame, col: str, m) -> np.ndarray:
    """Chosen-beats-rejected on held-out pairs, reading the table's scores (one model call
    per distinct (user, text)); texts not in the table are scored directly."""
    look = scored.drop_duplicates(["user_id", "rm_text"]).set_index(["user_id", "rm_text"])[col]
    out = []
    for side in ("chosen", "rejected"):
        v = look.reindex(pd.MultiIndex.from_arrays([held.user_id, held[side]])).to_numpy()
        miss = np.isnan(v)
        if miss.any():
            v[miss] = m.score(held.loc[miss, side].tolist(), held.user_id.to_numpy()[miss])
        out.append(v)
    return out[0] > out[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/zoo")
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                    help="model setting, e.g. genarm.length_norm=true (repeatable)")
    args = ap.parse_args()
    settings = _parse_sets(args.set)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from ttp_diag.io import atomic_write_text

    atomic_write_text(out / "settings.json", json.dumps(
        {k: v for k, v in settings.items() if k in args.models.split(",")}, indent=1))
    import torch

    torch.set_num_threads(args.threads)
    demo = td.load_demo()
    t = demo.drop(columns=["score_global", "score_det", "score_prob", "var_prob"])
    t["rm_text"] = t["text"]  # the demo table keeps headlines only (no article body)
    train_pairs = pairs_from_pools(t, split="train", seed=args.seed)
    pairs = split_users(train_pairs, adapt_frac=0.3, support_frac=0.5, seed=args.seed)
    val_pairs = pairs_from_pools(t, split="val", seed=args.seed)
    adapt_users = sorted(pairs.loc[pairs.role == "adapt", "user_id"].unique())
    held = pd.concat([val_pairs[~val_pairs.user_id.isin(adapt_users)].assign(who="train_users"),
                      pairs[pairs.split == "query"].assign(who="adapt_users")])
    print(f"pairs: {len(pairs)} train-split ({(pairs.split == 'train').sum()} train, "
          f"{(pairs.split == 'support').sum()} support, {(pairs.split == 'query').sum()} query); "
          f"{len(held)} held out; adaptation users {adapt_users}", flush=True)
    rows = []
    scored = t.copy()
    # Rows the report reads: the val split (diagnostics, Best-of-N) and the texts of the
    # held-out pairs. The LM-based models (a forward pass per text) score only these.
    keys = pd.MultiIndex.from_arrays([scored.user_id, scored.rm_text])
    needed = ((scored.split == "val").to_numpy()
              | keys.isin(pd.MultiIndex.from_arrays([held.user_id, held.chosen]))
              | keys.isin(pd.MultiIndex.from_arrays([held.user_id, held.rejected])))
    print(f"rows scored by the LM models: {needed.sum()} of {len(scored)}", flush=True)
    for name in args.models.split(","):
        col = f"score_{name}"
        t0 = time.perf_counter()
        path = out / name
        if (path / "config.json").exists():
            m = REGISTRY[name].load(path)
            secs = json.loads((out / f"{name}.seconds").read_text())
        else:
            m = REGISTRY[name](seed=args.seed, **settings.get(name, {})).fit(pairs)
            secs = time.perf_counter() - t0
            m.save(path)
            (out / f"{name}.seconds").write_text(json.dumps(secs))
        cache = out / f"{name}.scores.parquet"  # scoring is resumable too
        if cache.exists():
            scored[col] = pd.read_parquet(cache)[col].to_numpy()
            score_s = json.loads((out / f"{name}.score_seconds").read_text())
        else:
            t1 = time.perf_counter()
            rows_ = np.ones(len(scored), bool) if name not in LM_MODELS else needed
            vals = np.full(len(scored), np.nan)
            vals[rows_] = m.score(scored.rm_text[rows_].tolist(), scored.user_id.to_numpy()[rows_])
            scored[col] = vals
            score_s = time.perf_counter() - t1
            tmp = cache.with_suffix(".tmp")
            scored[[col]].to_parquet(tmp, index=False)
            os.replace(tmp, cache)
            atomic_write_text(out / f"{name}.score_seconds", json.dumps(score_s))
        acc = _pair_acc(held, scored, col, m)
        d = td.diagnose(scored, col, ci=0.95)
        ns = [1, 2, 4, 8, 16]
        curve = td.bon_curve(scored, col, ns, pool="clip")
        u = curve.set_index("n")["utility"]
        rows.append(_row(name, acc, held, d, u, scored, secs, score_s))
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()},
              flush=True)
        del m
    # Reference rows: the demo table's own LoRA reward models (pointwise, trained on every
    # user's train split: no adaptation users), scored on the same held-out pairs.
    for name in ("global", "det", "prob"):
        col = f"score_{name}"
        look = demo.drop_duplicates(["query_id", "text"]).set_index(["query_id", "text"])[col]
        sc_c = look.reindex(pd.MultiIndex.from_arrays([held.query_id, held.chosen])).to_numpy()
        sc_r = look.reindex(pd.MultiIndex.from_arrays([held.query_id, held.rejected])).to_numpy()
        acc = sc_c > sc_r
        d = td.diagnose(demo, col, ci=0.95)
        u = td.bon_curve(demo, col, [1, 2, 4, 8, 16], pool="clip").set_index("n")["utility"]
        rows.append(_row(f"{name} (demo, LoRA)", acc, held, d, u, demo.rename(
            columns={col: f"score_{name} (demo, LoRA)"}), float("nan")))
    res = pd.DataFrame(rows)
    res.to_csv(out / "zoo_results.csv", index=False)
    scored.drop(columns=["rm_text"]).to_parquet(out / "zoo_scores.parquet", index=False)
    print(res.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
