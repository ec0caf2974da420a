"""Coverage of the diagnostics' intervals and size of the null tests on known-truth simulations.

For each setting of issue 8 and each of ``--seeds`` seeds: simulate a score table with known
collapse and hacking, run ``diagnose(..., ci=0.95)`` and record whether the true alpha / beta lie
inside the reported 95% intervals, and whether the null tests reject at 5%. Also the prediction
error (gain error: |pred - obs| summed over N relative to the observed gain; a flat prediction
scores 1) of the unrefined law, Eq. 30 with the paper's pooled rho_collapsed, Eq. 30 with the
within-query rho_collapsed (default), and query- vs user-weighted laws.

Usage: ``python benchmarks/bench_coverage.py --seeds 50 [--n-boot 200]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import ttp_diag as td
from ttp_diag.simulate import SimulatedRM

NS = [1, 2, 4, 8, 16, 30]
BASE = dict(n_users=40, n_queries=10, n_candidates=30)
SETTINGS = {
    "healthy": (SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.5), {}),
    "noise_only_rho0.15": (SimulatedRM(alpha=0.0, beta=0.0, rho_plus=0.15), {}),
    "alpha0.25_difficulty": (SimulatedRM(alpha=0.25, beta=0.0, rho_plus=0.6, rho_collapsed=0.05,
                                         collapse="difficulty"), {"query_mu_sd": 0.05}),
    "beta0.3": (SimulatedRM(alpha=0.0, beta=0.3, rho_plus=0.6, rho_minus=-0.3), {}),
    "pools8": (SimulatedRM(alpha=0.25, beta=0.3, rho_plus=0.6, rho_minus=-0.3),
               {"n_candidates": 8}),
    "zero40": (SimulatedRM(alpha=0.25, beta=0.3, rho_plus=0.6, rho_minus=-0.3),
               {"zero_rate": 0.4}),
    "unequal_queries": (SimulatedRM(alpha=0.25, beta=0.3, rho_plus=0.6, rho_minus=-0.3),
                        {"n_queries": "unequal"}),
    # issue 20: each query hacked independently (simulate_score_table hacks exactly
    # round(beta * q) of every user's queries, which hid that the first collapse null rejected
    # here); no collapsed user, so the collapse test should reject in 5% of seeds
    "beta0.3_random_no_collapse": (SimulatedRM(alpha=0.0, beta=0.3, rho_plus=0.6,
                                               rho_minus=-0.3), {"hacking": "random"}),
}


def random_hacking_table(rm: SimulatedRM, seed: int, n_users: int, n_queries: int,
                         n_candidates: int) -> tuple[pd.DataFrame, float]:
    """No collapse; each query hacked with probability ``rm.beta`` (rho_minus), else rho_plus.
    Returns the table and the true user-weighted hacking rate."""
    rng = np.random.default_rng(seed)
    nq = n_users * n_queries
    user = np.repeat(np.arange(n_users), n_queries)
    hacked = rng.random(nq) < rm.beta
    rho = np.where(hacked, rm.rho_minus, rm.rho_plus)[:, None]
    x = rng.standard_normal((nq, n_candidates))
    s = rho * x + np.sqrt(1.0 - rho**2) * rng.standard_normal((nq, n_candidates))
    t = pd.DataFrame({"user_id": np.repeat(user, n_candidates),
                      "query_id": np.repeat(np.arange(nq), n_candidates),
                      "cand_id": np.tile(np.arange(n_candidates), nq),
                      "reward": 0.15 + 0.05 * x.ravel(), "score_x": s.ravel()})
    beta = float(np.bincount(user, weights=hacked).mean() / n_queries)
    return t, beta


def truth(rm: SimulatedRM, table: pd.DataFrame, n_users: int) -> tuple[float, float]:
    """True alpha and user-weighted true beta of the simulated model (val split)."""
    alpha = round(rm.alpha * n_users) / n_users
    val = table[table["split"] == "val"]
    per_user = val.groupby("user_id").agg(nq=("query_id", "nunique"), d=("difficulty", "first"))
    order = per_user["d"].rank(method="first", ascending=False)
    active = order > round(rm.alpha * n_users)
    nq = per_user.loc[active, "nq"].to_numpy()
    beta = float(np.mean(np.round(rm.beta * nq) / nq)) if active.any() else 0.0
    return alpha, beta


def one(setting: str, seed: int, n_boot: int) -> dict:
    rm, extra = SETTINGS[setting]
    kw = {**BASE, **extra}
    if kw.get("n_queries") == "unequal":
        kw["n_queries"] = np.random.default_rng(1000 + seed).integers(2, 21, kw["n_users"])
    pool = kw["n_candidates"]
    ns = [n for n in NS if n < pool] + [pool]
    if kw.pop("hacking", None) == "random":
        t, b_true = random_hacking_table(rm, seed, **kw)
        a_true = 0.0
    else:
        t = td.simulate_score_table(models={"x": rm}, seed=seed, **kw)
        a_true, b_true = truth(rm, t, kw["n_users"])
    d = td.diagnose(t, "score_x", ci=0.95, n_boot=n_boot, n_null=500, seed=seed, ns=ns)
    dq = td.diagnose(t, "score_x", weights="query", rho_u="pooled", n_null=0, ns=ns)
    cur = d.curve
    obs, rnd = cur["observed"].to_numpy(), cur["random"].to_numpy()
    cal = td.calibrate(ns, cur["oracle"].to_numpy(), mu=float(rnd[0]))

    def err(**kwargs) -> float:
        return td.gain_error(td.predict_bon_curve(ns, calibration=cal, **kwargs), obs, rnd)

    base = dict(alpha=d.alpha, beta=d.beta, rho_plus=d.rho_plus, rho_minus=d.rho_minus)
    paper = dict(alpha=dq.alpha, beta=dq.beta, rho_plus=dq.rho_plus, rho_minus=dq.rho_minus)

    def inside(name: str, value: float) -> bool:
        lo, hi = d.intervals[name]
        return bool(lo - 1e-12 <= value <= hi + 1e-12)

    return {
        "setting": setting, "seed": seed,
        "alpha_cover": inside("alpha", a_true),
        "alpha_corr_cover": inside("alpha_corrected", a_true),
        "beta_cover": inside("beta", b_true),
        "beta_corr_cover": inside("beta_corrected", b_true),
        "alpha_reject": d.null["alpha_p"] < 0.05,
        "beta_reject": d.null["beta_p"] < 0.05 if np.isfinite(d.null["beta_p"]) else False,
        "alpha_hat": d.alpha, "alpha_true": a_true, "beta_hat": d.beta,
        "beta_corr_hat": d.beta_corrected, "beta_true": b_true,
        "alpha_pooled": d.alpha_pooled,
        "ge_unrefined": err(rho_collapsed=0.0, **base),
        "ge_eq30_pooled": err(rho_collapsed=d.rho_collapsed_pooled, **base),
        "ge_eq30_within": err(rho_collapsed=d.rho_collapsed, **base),
        "ge_paper_weights": err(rho_collapsed=0.0, **paper),
        "ge_flat": td.gain_error(rnd, obs, rnd),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS))
    ap.add_argument("--out", default=None, help="optional CSV of every run")
    args = ap.parse_args()
    rows = []
    t0 = time.perf_counter()
    for s in args.settings:
        for seed in range(args.seeds):
            rows.append(one(s, seed, args.n_boot))
        part = pd.DataFrame(rows)
        part = part[part["setting"] == s]
        print(f"{s}: {args.seeds} seeds done ({time.perf_counter() - t0:.0f} s); coverage alpha "
              f"{part['alpha_cover'].mean():.2f} (corrected "
              f"{part['alpha_corr_cover'].mean():.2f}), beta {part['beta_cover'].mean():.2f}, "
              f"beta_corrected {part['beta_corr_cover'].mean():.2f}; null rejections alpha "
              f"{part['alpha_reject'].mean():.2f}, beta {part['beta_reject'].mean():.2f}",
              flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    agg = df.groupby("setting", sort=False).agg(
        alpha_true=("alpha_true", "mean"), alpha_hat=("alpha_hat", "mean"),
        alpha_pooled=("alpha_pooled", "mean"),
        cover_alpha=("alpha_cover", "mean"), cover_alpha_corr=("alpha_corr_cover", "mean"),
        beta_true=("beta_true", "mean"), beta_hat=("beta_hat", "mean"),
        beta_corr=("beta_corr_hat", "mean"),
        cover_beta=("beta_cover", "mean"), cover_beta_corr=("beta_corr_cover", "mean"),
        reject_alpha_null=("alpha_reject", "mean"), reject_beta_null=("beta_reject", "mean"))
    pd.set_option("display.width", 200)
    print(f"\nCoverage of 95% intervals and rejection rate of the 5% null tests "
          f"({args.seeds} seeds per setting, n_boot={args.n_boot}):")
    print(agg.round(3).to_string())
    ge = df.groupby("setting", sort=False)[[c for c in df.columns if c.startswith("ge_")]].median()
    print("\nMedian gain error (|pred - obs| / observed gain over random; flat prediction = 1):")
    print(ge.round(3).to_string())
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
