"""The whole diagnosis of one score table, as one self-contained HTML report.

:func:`full_report` fits one :class:`ttp_diag.BestOfN` (exact curves of Random, Oracle and every
reward model, the oracle law calibrated for both curve shapes with mu fixed at the random
utility, every model's diagnostics and predictions), runs the assumption checks, the
failure-mode analyses, the a-priori risk report and the compute planner on top of it, and
writes into one folder:

* ``report.html`` -- self-contained (figures embedded as base64 PNG), and ``summary.md``;
* every figure as PNG and every table as CSV, plus the ``risk_report.{md,html}`` files.

``ttp-diag demo`` is a thin command over it.

Examples
--------
>>> import tempfile, ttp_diag as td
>>> from ttp_diag.full_report import full_report
>>> t = td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0)
>>> res = full_report(t, tempfile.mkdtemp(), n_boot=20, source="simulation")
>>> sorted(res["diagnostics"]["shape"].unique())
['gaussian', 'sqrt_log']
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .bestofn import BestOfN
from .names import selector_label

if TYPE_CHECKING:
    from .report import Report

__all__ = ["REPORT_SHAPES", "evaluation_summary", "full_report", "variance_column"]

#: Curve shapes the report calibrates and compares (a subset of :data:`ttp_diag.SHAPES`).
REPORT_SHAPES = ("sqrt_log", "gaussian")


def variance_column(table: pd.DataFrame, score: str) -> str | None:
    """The predicted-variance column that belongs to ``score`` by the table contract
    (``score_<rm>`` -> ``var_<rm>``), or None when the table has none.

    Examples
    --------
    >>> import pandas as pd
    >>> variance_column(pd.DataFrame(columns=["score_prob", "var_prob"]), "score_prob")
    'var_prob'
    """
    if not score.startswith("score_"):
        return None
    var = "var_" + score[len("score_"):]
    return var if var in table.columns else None


def _check_columns(table: pd.DataFrame, **cols: str | None) -> None:
    for flag, col in cols.items():
        if col is not None and col not in table.columns:
            from .exceptions import ScoreTableError

            raise ScoreTableError(f"{flag} names column {col!r}, which the table does not have "
                             f"(columns: {', '.join(map(str, table.columns))}); pass an existing "
                             f"column or leave {flag} out.")


def _fmt_iv(est: float, lo: float, hi: float) -> str:
    return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"


def significance_table(fit: BestOfN, val: pd.DataFrame, *, ci: float = 0.95,
                       n_boot: int = 1000, seed: int | None = 0) -> tuple[pd.DataFrame, list[str]]:
    """Paired exact comparisons of every pair of fitted reward models at every N.

    Returns the tidy table of :func:`ttp_diag.compare_selectors` rows (with ``a``, ``b``) and
    one sentence per pair at the largest N saying whether the difference is real at level
    ``ci`` (its bootstrap interval over users excludes 0 and the paired test's p-value is below
    ``1 - ci``).
    """
    from ttp_diag.diagnostics import compare_selectors

    rows, lines = [], []
    scores, ns = fit.scores_, fit.ns_
    for i, a in enumerate(scores):
        for b in scores[i + 1:]:
            res = compare_selectors(val, a, b, ns, ci=ci, n_boot=n_boot, seed=seed, split=None,
                                    pool=fit.pool_, validate=False)
            rows.append(res.assign(a=a, b=b))
            last = res.iloc[-1]
            real = (last["p_value"] < 1 - ci
                    and (last["ci_low"] > 0 or last["ci_high"] < 0))
            lines.append(
                f"{selector_label(a)} - {selector_label(b)} at N={int(last['n'])}: "
                f"{last['diff']:+.4f} [{last['ci_low']:+.4f}, {last['ci_high']:+.4f}], "
                f"p = {last['p_value']:.3f} over {int(last['n_users'])} users: "
                + ("a real difference." if real else
                   f"not distinguishable from no difference at the {ci:.0%} level."))
    table = (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame())
    if len(table):
        table = table[["a", "b", *[c for c in table.columns if c not in ("a", "b")]]]
    return table, lines


def _significance_section(rep: Report, fit: BestOfN, val: pd.DataFrame, *, ci: float,
                          n_boot: int, seed: int | None) -> None:
    """Which of the report's numbers and differences are real (intervals, nulls, paired tests)."""
    rep.heading("Which differences are real")
    lines = []
    for s, d in fit.diagnostics_.items():
        summ = d.summary.set_index("quantity")
        parts = []
        for q in ("alpha", "beta", "rho_eff", "capture"):
            if q not in summ.index:
                continue
            r = summ.loc[q]
            est = float(r["estimate"])
            if "ci_low" in summ.columns and pd.notna(r.get("ci_low")):
                parts.append(f"{q} = {_fmt_iv(est, float(r['ci_low']), float(r['ci_high']))}")
            else:
                parts.append(f"{q} = {est:.3f}")
            if "p_value" in summ.columns and pd.notna(r.get("p_value")):
                parts[-1] += (f" (expected with none: {float(r['null_expected']):.3f}, "
                              f"p = {float(r['p_value']):.3f})")
        lines.append(f"{selector_label(s)}: " + "; ".join(parts))
    rep.pre(f"{ci:.0%} two-level bootstrap intervals (users, then queries within users). "
            "Null model: one shared correlation (collapse) or each user's own correlation "
            "(hacking), drawn for the observed pools conditional on the observed mean "
            "correlations; 'expected with none' is the rate under it, p the chance of a "
            "smoothed count at least as high.\n\n"
            + "\n".join(lines))
    table, sentences = significance_table(fit, val, ci=ci, n_boot=n_boot, seed=seed)
    if sentences:
        rep.text("Paired exact comparisons on the same queries (difference of exact expected "
                 "utilities, bootstrap interval over users, paired sign-flip test): "
                 + " ".join(sentences))
        rep.table(table, "paired_comparisons",
                  "Paired comparison of every two reward models at every N.")


