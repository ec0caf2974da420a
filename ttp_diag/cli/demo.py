"""``ttp-diag demo``: the whole diagnosis of one score table, as one HTML report.

On the embedded demo table (or any score table given with ``--table``) it computes the exact
Best-of-N curves of Random, Oracle and every reward model, calibrates the oracle law for both
curve shapes, measures each model's diagnostics and the prediction error of the unified law,
checks the theory's assumptions, runs the failure-mode analyses and the a-priori risk
report, and writes into one folder:

* ``report.html`` -- self-contained (figures embedded as base64 PNG), and ``summary.md``;
* every figure as PNG and every table as CSV, plus the ``risk_report.{md,html}`` files.

Examples
--------
>>> import tempfile, ttp_diag as td
>>> from ttp_diag.cli.demo import run_demo
>>> t = td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0)
>>> res = run_demo(t, tempfile.mkdtemp(), source="simulation", quiet=True)
>>> sorted(res["diagnostics"]["shape"].unique())
['gaussian', 'sqrt_log']
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ttp_diag.cli._args import parse_ns, split_list

SHAPES = ("sqrt_log", "gaussian")




def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="full diagnosis of a score table (default: the embedded demo) into an HTML report",
        description="Exact Best-of-N curves with theory overlays, the oracle calibration, a "
                    "diagnostics table for both curve shapes, failure modes, the a-priori "
                    "risk report and the assumption checks, written as one self-contained "
                    "HTML report plus PNGs and CSVs.",
    )
    p.add_argument("--table", default=None,
                   help="score table (.parquet or .csv); default: the embedded demo table")
    p.add_argument("--out", default="ttp_diag_out", help="output folder (default %(default)s)")
    p.add_argument("--scores", nargs="+", default=None,
                   help="score columns (space or comma separated; default: every score_*)")
    p.add_argument("--ns", nargs="+", default=None,
                   help="candidate counts (default: 1 .. smallest pool)")
    p.add_argument("--split", default="val", help="split to analyse (default %(default)s)")
    p.add_argument("--var", default="var_prob",
                   help="predicted-variance column for the failure modes (default %(default)s)")
    p.add_argument("--reward-label", default=None,
                   help="y-axis label of the curves (default: 'ROUGE (R1+RL)/2' for the demo "
                        "table, 'Reward' otherwise)")
    p.add_argument("--cost-per-candidate", type=float, default=1.5,
                   help="generation cost per candidate for the compute planner, in seconds "
                        "(default %(default)s: the paper's ~1.5 s)")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap replicates for the confidence bands (default %(default)s)")
    p.set_defaults(func=run)


def load_table(path=None):
    """The table to analyse and a line saying where it came from.

    Without a path: the embedded demo table from :func:`ttp_diag.datasets.load_demo`; when
    that is not available, a simulated table (and the line says so).
    """
    if path is not None:
        from ttp_diag.io import read_table

        return read_table(path), f"score table {path}"
    try:
        from ttp_diag.datasets import load_demo

        table = load_demo()
        return table, "embedded demo table (ttp_diag/data/demo_huffpost.parquet)"
    except (ImportError, FileNotFoundError) as exc:
        import ttp_diag as td

        print(f"notice: the embedded demo table is not available ({exc}); using a simulated "
              f"score table instead (ttp_diag.simulate_score_table, seed 0).")
        table = td.simulate_score_table(n_users=40, n_queries=10, n_candidates=16, seed=0,
                                        collapsed_sigma_ratio=0.5, clip=True)
        return table, "simulated score table (simulate_score_table(40 users, 10 queries, " \
                      "16 candidates, collapsed_sigma_ratio=0.5, clip=True, seed=0))"


def _diagnostics_table(curves, diags, cals, ns, scores):
    """alpha, beta, rho's, relMAE, R^2 and capture per (score, shape)."""
    import warnings

    import pandas as pd

    import ttp_diag as td

    def obs(sel):
        return curves.loc[curves.selector == sel, "utility"].to_numpy()

    rnd, orc = obs("random"), obs("oracle")
    gap = [i for i, n in enumerate(ns) if n > 1]
    rows, preds = [], []
    for shape, cal in cals.items():
        for sel in ["oracle", *scores]:
            o = obs(sel)
            if sel == "oracle":
                p = cal.predict(ns)
                d = None
            else:
                d = diags[sel]
                p = td.predict_bon_curve(ns, d, cal)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r2 = td.r_squared(p, o)
            cap_last = float(td.capture_rate(o[-1:], orc[-1:], rnd[-1:])[0]) if ns[-1] > 1 \
                else float("nan")
            row = {
                "score": sel,
                "rm": td_label(sel),
                "shape": shape,
                "alpha": d.alpha if d else 0.0,
                "beta": d.beta if d else 0.0,
                "rho_plus": d.rho_plus if d else 1.0,
                "rho_minus": d.rho_minus if d else 0.0,
                "rho_collapsed": d.rho_collapsed if d else float("nan"),
                "rho_eff": d.rho_eff if d else 1.0,
                "rho_total": d.rho_total if d else 1.0,
                "rel_mae": td.rel_mae(p, o),
                "r2": r2,
                f"capture_N{ns[-1]}": cap_last,
                "mean_capture": (td.mean_capture_rate(o[gap], orc[gap], rnd[gap])
                                 if gap else float("nan")),
            }
            rows.append(row)
            preds.append(pd.DataFrame({"selector": sel, "shape": shape, "n": ns,
                                       "observed": o, "predicted": p}))
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


