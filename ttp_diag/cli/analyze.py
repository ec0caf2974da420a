"""``ttp-diag analyze``: observed vs predicted Best-of-N curves and the four quantities."""

from __future__ import annotations

import json
import sys

from ttp_diag.cli._args import parse_ns


def register(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="observed vs predicted Best-of-N curves, alpha/beta/rho and relMAE per reward model",
        description="Analyse a score table (Parquet or CSV): exact Best-of-N curves per reward "
                    "model, the oracle calibration, the four diagnostic quantities and the "
                    "unified law's prediction with its relMAE.",
    )
    p.add_argument("table", help="score table (.parquet or .csv)")
    p.add_argument("--scores", default=None,
                   help="comma-separated score columns (default: every score_* column)")
    p.add_argument("--ns", default="1,5,10,15,20,30", help="candidate counts (default %(default)s)")
    p.add_argument("--shape", default="sqrt_log", choices=["sqrt_log", "gaussian", "kl"],
                   help="curve shape g(N) (default %(default)s)")
    p.add_argument("--split", default="val",
                   help="split to analyse; 'all' uses every row (default %(default)s)")
    p.add_argument("--collapse-threshold", type=float, default=0.1)
    p.add_argument("--rho-u", default="pooled", choices=["pooled", "mean_query"])
    p.add_argument("--refined", action="store_true",
                   help="include the collapsed users' correlation (Eq. 30)")
    p.add_argument("--pool", default="error", choices=["error", "clip"],
                   help="N larger than a pool: error (default) or use the whole pool")
    p.add_argument("--fit-mu", action="store_true",
                   help="fit mu from the oracle curve too (default: mu = the exact random "
                        "utility, only c*sigma is fitted)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def analyze_table(table, scores, ns, *, shape="sqrt_log", split="val", collapse_threshold=0.1,
                  rho_u="pooled", refined=False, pool="error", fit_mu=False) -> dict:
    """The numbers ``ttp-diag analyze`` prints, as a dict (also used by ``--json``)."""
    import ttp_diag as td

    scores = td.score_columns(table) if scores is None else scores
    if not scores:
        raise ValueError("the table has no score_* columns; pass --scores.")
    table = td.validate_score_table(table, scores=scores, split=split)
    kw = dict(split=None, pool=pool, validate=False)
    random = td.bon_curve(table, "random", ns, **kw)["utility"].to_numpy()
    oracle = td.bon_curve(table, "oracle", ns, **kw)["utility"].to_numpy()
    # mu is the exact random utility (g(1) = 0 for every shape); only c*sigma is fitted
    cal = td.calibrate(ns, oracle, shape=shape, mu=None if fit_mu else float(random[0]))
    out = {"ns": list(ns), "shape": shape, "n_rows": int(len(table)),
           "random": random.tolist(), "oracle": oracle.tolist(),
           "calibration": cal.to_dict(), "models": {}}
    for s in scores:
        obs = td.bon_curve(table, s, ns, **kw)["utility"].to_numpy()
        diag = td.diagnose(table, s, collapse_threshold=collapse_threshold, rho_u=rho_u,
                           split=None, validate=False)
        pred = td.predict_bon_curve(ns, diag, cal, refined=refined)
        with_gap = [i for i, n in enumerate(ns) if n > 1]
        out["models"][s] = {
            **diag.to_dict(),
            "observed": obs.tolist(),
            "predicted": pred.tolist(),
            "rel_mae": td.rel_mae(pred, obs),
            "capture_rate": (td.mean_capture_rate(obs[with_gap], oracle[with_gap],
                                                  random[with_gap]) if with_gap else None),
        }
    return out


def run(args) -> int:
    import pandas as pd

    from ttp_diag.io import read_table

    ns = parse_ns([args.ns])
    table = read_table(args.table)
    scores = [s.strip() for s in args.scores.split(",")] if args.scores else None
    res = analyze_table(table, scores, ns, shape=args.shape,
                        split=None if args.split == "all" else args.split,
                        collapse_threshold=args.collapse_threshold, rho_u=args.rho_u,
                        refined=args.refined, pool=args.pool, fit_mu=args.fit_mu)
    if args.json:
        json.dump(res, sys.stdout, indent=2, default=float)
        print()
        return 0
    cal = res["calibration"]
    print(f"{args.table}: {res['n_rows']} candidate rows; shape g(N) = {res['shape']}")
    print(f"oracle calibration: mu = {cal['mu']:.4f}, c*sigma = {cal['c_sigma']:.4f} "
          f"[{cal['c_sigma_ci'][0]:.4f}, {cal['c_sigma_ci'][1]:.4f}], R^2 = {cal['r2']:.3f}")
    curves = {"N": ns, "random": res["random"], "oracle": res["oracle"]}
    for s, m in res["models"].items():
        curves[f"{s} obs"] = m["observed"]
        curves[f"{s} pred"] = m["predicted"]
    print()
    print(pd.DataFrame(curves).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    rows = []
    for s, m in res["models"].items():
        rows.append({"model": s, "alpha": m["alpha"], "beta": m["beta"],
                     "rho_plus": m["rho_plus"], "rho_minus": m["rho_minus"],
                     "rho_eff": m["rho_eff"], "rho_total": m["rho_total"],
                     "relMAE %": 100 * m["rel_mae"],
                     "capture": m["capture_rate"]})
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for s, m in res["models"].items():
        for note in m["notes"]:
            print(f"note ({s}): {note}")
    return 0