def evaluation_summary(eval_dir: str | Path) -> str:
    """One paragraph on an evaluation folder (``ttp-diag evaluate``'s ``eval/``).

    Names the users and methods it rests on, the best method by ROUGE-1 against the users'
    gold text (with its interval), the oracle ceiling when it was run, and which upstream
    metric's Kendall tau with generation quality is largest (with its interval and the
    number of methods it rests on). Read from ``eval_summary.json``, ``tables/summary_long.csv``
    and ``tables/table6_rank_agreement.csv``.

    Raises
    ------
    InputFileError
        When the folder is not an evaluation folder (the message names the missing file).
    """
    from .exceptions import InputFileError

    ev = Path(eval_dir)
    need = [ev / "eval_summary.json", ev / "tables" / "summary_long.csv"]
    for f in need:
        if not f.is_file():
            raise InputFileError(f"{f} not found: {ev} is not an evaluation folder; run "
                                 f"`ttp-diag evaluate --run-dir <run>` first or leave "
                                 f"--eval-dir out.")
    info = json.loads(need[0].read_text(encoding="utf-8"))
    long = pd.read_csv(need[1])
    q = long[long["metric"] == "rouge1"].set_index("method")
    n_users = len(info.get("adapt_users", [])) or int(q["n_users"].max())
    parts = [f"An evaluation of {len(q)} generation methods on {n_users} adaptation users "
             f"(users' own later texts as gold) exists for this run."]
    ranked = q.drop(index=[m for m in ("bon_oracle",) if m in q.index]).sort_values("mean")
    if len(ranked):
        b, w = ranked.iloc[-1], ranked.iloc[0]
        b_iv = _fmt_iv(b["mean"], b["ci_low"], b["ci_high"])
        w_iv = _fmt_iv(w["mean"], w["ci_low"], w["ci_high"])
        zs = (f"; zero-shot {q.loc['zero_shot', 'mean']:.3f}" if "zero_shot" in q.index
              else "")
        parts.append(f"Best method by ROUGE-1 (mean over users, interval over users): "
                     f"{ranked.index[-1]} at {b_iv}; worst: {ranked.index[0]} at {w_iv}{zs}.")
    if "bon_oracle" in q.index:
        parts.append(f"The Best-of-N oracle (true reward) reaches "
                     f"{q.loc['bon_oracle', 'mean']:.3f}, the ceiling of any selector.")
    ra_f = ev / "tables" / "table6_rank_agreement.csv"
    if ra_f.is_file():
        ra = pd.read_csv(ra_f)
        ra = ra[(ra["statistic"] == "kendall_tau") & ra["estimate"].notna()]
        if len(ra):
            r = ra.loc[ra["estimate"].idxmax()]
            iv = _fmt_iv(r["estimate"], r["ci_low"], r["ci_high"])
            parts.append(f"Of the upstream metrics, {r['upstream']} ranks the methods most like "
                         f"generation quality: Kendall tau {iv} over {int(r['n_methods'])} "
                         f"methods (bootstrap over users); with so few methods and users, read "
                         f"the intervals, not the points.")
    return " ".join(parts)


