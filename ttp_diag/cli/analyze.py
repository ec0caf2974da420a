"""``ttp-diag analyze``: observed vs predicted Best-of-N curves and the four quantities."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ttp_diag.cli._args import add_map_flag, check_cli_bootstrap, parse_ns, split_list
from ttp_diag.theory.extremes import DEFAULT_SHAPE

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="observed vs predicted Best-of-N curves, alpha/beta/rho and relMAE per reward model",
        description="Analyse a score table (Parquet or CSV): exact Best-of-N curves per reward "
                    "model, the oracle calibration, the four diagnostic quantities and the "
                    "unified law's prediction with its relMAE.",
    )
    p.add_argument("table", help="score table (.parquet, .csv or .jsonl)")
    add_map_flag(p)
    p.add_argument("--scores", default=None,
                   help="comma-separated score columns (default: every score_* column)")
    p.add_argument("--ns", default=None,
                   help="comma-separated candidate counts (default: every N up to the median "
                        "pool size, as `ttp-diag demo` and td.BestOfN use, so that both "
                        "report the same capture)")
    p.add_argument("--shape", default=DEFAULT_SHAPE, choices=["sqrt_log", "gaussian", "kl"],
                   help="curve shape g(N) (default %(default)s)")
    p.add_argument("--split", default="val",
                   help="split to analyse; 'all' uses every row (default %(default)s)")
    p.add_argument("--collapse-threshold", type=float, default=0.1,
                   help="rho_u below which a user counts as collapsed (the paper's tau_c; "
                        "default %(default)s)")
    p.add_argument("--rho-u", default="mean_query", choices=["mean_query", "pooled"],
                   help="collapse measured within query (default) or pooled over the user's "
                        "candidates (the paper's Definition 4.1)")
    p.add_argument("--weights", default="user", choices=["user", "query"],
                   help="average queries into beta and rho+/- per user, as utility is "
                        "(default), or per query (the paper)")
    p.add_argument("--ci", type=float, default=None,
                   help="confidence level of two-level bootstrap intervals, e.g. 0.95 "
                        "(default: none)")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap resamples of the intervals and of the verdict's gain "
                        "interval (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--refined", action="store_true",
                   help="include the collapsed users' correlation (Eq. 30)")
    p.add_argument("--pool", default=None, choices=["error", "clip"],
                   help="N larger than a query's pool: error, or use the whole pool (default: "
                        "clip exactly when some N exceeds the smallest pool, as in the Python "
                        "API)")
    p.add_argument("--fit-mu", action="store_true",
                   help="fit mu from the oracle curve too (default: mu = the exact random "
                        "utility, only c*sigma is fitted)")
    p.add_argument("--prediction", choices=("auto", "law", "refined"), default="auto",
                   help="curve prediction: the paper's law, the refined (concomitant) one for "
                        "heterogeneous pools, or auto (per model, by held-out error; default)")
    p.add_argument("--json", action="store_true",
                   help="print machine-readable JSON (with the verdict's sentences and "
                        "findings under 'verdict')")
    p.set_defaults(func=run)


def analyze_table(table: pd.DataFrame, scores: Sequence[str] | None, ns: Sequence[int], *,
                  shape: str = DEFAULT_SHAPE, split: str | None = "val",
                  collapse_threshold: float = 0.1, rho_u: str = "mean_query",
                  weights: str = "user", refined: bool = False, pool: str | None = None,
                  fit_mu: bool = False, ci: float | None = None, n_boot: int = 1000,
                  seed: int | None = 0, prediction: str = "auto") -> dict[str, Any]:
    """The numbers ``ttp-diag analyze`` prints, as a dict (also ``--json``): one
    :class:`ttp_diag.BestOfN` fit, :meth:`~ttp_diag.BestOfN.to_dict`, plus ``verdict``
    (``headline``, ``text`` per score column and the tidy ``findings``)."""
    from ttp_diag.bestofn import BestOfN

    fit = BestOfN(ns, shape=shape, mu="fit" if fit_mu else "random", split=split, pool=pool,
                  refined=refined, collapse_threshold=collapse_threshold, rho_u=rho_u,
                  weights=weights, prediction=prediction, ci=ci, n_boot=n_boot,
                  seed=seed).fit(table, scores)
    out = fit.to_dict()
    v = fit.verdict()
    out["verdict"] = {"headline": v.headline,
                      "text": {s: v.sentences(s) for s in fit.scores_},
                      "findings": v.findings.to_dict("records")}
    return out


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ttp_diag.bestofn import default_ns
    from ttp_diag.io import read_table
    from ttp_diag.mapping import parse_map

    check_cli_bootstrap(args)
    table = read_table(args.table, columns=parse_map(args.map))
    ns = (parse_ns([args.ns], flag="--ns") if args.ns is not None else
          default_ns(table, split=None if args.split == "all" else args.split))
    scores = split_list([args.scores], flag="--scores") if args.scores is not None else None
    res = analyze_table(table, scores, ns, shape=args.shape,
                        split=None if args.split == "all" else args.split,
                        collapse_threshold=args.collapse_threshold, rho_u=args.rho_u,
                        weights=args.weights, refined=args.refined, pool=args.pool,
                        fit_mu=args.fit_mu, ci=args.ci, n_boot=args.n_boot, seed=args.seed,
                        prediction=args.prediction)
    if args.json:
        json.dump(res, sys.stdout, indent=2, default=float)
        print()
        return 0
    cal = res["calibration"]
    print(f"{args.table}: {res['n_rows']} candidate rows; shape g(N) = {res['shape']}; "
          f"pool = {res['pool']}")
    print(f"Verdict: {res['verdict']['headline']}")
    for s, text in res["verdict"]["text"].items():
        print(f"- {s}: {text}")
    print()
    print(f"oracle calibration: mu = {cal['mu']:.4f}, c*sigma = {cal['c_sigma']:.4f} "
          f"[{cal['c_sigma_ci'][0]:.4f}, {cal['c_sigma_ci'][1]:.4f}], R^2 = {cal['r2']:.3f}")
    curves = {"N": res["ns"]}
    if res.get("n_effective", res["ns"]) != res["ns"]:
        curves["N used (pool)"] = res["n_effective"]
    curves.update({"random": res["random"], "oracle": res["oracle"]})
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
                     "relMAE %": None if m["rel_mae"] is None else 100 * m["rel_mae"],
                     "flat relMAE %": (None if m["rel_mae_flat"] is None
                                       else 100 * m["rel_mae_flat"]),
                     "gain err": m["gain_error"], "capture err": m["capture_error"],
                     "flat capture err": m["capture_error_flat"],
                     "capture": m["capture_rate"], "prediction": m.get("prediction", "law")})
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for s, m in res["models"].items():
        print(f"prediction of {s}: {m.get('prediction', 'law')} ({m.get('prediction_reason')})")
    print("(relMAE: error relative to the utility's level; gain err: error relative to the gain "
          "over random; a flat 'no gain' prediction has gain error 1, its relMAE and capture "
          "error are the 'flat' columns; column key: docs/glossary.md)")
    if args.ci is not None:
        print()
        print(f"{100 * args.ci:g}% two-level bootstrap intervals (users, then queries) and the "
              "no-collapse / no-hacking null model:")
        for s, m in res["models"].items():
            for q in ("alpha", "beta", "rho_eff", "capture"):
                iv = m.get("intervals", {}).get(q) if isinstance(m.get("intervals"), dict) else None
                est = m.get(q)
                if iv is not None:
                    print(f"  {s} {q} = {est:.3f} [{iv[0]:.3f}, {iv[1]:.3f}]")
    for s, m in res["models"].items():
        null = m.get("null") or {}
        if "alpha_null" in null:
            from ttp_diag.diagnostics.core import null_test_text

            print(f"  {s}: alpha {m['alpha']:.3f} vs {null['alpha_null']:.3f} expected from one "
                  f"shared correlation ({null_test_text(null, 'alpha')}); beta {m['beta']:.3f} "
                  f"vs {null['beta_null']:.3f} expected from noise alone "
                  f"({null_test_text(null, 'beta')})")
    for s, m in res["models"].items():
        for note in m["notes"]:
            print(f"note ({s}): {note}")
    for note in res.get("notes", []):
        print(f"note: {note}")
    return 0
