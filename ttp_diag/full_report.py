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

from ttp_diag.exceptions import ConfigError

from .bestofn import BestOfN
from .names import selector_label
from .theory import DEFAULT_SHAPE

if TYPE_CHECKING:
    from .report import Report

__all__ = ["REPORT_SHAPES", "evaluation_summary", "evaluation_verdict", "full_report",
           "variance_column"]

#: The key printed under the one-line-per-model summary (all columns: docs/glossary.md).
_SUMMARY_KEY = ("(alpha: share of users with rho_u < 0.1; beta: share of active queries with "
                "rho_q < 0; rho_eff: effective correlation; relMAE: error of the law relative to "
                "the utility's level; gain_err: relative to the gain over random, 100% = no "
                "better than predicting no gain; capture: share of the oracle's gain over "
                "random. Key to every column: docs/glossary.md)")

#: Curve shapes the report calibrates and compares (a subset of :data:`ttp_diag.SHAPES`).
REPORT_SHAPES = (DEFAULT_SHAPE, "gaussian")  # the default first: the headline numbers use it


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
    from ttp_diag.stats import format_p_value

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
                f"{format_p_value(last['p_value'], res.attrs.get('p_draws'))} (paired "
                f"sign-flip test, {'exact' if res.attrs.get('p_draws') is None else 'Monte Carlo'}"
                f") over {int(last['n_users'])} users: "
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
                parts[-1] += (f" (the null model gives {float(r['null_expected']):.3f}; "
                              f"{r['p_text']})")
        lines.append(f"{selector_label(s)}: " + "; ".join(parts))
    rep.pre(f"{ci:.0%} two-level bootstrap intervals (users, then queries within users). "
            "Null models: no collapsed user (collapse: every user active, each query healthy "
            "or hacked as the fitted mixture says) or each user's own correlation (hacking), "
            "drawn for the observed pools conditional on the observed mean correlations; "
            "'the null model gives' is the raw rate under it (it can exceed the "
            "observed rate: then nothing beyond the null is seen). The test compares "
            "smoothed counts (each unit's probability of lying below the cut), which it names "
            "with their expectation under the null; p is the chance of a smoothed count at "
            "least as high, and at the Monte Carlo limit it reads 'p < 1/draws'.\n\n"
            + "\n".join(lines))
    table, sentences = significance_table(fit, val, ci=ci, n_boot=n_boot, seed=seed)
    if sentences:
        rep.text("Paired exact comparisons on the same queries (difference of exact expected "
                 "utilities, bootstrap interval over users, paired sign-flip test): "
                 + " ".join(sentences))
        rep.table(table, "paired_comparisons",
                  "Paired comparison of every two reward models at every N.")


#: Collapse rate of interest the report's planner plans for (a quarter of the users, as in the
#: simulations of :data:`ttp_diag.DEFAULT_MODELS`).
PLAN_COLLAPSE_RATE = 0.25