def evaluation_section(rep: Any, eval_dir: str | Path, out: Path) -> None:
    """Add the "Generation evaluation" section: the paragraph, the figure, the table paths."""
    ev = Path(eval_dir)
    rep.heading("Generation evaluation")
    rep.text(evaluation_summary(ev))
    fig = ev / "figures" / "comparison.png"
    if fig.is_file():
        rep.figure(fig.read_bytes(), "evaluation_comparison",
                   "Generation quality per method (left) and upstream metric vs quality "
                   f"(right); from {fig}.")
    tables = sorted((ev / "tables").glob("*.md"))
    rel = []
    for t in tables:
        try:
            rel.append(os.path.relpath(t, out))
        except ValueError:  # another drive on Windows: keep the absolute path
            rel.append(str(t))
    rep.pre("Evaluation tables (markdown; a .csv beside each):\n" + "\n".join(rel))


def full_report(table: pd.DataFrame, out_dir: str | Path, *,
                scores: Sequence[str] | None = None, ns: Sequence[int] | None = None,
                split: str | None = "val", base: str | None = None, new: str | None = None,
                var: str | None = None, source: str = "score table",
                reward_label: str = "Reward", cost_per_candidate: float = 1.5,
                n_boot: int = 1000, seed: int | None = 0, ci: float = 0.95,
                provenance: dict[str, Any] | None = None,
                eval_dir: str | Path | None = None,
                progress: bool = False) -> dict[str, Any]:
    """Run the full diagnosis of ``table`` and write the report into ``out_dir``.

    Parameters
    ----------
    table : pandas.DataFrame
        A score table.
    out_dir : str or Path
        Output folder (created; must not be an existing file).
    scores : list of str, optional
        Score columns (default: every ``score_*``).
    ns : list of int, optional
        Candidate counts (default: 1 .. the median pool size).
    split : str or None, default "val"
    base, new : str, optional
        Two score columns for the failure-mode analyses (collapse label std, rescue of hacked
        queries); the section is left out without them.
    var : str, optional
        ``new``'s predicted-variance column (default: ``var_<rm>`` when the table has it).
    source : str
        One line saying where the table came from (shown in the report).
    reward_label : str
        Y-axis label of the curves.
    cost_per_candidate : float
        Seconds per generated candidate, for the compute planner.
    n_boot, seed, ci
        Bootstrap replicates, seed and level of the bands over users.
    provenance : dict, optional
        JSON-serialisable provenance (e.g. :func:`ttp_diag.datasets.demo_provenance`), shown
        at the end and written to ``provenance.json``.
    eval_dir : str or Path, optional
        The ``eval/`` folder written by ``ttp-diag evaluate`` for the same run: the report
        gains a "Generation evaluation" section (one paragraph, the comparison figure and the
        paths of the tables). Read from its files only; nothing of ``gen/`` is imported.
    progress : bool, default False
        Print what is being done and where the report went.

    Returns
    -------
    dict
        ``out_dir``, ``files`` (name -> path), ``fit`` (the fitted :class:`BestOfN`),
        ``diagnostics`` (DataFrame), ``calibration`` (DataFrame), ``curves`` (DataFrame),
        ``summary`` (str), ``seconds``.
    """
    from .analysis import (
        label_std_by_collapse,
        linearity_check,
        plan_compute,
        rescue_analysis,
        risk_report,
        selector_table,
        sub_gaussian_check,
        variance_error_correlation,
    )
    from .io import atomic_write
    from .plots import assumptions as PA
    from .plots import correlations as PC
    from .plots import curves as PV
    from .plots import failure as PF
    from .plots.risk import risk_figure
    from .report import Report, figure_png_bytes

    t0 = time.perf_counter()
    say = print if progress else (lambda *_: None)
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number >= 1 (e.g. 1000); got {n_boot!r}.")
    from .io import check_output_dir

    out = check_output_dir(out_dir)
    _check_columns(table, base=base, new=new, var=var)
    if (base is None) != (new is None):
        raise ValueError("pass both base= and new= (two score columns to compare) or neither.")
    if var is None and new is not None:
        var = variance_column(table, new)
    scores = list(scores) if scores else None
    if scores is not None:
        _check_columns(table, **{f"scores[{i}]": s for i, s in enumerate(scores)})
    fit = BestOfN(ns, shape=REPORT_SHAPES, split=split, ci=ci, n_boot=n_boot,
                  seed=seed).fit(table, scores)
    scores, ns, val = fit.scores_, fit.ns_, fit.table_
    for s in (base, new):
        if s is not None and s not in scores:
            raise ValueError(f"{s!r} (base/new) is not among the analysed score columns "
                             f"{scores}; add it to scores.")
    out.mkdir(parents=True, exist_ok=True)
    n_users, n_queries = val["user_id"].nunique(), val["query_id"].nunique()
    pools = val.groupby("query_id").size()
    say(f"ttp-diag demo: {source}: {n_users} users, {n_queries} {split} queries, "
        f"{int(pools.min())}-{int(pools.max())} candidates per query; N = {ns[0]}..{ns[-1]}")

    # ---- numbers (everything below reuses the one fit)
    diags, best = fit.diagnostics_, fit.best_shape_
    diag_table = fit.summary
    risk = risk_report(table, scores, eval_split=split, diagnostics=diags)
    sg = sub_gaussian_check(val, split=None)
    lin = linearity_check(val, scores, split=None)
    plan = plan_compute(diags, fit.calibrations_[best], cost_per_candidate=cost_per_candidate,
                        shares=(0.25, 0.5, 0.75), n_ref=int(ns[-1]), n_max=10**6)
    say(f"  analyses done in {time.perf_counter() - t0:.1f} s; drawing figures")

    # ---- report
    rep = Report("ttp-diag demo: Best-of-N diagnostics")
    rep.text(f"Data: {source}. Split '{split}': {n_users} users, {n_queries} queries, "
             f"{len(val)} candidates ({int(pools.min())}-{int(pools.max())} per query). "
             f"Reward models: {', '.join(selector_label(s) for s in scores)}. All Best-of-N "
             f"values are exact expectations over every N-subset of each query's pool (no "
             f"resampling); population utility is the mean over users of each user's mean over "
             f"queries."
             + (f" Pools differ in size (de-duplicated candidates): for N above a query's pool "
                f"the whole pool is used ({int((pools < ns[-1]).sum())} of {n_queries} queries "
                f"have fewer than {ns[-1]} candidates)." if fit.pool_ == "clip" else ""))
    summary = fit.summary_text(best)
    last = ns[-1]
    rep.pre(f"Curve shape with the best oracle fit: {best} (R² "
            f"{fit.calibrations_[best].r2:.3f})\n" + summary)
    # issue 21: which prediction each model's curve uses (law or refined), and why
    rep.pre("Prediction used per reward model (BestOfN(prediction=...)):\n" + "\n".join(
        f"{selector_label(sc)}: {fit.prediction_.get(sc, 'law')} -- "
        f"{fit.prediction_reason_.get(sc, '')}" for sc in scores))

    rep.heading("Best-of-N curves with theory")
    for shape in REPORT_SHAPES:
        rep.figure(PC.task_panel(fit, shape=shape, reward_label=reward_label),
                   f"fig5_task_panel_{shape}",
                   f"Observed exact Best-of-N curves (solid, markers) and each model's "
                   f"prediction from its four diagnostics (dash-dot), shape {shape}; "
                   f"per-user and per-query correlations below.")
    rep.figure(PV.confidence_bands(fit, ci=ci, n_boot=n_boot, seed=seed,
                                   reward_label=reward_label), "figA4_confidence_bands",
               f"Curves with {ci:.0%} percentile bootstrap bands over users.")
    rep.figure(PV.confidence_bands(fit, ci=ci, n_boot=n_boot, seed=seed, gain=True,
                                   reward_label=reward_label), "figA4_gain_bands",
               f"Gain over random selection, user by user, with {ci:.0%} bootstrap bands over "
               f"users (the same resamples for every model: the bands show whether models "
               f"differ).")
    rep.table(fit.curves_, "curves", "Observed exact Best-of-N utilities with bootstrap bands.")

    rep.heading("Calibration of the oracle law")
    rep.figure(PV.oracle_scaling(fit, shapes=REPORT_SHAPES, reward_label=reward_label),
               "fig2_oracle_scaling", "Oracle curve and mu + c·sigma·g(N), mu fixed at the "
               "exact random utility and c·sigma fitted by least squares, for both shapes.")
    rep.table(fit.calibration_summary, "calibration",
              "Least-squares calibration of c·sigma (95% CI), mu = the exact random utility.")

    rep.heading("Diagnostics and prediction error")
    rep.table(diag_table, "diagnostics",
              "Collapse rate alpha, hacking rate beta, mean correlations of non-hacked/hacked "
              "queries, effective correlation, relMAE and R² of the unified law's prediction, "
              f"and the share of the oracle gap captured (at N={last} and gain-weighted over N), "
              "for both curve shapes.")
    rep.table(fit.predictions_, "predictions", "Observed vs predicted utility per N and shape.")
    _significance_section(rep, fit, val, ci=ci, n_boot=n_boot, seed=seed)
    for shape in REPORT_SHAPES:
        rep.figure(PV.predicted_vs_observed(fit, shape=shape, reward_label=reward_label),
                   f"figA5_predicted_vs_observed_{shape}",
                   f"Predicted (dashed) vs observed (solid), shape {shape}.")
    rep.figure(PC.correlation_distributions(fit), "fig4_correlation_distributions",
               "Per-user and per-query correlations with the collapse (0.1) and hacking (0) "
               "thresholds.")
    rep.pre("\n\n".join(str(d) for d in diags.values()))

    if base is not None and new is not None:
        rep.heading("Failure modes")
        d_base, d_new = diags[base], diags[new]
        ls = label_std_by_collapse(diagnostics=d_base, normal_threshold="auto")
        rescue = rescue_analysis(diagnostics=(d_base, d_new))
        lines = [str(ls), str(rescue)]
        if var is not None:
            lines.append(str(variance_error_correlation(val, new, var, split=None)))
        rep.pre("\n".join(lines))
        rep.figure(PF.failure_modes(fit, base, new, var), "fig6_failure_modes",
                   "(a) label std of collapsed vs normal users; (b) a representative collapsed "
                   "user; (c) per-query rescue scatter; (d) predicted variance vs error.")
        rep.table(ls.per_user, "collapse_label_std", "Per-user rho_u and label std by group.")
        rep.table(rescue.per_query, "rescue_per_query",
                  f"Per-query correlations of {selector_label(base)} and {selector_label(new)} "
                  f"and the rescue category.")
        if var is not None:
            sel_ns = sorted({n for n in (1, 5, 10, 15, 20, 30) if n <= last} | {1, last})
            sel = selector_table(val, new, var, ns=sel_ns, split=None)
            rep.table(sel, "table_a10_variance_selectors",
                      "Table A10: exact Best-of-N utility of variance-based selection rules "
                      "(N above a pool uses the whole pool).")

    rep.heading("A-priori risk report")
    rep.pre(str(risk))
    risk_fig = risk_figure(risk)
    rep.figure(risk_fig, "risk_by_half", "Realised collapse and hacking rates of the low and "
               "high label-spread halves (Tables A13/A14).")
    rep.table(risk.collapse_table, "table_a13_collapse_by_half", "Table A13.")
    rep.table(risk.hacking_table, "table_a14_hacking_by_half", "Table A14.")
    risk_files = risk.save(out, images=[("Collapse and hacking rates by half",
                                         figure_png_bytes(risk_fig))])

    rep.heading("Assumption checks")
    rep.pre(str(sg) + "\n" + str(lin))
    rep.figure(PA.sub_gaussian_figure(sg), "figA6_sub_gaussian",
               "Empirical CDF of a representative user's rewards against the Gaussian CDF and "
               "the sub-Gaussian envelope; fitted parameter vs std for every user.")
    rep.figure(PA.linearity_figure(lin), "figA7_linearity",
               "Binned E[r*|r_hat] (z-scored within user) against the line of slope rho.")
    rep.table(sg.per_user, "sub_gaussian_per_user", "Per-user sub-Gaussian parameter s.")
    rep.table(lin.summary, "linearity_summary", "Slope of the binned conditional mean vs rho.")

    rep.heading("Compute planner")
    rep.table(plan, "compute_plan",
              f"Candidates per query needed to close 25/50/75% of the oracle gap at N={last} "
              f"(shape {best}), at {cost_per_candidate:g} s per generated candidate; "
              f"inf = not reachable within 10^6 candidates.")

    if eval_dir is not None:
        say("adding the generation evaluation ...")
        evaluation_section(rep, eval_dir, out)

    text = json.dumps(provenance, indent=2, default=str) if provenance else None
    if text:
        rep.heading("Data provenance")
        rep.pre(text)
    files = rep.write(out)
    files.update(risk_files)
    if text:
        files["provenance.json"] = str(atomic_write(
            out / "provenance.json", lambda p: Path(p).write_text(text, encoding="utf-8")))
    seconds = time.perf_counter() - t0
    say(f"\n{summary}\n\nwrote {len(files)} files in {seconds:.1f} s to {out.resolve()}\n"
        f"open {(out / 'report.html').resolve()}")
    return {"out_dir": str(out.resolve()), "files": files, "fit": fit,
            "diagnostics": diag_table, "calibration": fit.calibration_summary,
            "curves": fit.curves_, "summary": summary, "seconds": seconds}
