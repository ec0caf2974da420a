"""Held-out N on the public tables: predict N past a half pool (issue 21).

Each input keeps a random half of its systems (``m = pool // 2``); the paper's law
(``BestOfN(ns=1..m, prediction="law")``) and the refined prediction fitted on the half pools
then predict N = 1..pool of the *full* pools: ``refined`` continues past ``m`` with the law's
increments (what ``BestOfN`` does), ``refined_own_tail`` with its own top segment
(``ConcomitantFit.predict``), and the gain error is computed on the held-out N
(m < N <= pool) against the exact full-pool curve. Repeated over ``--repeats`` random halves.

    python paper_figures/public_data/extrapolation.py --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import ttp_diag as td

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _tables beside this script
from _tables import load  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="CSV of every (dataset, score, repeat)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = []
    for name in ("hanna", "summeval"):
        t = load(name)
        t = t[[c for c in t.columns if c != "doc"]]
        pool = int(t.groupby("query_id").size().min())
        m = pool // 2
        full = td.BestOfN(ns=list(range(1, pool + 1)), prediction="law").fit(t)
        ns = full.ns_
        held = [i for i, n in enumerate(ns) if n > m]
        rnd = full._observed("random")
        for rep in range(args.repeats):
            rng = np.random.default_rng(rep)
            # a random half of every input's systems (a uniform key, the m smallest kept)
            key = t.assign(_k=rng.random(len(t))).groupby("query_id")["_k"].rank()
            keep = t[key.to_numpy() <= m].reset_index(drop=True)
            half = td.BestOfN(ns=list(range(1, m + 1)), prediction="law").fit(keep)
            for s in full.scores_:
                obs = full._observed(s)
                law = half.predict(ns, s)
                ref = td.fit_concomitant(keep, s, folds=0, n_boot=2).predict(ns)
                # what BestOfN(prediction="refined") does past the pool: the law's increments
                hyb = ref.copy()
                hyb[m:] = ref[m - 1] + law[m:] - law[m - 1]
                rows.append({"dataset": name, "score": s, "repeat": rep, "m": m, "pool": pool,
                             "rho_eff": full.diagnostics_[s].rho_eff,
                             **{f"{k}_heldout_N": td.gain_error(p[held], obs[held], rnd[held])
                                for k, p in (("law", law), ("refined_own_tail", ref),
                                             ("refined", hyb))}})
    res = pd.DataFrame(rows)
    if args.out:
        from ttp_diag.io import atomic_write_csv

        atomic_write_csv(res, args.out, index=False, float_format="%.4f")
    agg = res.groupby(["dataset", "score"], sort=False).agg(
        rho_eff=("rho_eff", "first"), m=("m", "first"), pool=("pool", "first"),
        law=("law_heldout_N", "mean"), law_sd=("law_heldout_N", "std"),
        refined=("refined_heldout_N", "mean"), refined_sd=("refined_heldout_N", "std"),
        refined_own_tail=("refined_own_tail_heldout_N", "mean"))
    print(agg.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"mean over {args.repeats} random half pools (sd across halves)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
