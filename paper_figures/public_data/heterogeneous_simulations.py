"""Gain error of the paper's law and of the refined prediction on simulated tables (issue 21).

Heterogeneous pools (``td.simulate_heterogeneous_table`` defaults: 40 users x 10 queries,
4 systems x 4 candidates, proxies ``between``/``within``/``both``) and i.i.d. pools
(``td.simulate_score_table``: 30 users x 8 queries x 16 candidates, models global/det/prob),
seeds 0..``--seeds``-1; ``BestOfN()`` defaults (``sqrt_log`` shape).

    python paper_figures/public_data/heterogeneous_simulations.py --seeds 4
"""

from __future__ import annotations

import argparse
import warnings

import pandas as pd

import ttp_diag as td


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = []
    for seed in range(args.seeds):
        for kind, table in (
                ("heterogeneous", td.simulate_heterogeneous_table(seed=seed)),
                ("iid", td.simulate_score_table(n_users=30, n_queries=8, n_candidates=16,
                                                seed=seed))):
            fit = td.BestOfN(prediction="law").fit(table)
            ns, rnd = fit.ns_, fit._observed("random")
            for s in fit.scores_:
                obs = fit._observed(s)
                conc = td.fit_concomitant(table, s)
                rows.append({"table": kind, "score": s, "seed": seed,
                             "rho_eff": fit.diagnostics_[s].rho_eff,
                             "law": td.gain_error(fit.predict(ns, s), obs, rnd),
                             "refined": td.gain_error(conc.predict(ns), obs, rnd),
                             "refined_held_out": td.gain_error(
                                 conc.predict(ns, held_out=True), obs, rnd),
                             "p_linear": conc.p_linear})
    res = pd.DataFrame(rows)
    agg = res.groupby(["table", "score"]).agg(
        rho_eff=("rho_eff", "mean"), law_min=("law", "min"), law_max=("law", "max"),
        refined_min=("refined", "min"), refined_max=("refined", "max"),
        held_out_max=("refined_held_out", "max"),
        rejected=("p_linear", lambda p: int((p < 0.05).sum())))
    print(agg.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"{args.seeds} seeds; 'rejected': tables where the law's linearity test has p < 0.05")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