def planner_section(rep: Report, val: pd.DataFrame, new: str, base: str, *,
                    ns: Sequence[int], n_sims: int = 200, seed: int | None = 0) -> float:
    """The "Planning the next experiment" section: the two questions the table leaves open.

    ``new - base`` at the largest N (resampling the table's users and queries) and the
    collapse of ``base`` for a stated rate of :data:`PLAN_COLLAPSE_RATE` (drawn from the
    table's fitted law), by users (x1 to x16 of the table's) and queries per user (the table's
    median and twice it), with the power figure and the verdicts. Returns the seconds taken.
    """
    from .analysis.planner_sample import plan_sample
    from .plots.planner import power_figure

    t0 = time.perf_counter()
    n_users = int(val["user_id"].nunique())
    q_med = int(val.groupby("user_id")["query_id"].nunique().median())
    m_med = int(val.groupby("query_id").size().median())
    users = sorted({max(n_users, 2) * k for k in (1, 2, 4, 8, 16)})
    n = max(2, min(int(ns[-1]), m_med))
    common = dict(n=n, users=users, candidates=[m_med], n_sims=n_sims, seed=seed or 0)
    diff = plan_sample(val, new, base, questions=["difference"], queries=[q_med, 2 * q_med],
                       split=None, **common)
    coll = plan_sample(val, new, base, questions=["collapse"], failure=[base],
                       queries=[q_med], collapse_rate=PLAN_COLLAPSE_RATE, split=None, **common)
    rep.heading("Planning the next experiment")
    rep.text(
        "How many users, queries and candidates would make the two open questions answerable? "
        f"Each point simulates {n_sims} experiments of that design and analyses each with the "
        "report's own tests at level 0.05: the paired sign-flip test of the two models' exact "
        f"Best-of-{n} utilities (users and their queries resampled from this table, whose "
        "difference is taken as the truth), and the collapse null model of the diagnostics "
        f"(drawn from this table's fitted law with {PLAN_COLLAPSE_RATE:.0%} of users collapsed "
        "as an effect of interest). Intervals are 95% Clopper-Pearson over the simulated "
        "experiments. Costs use measured unit costs: " + "; ".join(
            f"{u.name}: {u.source}" for u in diff.costs_.values()) + ".")
    rep.pre("\n".join("* " + v for v in diff.verdicts_ + coll.verdicts_))
    both = pd.concat([diff.power_, coll.power_], ignore_index=True)
    rep.figure(power_figure([diff, coll], [("difference", new), ("collapse", base)]),
               "planner_power",
               f"Power against users, one line per queries-per-user value: left, "
               f"{selector_label(new)} - {selector_label(base)} at N={n}; right, collapse of "
               f"{selector_label(base)} for a stated rate of {PLAN_COLLAPSE_RATE:.0%}. Dashed: "
               "the 80% target; dotted: the test's level.")
    rep.table(both, "planner_power", "Power of every simulated design (truth: the planned "
              "effect; costs in hours for generating, labelling and scoring).")
    return time.perf_counter() - t0


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
            if "n_points" not in ra.columns:
                # written before the agreement was computed over reward models (one point per
                # method, with the same RM repeated): not comparable, so not summarised
                parts.append(f"{ra_f} was written by an older version (correlations over "
                             f"methods); re-run `ttp-diag evaluate` on this run to recompute "
                             f"it over reward models.")
            else:
                parts.append(
                    f"Of the upstream metrics, {r['upstream']} ranks the reward models most "
                    f"like generation quality: Kendall tau {iv} over {int(r['n_points'])} reward "
                    f"models ({r.get('family', 'all')} decoding; bootstrap over users); with so "
                    f"few reward models and users, read the intervals, not the points.")
    rq_f = ev / "tables" / "rho_eff_vs_accuracy.csv"
    if rq_f.is_file():
        rq = pd.read_csv(rq_f)
        rq = rq[(rq["statistic"] == "kendall_tau") & rq["difference"].notna()]
        if len(rq):
            r = rq.iloc[0]
            d_iv = _fmt_iv(r["difference"], r["ci_low"], r["ci_high"])
            verdict = ("rho_eff predicts it better" if r["ci_low"] > 0 else
                       "ranking accuracy predicts it better" if r["ci_high"] < 0 else
                       "this sample cannot tell which predicts it better")
            parts.append(f"Across {int(r['n_points'])} Best-of-N reward models and "
                         f"{int(r['n_users'])} users, Kendall tau with {r['quality']}: rho_eff "
                         f"{r['rho_eff']:.2f}, ranking accuracy {r['rm_accuracy']:.2f}, "
                         f"difference {d_iv}: {verdict}.")
    return " ".join(parts)


def evaluation_verdict(eval_dir: str | Path):
    """The :func:`ttp_diag.verdict.eval_verdict` of an evaluation folder, from its
    ``tables/summary_long.csv`` and (when written) ``tables/rho_eff_vs_accuracy.csv``: what
    ``ttp-diag evaluate`` prints first and the report's evaluation section shows."""
    from .exceptions import InputFileError
    from .verdict import eval_verdict

    t = Path(eval_dir) / "tables"
    if not (t / "summary_long.csv").is_file():
        raise InputFileError(f"{t / 'summary_long.csv'} not found: run `ttp-diag evaluate "
                             f"--run-dir <run>` first")
    rho_f = t / "rho_eff_vs_accuracy.csv"
    return eval_verdict(pd.read_csv(t / "summary_long.csv"),
                        pd.read_csv(rho_f) if rho_f.is_file() else None)