def td_label(sel: str) -> str:
    from ttp_diag.plots.style import rm_label

    return rm_label(sel)


def run_demo(table, out_dir, *, scores=None, ns=None, split="val", var="var_prob",
             source="score table", reward_label="Reward", cost_per_candidate=1.5,
             n_boot=1000, provenance=None, quiet=False) -> dict:
    """Run the full diagnosis of ``table`` and write the report into ``out_dir``.

    ``provenance`` (a JSON-serialisable dict, e.g. :func:`ttp_diag.datasets.demo_provenance`)
    is shown at the end of the report and written to ``provenance.json``.

    Returns
    -------
    dict
        ``out_dir``, ``files`` (name -> path), ``diagnostics`` (DataFrame), ``calibration``
        (DataFrame), ``curves`` (DataFrame), ``summary`` (str), ``seconds``.
    """
    import pandas as pd

    import ttp_diag as td
    from ttp_diag.analysis import (label_std_by_collapse, linearity_check, plan_compute,
                                   rescue_analysis, risk_report, selector_table,
                                   sub_gaussian_check, variance_error_correlation)
    from ttp_diag.plots import figures as F
    from ttp_diag.report import Report, figure_png_bytes

    t0 = time.perf_counter()
    say = (lambda *_: None) if quiet else (lambda msg: print(msg, flush=True))
    scores = list(scores) if scores else td.score_columns(table)
    if not scores:
        raise ValueError("the table has no score_* columns to diagnose; pass --scores.")
    val = td.validate_score_table(table, scores=scores, split=split)
    ns = list(ns) if ns else F.default_ns(val, split=None)
    pool = F.resolve_pool(val, ns)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_users, n_queries = val["user_id"].nunique(), val["query_id"].nunique()
    pools = val.groupby("query_id").size()
    say(f"ttp-diag demo: {source}: {n_users} users, {n_queries} {split} queries, "
        f"{int(pools.min())}-{int(pools.max())} candidates per query; N = {ns[0]}..{ns[-1]}")

    # ---- numbers
    curves = td.bon_curves(val, ["random", "oracle", *scores], ns, split=None, ci=0.95,
                           n_boot=n_boot, pool=pool)
    oracle = curves.loc[curves.selector == "oracle", "utility"].to_numpy()
    # mu is the exact random-selection utility (every shape has g(1) = 0); only c*sigma is fitted
    # from the oracle, as in the paper's Appendix C.1, so predictions start at random for N = 1
    mu_random = float(curves.loc[curves.selector == "random", "utility"].iloc[0])
    cals = {shape: td.calibrate(ns, oracle, shape=shape, mu=mu_random) for shape in SHAPES}
    diags = {s: td.diagnose(val, s, split=None, validate=False) for s in scores}
    diag_table, predictions = _diagnostics_table(curves, diags, cals, ns, scores)
    cal_table = pd.DataFrame([{
        "shape": shape, "mu": c.mu, "mu_source": "random (exact)" if c.mu_fixed else "fitted",
        "c_sigma": c.c_sigma, "r2": c.r2,
        "c_sigma_ci_low": c.c_sigma_ci[0], "c_sigma_ci_high": c.c_sigma_ci[1]}
        for shape, c in cals.items()])
    best_shape = max(cals, key=lambda s: cals[s].r2)
    risk = risk_report(table, scores, eval_split=split, diagnostics=diags)
    sg = sub_gaussian_check(val, split=None)
    lin = linearity_check(val, scores, split=None)
    plan = plan_compute(diags, cals[best_shape], cost_per_candidate=cost_per_candidate,
                        shares=(0.25, 0.5, 0.75), n_ref=int(ns[-1]), n_max=10**6)
    has_pair = "score_det" in scores and "score_prob" in scores
    has_var = has_pair and var in val.columns
    say(f"  analyses done in {time.perf_counter() - t0:.1f} s; drawing figures")

    # ---- report
    rep = Report("ttp-diag demo: Best-of-N diagnostics")
    rep.text(f"Data: {source}. Split '{split}': {n_users} users, {n_queries} queries, "
             f"{len(val)} candidates ({int(pools.min())}-{int(pools.max())} per query). "
             f"Reward models: {', '.join(td_label(s) for s in scores)}. All Best-of-N values are "
             f"exact expectations over every N-subset of each query's pool (no resampling); "
             f"population utility is the mean over users of each user's mean over queries."
             + (f" Pools differ in size (de-duplicated candidates): for N above a query's pool "
                f"the whole pool is used ({int((pools < ns[-1]).sum())} of {n_queries} queries "
                f"have fewer than {ns[-1]} candidates)." if pool == "clip" else ""))
    summary_lines = []
    last = ns[-1]
    for r in diag_table[diag_table["shape"] == best_shape].itertuples():
        if r.score == "oracle":
            continue
        summary_lines.append(
            f"{r.rm:<24} alpha={r.alpha:.2f} beta={r.beta:.2f} rho_eff={r.rho_eff:+.2f} "
            f"relMAE={r.rel_mae:.1%} capture@N={last}: {getattr(r, f'capture_N{last}'):.0%}")
    summary = "\n".join(summary_lines)
    rep.pre(f"Curve shape with the best oracle fit: {best_shape} (R² {cals[best_shape].r2:.3f})\n"
            + summary)

    rep.heading("Best-of-N curves with theory")
    for shape in SHAPES:
        rep.figure(F.task_panel(val, scores, ns, shape=shape, split=None,
                                reward_label=reward_label), f"fig5_task_panel_{shape}",
                   f"Observed exact Best-of-N curves (solid, markers) and each model's "
                   f"prediction from its four diagnostics (dash-dot), shape {shape}; "
                   f"per-user and per-query correlations below.")
    rep.figure(F.confidence_bands(val, scores, ns, split=None, n_boot=n_boot,
                                  reward_label=reward_label), "figA4_confidence_bands",
               "Curves with 95% percentile bootstrap bands over users.")
    rep.figure(F.confidence_bands(val, scores, ns, split=None, n_boot=n_boot, gain=True,
                                  reward_label=reward_label), "figA4_gain_bands",
               "Gain over random selection, user by user, with 95% bootstrap bands over users "
               "(the same resamples for every model: the bands show whether models differ).")
    rep.table(curves, "curves", "Observed exact Best-of-N utilities with bootstrap bands.")

    rep.heading("Calibration of the oracle law")
    rep.figure(F.oracle_scaling(val, ns, shapes=SHAPES, split=None, reward_label=reward_label),
               "fig2_oracle_scaling", "Oracle curve and mu + c·sigma·g(N) fitted by least "
               "squares for both shapes.")
    rep.table(cal_table, "calibration", "Least-squares calibration of mu and c·sigma (95% CI).")

    rep.heading("Diagnostics and prediction error")
    rep.table(diag_table, "diagnostics",
              "Collapse rate alpha, hacking rate beta, mean correlations of non-hacked/hacked "
              "queries, effective correlation, relMAE and R² of the unified law's prediction, "
              f"and the share of the oracle gap captured (at N={last} and gain-weighted over N), "
              "for both curve shapes.")
    rep.table(predictions, "predictions", "Observed vs predicted utility per N and shape.")
    for shape in SHAPES:
        rep.figure(F.predicted_vs_observed(val, scores, ns, shape=shape, split=None,
                                           reward_label=reward_label),
                   f"figA5_predicted_vs_observed_{shape}",
                   f"Predicted (dashed) vs observed (solid), shape {shape}.")
    rep.figure(F.correlation_distributions(val, scores, split=None),
               "fig4_correlation_distributions",
               "Per-user and per-query correlations with the collapse (0.1) and hacking (0) "
               "thresholds.")
    diag_text = "\n\n".join(d.summary() for d in diags.values())
    rep.pre(diag_text)

    if has_pair:
        rep.heading("Failure modes")
        d_det, d_prob = diags["score_det"], diags["score_prob"]
        ls = label_std_by_collapse(diagnostics=d_det, normal_threshold="auto")
        rescue = rescue_analysis(diagnostics=(d_det, d_prob))
        lines = [ls.summary(), rescue.summary()]
        if has_var:
            ve = variance_error_correlation(val, "score_prob", var, split=None)
            lines.append(ve.summary())
        rep.pre("\n".join(lines))
        rep.figure(F.failure_modes(val, "score_det", "score_prob", var, split=None),
                   "fig6_failure_modes",
                   "(a) label std of collapsed vs normal users; (b) a representative collapsed "
                   "user; (c) per-query rescue scatter; (d) predicted variance vs error.")
        rep.table(ls.per_user, "collapse_label_std", "Per-user rho_u and label std by group.")
        rep.table(rescue.per_query, "rescue_per_query", "Per-query correlations of Det and "
                  "Prob RM and the rescue category.")
        if has_var:
            sel_ns = sorted({n for n in (1, 5, 10, 15, 20, 30) if n <= last} | {1, last})
            sel = selector_table(val, "score_prob", var, ns=sel_ns, split=None)
            rep.table(sel, "table_a10_variance_selectors",
                      "Table A10: exact Best-of-N utility of variance-based selection rules "
                      "(N above a pool uses the whole pool).")

    rep.heading("A-priori risk report")
    rep.pre(risk.summary())
    risk_fig = F.risk_figure(risk)
    rep.figure(risk_fig, "risk_by_half", "Realised collapse and hacking rates of the low and "
               "high label-spread halves (Tables A13/A14).")
    rep.table(risk.collapse_table, "table_a13_collapse_by_half", "Table A13.")
    rep.table(risk.hacking_table, "table_a14_hacking_by_half", "Table A14.")
    risk_files = risk.save(out, images=[("Collapse and hacking rates by half",
                                         figure_png_bytes(risk_fig))])

    rep.heading("Assumption checks")
    rep.pre(sg.summary() + "\n" + lin.summary_text())
    rep.figure(F.sub_gaussian_figure(val, split=None), "figA6_sub_gaussian",
               "Empirical CDF of a representative user's rewards against the Gaussian CDF and "
               "the sub-Gaussian envelope; fitted parameter vs std for every user.")
    rep.figure(F.linearity_figure(val, scores, split=None), "figA7_linearity",
               "Binned E[r*|r_hat] (z-scored within user) against the line of slope rho.")
    rep.table(sg.per_user, "sub_gaussian_per_user", "Per-user sub-Gaussian parameter s.")
    rep.table(lin.summary, "linearity_summary", "Slope of the binned conditional mean vs rho.")

    rep.heading("Compute planner")
    rep.table(plan, "compute_plan",
              f"Candidates per query needed to close 25/50/75% of the oracle gap at N={last} "
              f"(shape {best_shape}), at {cost_per_candidate:g} s per generated candidate; "
              f"inf = not reachable within 10^6 candidates.")

    if provenance:
        import json

        rep.heading("Data provenance")
        rep.pre(json.dumps(provenance, indent=2, default=str))
    files = rep.write(out)
    files.update(risk_files)
    if provenance:
        import json

        from ttp_diag.analysis.risk import atomic_write_text

        files["provenance.json"] = atomic_write_text(
            out / "provenance.json", json.dumps(provenance, indent=2, default=str))
    seconds = time.perf_counter() - t0
    say(f"\n{summary}\n\nwrote {len(files)} files in {seconds:.1f} s to {out.resolve()}\n"
        f"open {(out / 'report.html').resolve()}")
    return {"out_dir": str(out.resolve()), "files": files, "diagnostics": diag_table,
            "calibration": cal_table, "curves": curves, "summary": summary,
            "seconds": seconds}


def run(args) -> int:
    table, source = load_table(args.table)
    is_demo = args.table is None and "demo" in source
    label = args.reward_label or ("ROUGE (R1+RL)/2" if is_demo else "Reward")
    provenance = None
    if is_demo:
        try:
            from ttp_diag.datasets import demo_provenance

            provenance = demo_provenance()
        except (ImportError, FileNotFoundError):
            provenance = None
    run_demo(table, args.out, scores=split_list(args.scores), ns=parse_ns(args.ns),
             split=args.split, var=args.var, source=source, reward_label=label,
             cost_per_candidate=args.cost_per_candidate, n_boot=args.n_boot,
             provenance=provenance)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from ttp_diag.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
