"""Gain error of the paper's law and of the refined prediction on the public tables (issue 21).

For every score column of ``scripts/public_data/{hanna,summeval}.csv.gz`` (built by
``scripts/public_data.py``): rho_eff, the gain error (``sum_N |pred - obs| / sum_N |obs -
random|``, N = 1..pool) of the paper's law (Prop. 4.4, ``sqrt_log`` shape, mu = exact random
utility), of the refined (concomitant) prediction in-sample and held out (5-fold over
inputs), and the one ``BestOfN(prediction="auto")`` selects, each with a percentile bootstrap
interval over inputs (inputs resampled with replacement, everything refitted per replicate).

    python paper_figures/public_data/report.py --n-boot 200 --out docs/public_data_results.csv
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import ttp_diag as td
from ttp_diag.io import atomic_write_csv

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _tables beside this script
from _tables import load  # noqa: E402


def _load(name: str) -> pd.DataFrame:
    t = load(name)
    return t[[c for c in t.columns if c != "doc"]]


def _errors(t: pd.DataFrame) -> pd.DataFrame:
    """Law and refined (in-sample) gain errors of every score column of one table."""
    fit = td.BestOfN(prediction="law").fit(t)
    ns, rnd = fit.ns_, fit._observed("random")
    rows = []
    for s in fit.scores_:
        obs = fit._observed(s)
        conc = td.fit_concomitant(t, s, split=None, n_boot=2, folds=0)
        rows.append({"score": s, "rho_eff": fit.diagnostics_[s].rho_eff,
                     "law": td.gain_error(fit.predict(ns, s), obs, rnd),
                     "refined": td.gain_error(conc.predict(ns), obs, rnd)})
    return pd.DataFrame(rows).set_index("score")


def _resample(t: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    users = t["user_id"].unique()
    pick = rng.choice(users, size=users.size, replace=True)
    parts = [t[t["user_id"] == u].assign(user_id=f"{u}#{i}", query_id=lambda d, i=i:
                                          d["query_id"] + f"#{i}")
             for i, u in enumerate(pick)]
    return pd.concat(parts, ignore_index=True)


def report(name: str, n_boot: int, seed: int) -> pd.DataFrame:
    t = _load(name)
    auto = td.BestOfN().fit(t)
    summ = auto.summary.set_index("score")
    point = _errors(t)
    rng = np.random.default_rng(seed)
    boots = [_errors(_resample(t, rng)) for _ in range(n_boot)]
    out = []
    for s in point.index:
        conc = auto.concomitant_[s]
        obs, rnd = auto._observed(s), auto._observed("random")
        row = {"dataset": name, "score": s, "n_inputs": t["user_id"].nunique(),
               "pool": int(t.groupby("query_id").size().max()),
               "rho_eff": point.loc[s, "rho_eff"]}
        for k in ("law", "refined"):
            vals = np.array([b.loc[s, k] for b in boots])
            row[f"gain_error_{k}"] = point.loc[s, k]
            row[f"{k}_ci_low"], row[f"{k}_ci_high"] = np.quantile(vals, [0.025, 0.975])
        row["gain_error_refined_held_out"] = td.gain_error(
            conc.predict(auto.ns_, held_out=True), obs, rnd)
        row["selected"] = auto.prediction_[s]
        row["gain_error_selected"] = summ.loc[s, "gain_error"]
        row["p_linear"] = conc.p_linear
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/public_data_results.csv")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    t0 = time.perf_counter()
    res = pd.concat([report(n, args.n_boot, args.seed) for n in ("hanna", "summeval")],
                    ignore_index=True)
    atomic_write_csv(res, args.out, index=False, float_format="%.4f")
    cols = ["dataset", "score", "rho_eff", "gain_error_law", "law_ci_low", "law_ci_high",
            "gain_error_refined", "refined_ci_low", "refined_ci_high",
            "gain_error_refined_held_out", "selected", "gain_error_selected", "p_linear"]
    print(res[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{args.n_boot} bootstrap replicates over inputs, seed {args.seed}, "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