def evaluation_section(rep: Any, eval_dir: str | Path, out: Path) -> None:
    """Add the "Generation evaluation" section: the verdict, the paragraph, the figure, the
    table paths."""
    ev = Path(eval_dir)
    rep.heading("Generation evaluation")
    v = evaluation_verdict(ev)
    rep.callout(v.headline, v.by_model())
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
                eval_dir: str | Path | None = None, plan_sims: int = 200,
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
    plan_sims : int, default 200
        Simulated experiments per design of the "Planning the next experiment" section
        (:func:`planner_section`; needs ``base`` and ``new``); 0 leaves it out.
    progress : bool, default False
        Print what is being done and where the report went.

    Returns
    -------
    dict
        ``out_dir``, ``files`` (name -> path), ``fit`` (the fitted :class:`BestOfN`),
        ``diagnostics`` (DataFrame), ``calibration`` (DataFrame), ``curves`` (DataFrame),
        ``summary`` (str), ``verdict`` (:class:`ttp_diag.verdict.Verdict`), ``seconds``.
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
    from .plots import figures as F
    from .plots.curves import verdict_figure
    from .report import Report, figure_png_bytes

    t0 = time.perf_counter()
    say = print if progress else (lambda *_: None)
    from ._checks import check_ci, check_n_boot, check_seed

    ci = check_ci(ci, allow_none=False)
    n_boot = check_n_boot(n_boot, ci=ci)  # the bands and tests are ci-level intervals
    seed = check_seed(seed)
    from ._checks import check_output_dir

    out = check_output_dir(out_dir)
    _check_columns(table, base=base, new=new, var=var)
    if (base is None) != (new is None):
        raise ConfigError("pass both base= and new= (two score columns to compare) or neither.")
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
            raise ConfigError(f"{s!r} (base/new) is not among the analysed score columns "
                              f"{scores}; add it to scores.")
    out.mkdir(parents=True, exist_ok=True)
    n_users, n_queries = val["user_id"].nunique(), val["query_id"].nunique()
    pools = val.groupby("query_id").size()
    say(f"ttp-diag demo: {source}: {n_users} users, {n_queries} {split} queries, "
        f"{int(pools.min())}-{int(pools.max())} candidates per query; N = {ns[0]}..{ns[-1]}")

    # ---- numbers (everything below reuses the one fit)
    # the headline numbers use the default shape (the first one fitted), as `ttp-diag analyze`
    # and BestOfN do; the shape that fits the oracle best is reported beside it
    diags, shape0, best = fit.diagnostics_, fit.shapes[0], fit.best_shape_
    diag_table = fit.summary
    risk = risk_report(table, scores, eval_split=split, diagnostics=diags)
    sg = sub_gaussian_check(val, split=None)
    lin = linearity_check(val, scores, split=None)
    plan = plan_compute(diags, fit.calibrations_[shape0], cost_per_candidate=cost_per_candidate,
                        shares=(0.25, 0.5, 0.75), n_ref=int(ns[-1]), n_max=10**6)
    say(f"  analyses done in {time.perf_counter() - t0:.1f} s")

    # ---- report
    rep = Report("ttp-diag demo: Best-of-N diagnostics")
    last = ns[-1]
    unit = "ROUGE" if reward_label.startswith("ROUGE") else ""
    verdict = fit.verdict(unit=unit)
    say(f"\n{verdict}\n\ndrawing the figures and writing the report ...")
    rep.callout("Verdict: " + verdict.headline, verdict.by_model())
    rep.figure(verdict_figure(fit, reward_label=reward_label), "fig0_gain_over_random",
               f"(a) Each reward model's exact gain over random selection by N, with {ci:.0%} "
               f"percentile bootstrap bands over users (the oracle, whose gain is much larger, "
               f"is left out; it is in the figures below). (b) The gain at N={last} with the "
               f"paired interval over users the verdict uses. Column key: docs/glossary.md.")
    rep.text(f"Data: {source}. Split '{split}': {n_users} users, {n_queries} queries, "
             f"{len(val)} candidates ({int(pools.min())}-{int(pools.max())} per query). "
             f"Reward models: {', '.join(selector_label(s) for s in scores)}. All Best-of-N "
             f"values are exact expectations over every N-subset of each query's pool (no "
             f"resampling); population utility is the mean over users of each user's mean over "
             f"queries."
             + (f" Pools differ in size (de-duplicated candidates): for N above a query's pool "
                f"the whole pool is used ({int((pools < ns[-1]).sum())} of {n_queries} queries "
                f"have fewer than {ns[-1]} candidates)." if fit.pool_ == "clip" else ""))
    summary = fit.summary_text(shape0)
    rep.pre(f"Curve shape: {shape0} (the default; oracle fit R² "
            f"{fit.calibrations_[shape0].r2:.3f}); best oracle fit: {best} (R² "
            f"{fit.calibrations_[best].r2:.3f})\n" + summary + "\n" + _SUMMARY_KEY)
    # issue 21: which prediction each model's curve uses (law or refined), and why
    rep.pre("Prediction used per reward model (BestOfN(prediction=...)):\n" + "\n".join(
        f"{selector_label(sc)}: {fit.prediction_.get(sc, 'law')} -- "
        f"{fit.prediction_reason_.get(sc, '')}" for sc in scores))

    rep.heading("Best-of-N curves with theory")
    for shape in sorted(REPORT_SHAPES, key=lambda s: s != shape0):
        rep.figure(F.task_panel(fit, shape=shape, reward_label=reward_label),
                   f"fig5_task_panel_{shape}",
                   f"Observed exact Best-of-N curves (solid, markers) and each model's "
                   f"prediction from its four diagnostics (dash-dot), shape {shape}"
                   + (" (the default)" if shape == shape0 else "")
                   + (" (the best oracle fit)" if shape == best else "")
                   + "; per-user and per-query correlations below.")
    rep.figure(F.confidence_bands(fit, ci=ci, n_boot=n_boot, seed=seed,
                                   reward_label=reward_label), "figA4_confidence_bands",
               f"Curves with {ci:.0%} percentile bootstrap bands over users.")
    rep.figure(F.confidence_bands(fit, ci=ci, n_boot=n_boot, seed=seed, gain=True,
                                   reward_label=reward_label), "figA4_gain_bands",
               f"Gain over random selection, user by user, with {ci:.0%} bootstrap bands over "
               f"users (the same resamples for every model: the bands show whether models "
               f"differ).")
    rep.table(fit.curves_, "curves", "Observed exact Best-of-N utilities with bootstrap bands.")

    rep.heading("Calibration of the oracle law")
    rep.figure(F.oracle_scaling(fit, shapes=REPORT_SHAPES, reward_label=reward_label),
               "fig2_oracle_scaling", "Oracle curve and mu + c·sigma·g(N), mu fixed at the "
               "exact random utility and c·sigma fitted by least squares, for both shapes.")
    rep.table(fit.calibration_summary, "calibration",
              "Least-squares calibration of c·sigma (95% CI), mu = the exact random utility.")

    rep.heading("Diagnostics and prediction error")
    rep.table(diag_table, "diagnostics",
              "Collapse rate alpha, hacking rate beta, mean correlations of non-hacked/hacked "
              "queries, effective correlation, relMAE and R² of the unified law's prediction, "
              f"and the share of the oracle gap captured (at N="
              f"{fit.capture_column.removeprefix('capture_N')} and gain-weighted over N), "
              "for both curve shapes.")
    rep.table(fit.predictions_, "predictions", "Observed vs predicted utility per N and shape.")
    _significance_section(rep, fit, val, ci=ci, n_boot=n_boot, seed=seed)
    for shape in REPORT_SHAPES:
        rep.figure(F.predicted_vs_observed(fit, shape=shape, reward_label=reward_label),
                   f"figA5_predicted_vs_observed_{shape}",
                   f"Predicted (dashed) vs observed (solid), shape {shape}.")
    rep.figure(F.correlation_distributions(fit), "fig4_correlation_distributions",
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
        rep.figure(F.failure_modes(fit, base, new, var), "fig6_failure_modes",
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
    risk_fig = F.risk_figure(risk)
    rep.figure(risk_fig, "risk_by_half", "Realised collapse and hacking rates of the low and "
               "high label-spread halves (Tables A13/A14).")
    rep.table(risk.collapse_table, "table_a13_collapse_by_half", "Table A13.")
    rep.table(risk.hacking_table, "table_a14_hacking_by_half", "Table A14.")
    risk_files = risk.save(out, images=[("Collapse and hacking rates by half",
                                         figure_png_bytes(risk_fig))])

    rep.heading("Assumption checks")
    rep.pre(str(sg) + "\n" + str(lin))
    rep.figure(F.sub_gaussian_figure(sg), "figA6_sub_gaussian",
               "Empirical CDF of a representative user's rewards against the Gaussian CDF and "
               "the sub-Gaussian envelope; fitted parameter vs std for every user.")
    rep.figure(F.linearity_figure(lin), "figA7_linearity",
               "Binned E[r*|r_hat] (z-scored within user) against the line of slope rho.")
    rep.table(sg.per_user, "sub_gaussian_per_user", "Per-user sub-Gaussian parameter s.")
    rep.table(lin.summary, "linearity_summary", "Slope of the binned conditional mean vs rho.")

    rep.heading("Compute planner")
    rep.table(plan, "compute_plan",
              f"Candidates per query needed to close 25/50/75% of the oracle gap at N={last} "
              f"(shape {shape0}), at {cost_per_candidate:g} s per generated candidate; "
              f"inf = not reachable within 10^6 candidates.")

    if plan_sims and base is not None and new is not None:
        say("planning the next experiment (simulated designs) ...")
        secs = planner_section(rep, val, new, base, ns=ns, n_sims=plan_sims, seed=seed)
        say(f"  planner done in {secs:.1f} s")

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
    say(f"\n{summary}\n{_SUMMARY_KEY}\n\nwrote {len(files)} files in "
        f"{seconds:.1f} s to {out.resolve()}\n"
        f"open {(out / 'report.html').resolve()}")
    return {"out_dir": str(out.resolve()), "files": files, "fit": fit,
            "diagnostics": diag_table, "calibration": fit.calibration_summary,
            "curves": fit.curves_, "summary": summary, "verdict": verdict,
            "seconds": seconds}
