"""The evaluation's tables as CSV and markdown (second paper's Tables 2, 4, 5 and 6).

Every number comes with what it rests on: per-method values are means over adaptation users
of per-user means, with a percentile bootstrap interval over users (``ci``) and the number
of users; correlations across methods carry the number of methods and a bootstrap interval
over users.

* ``generation_quality`` - ROUGE-1, ROUGE-L, MiniLM cosine and the reward per method (the
  numbers behind the paper's Fig. 2).
* ``table2_rm_vs_policy`` - RM ranking accuracy and policy accuracy per method, pooled over
  pair sources and per source (``_hard_negative``: the user's gold vs a similar item's gold;
  ``_candidates``: two generated candidates by true reward), with the Pearson / Spearman /
  Kendall correlation between the two across reward models, one point per reward model
  within each decoding family whose policy accuracy is not the RM accuracy by construction
  (ARGS; Best-of-N selects with the reward model itself, so its two accuracies are equal),
  pooled and per source (``table2_correlations``, columns ``family``, ``pairs``) (Table 2).
* ``table4_accuracy_wide`` - the same accuracies, methods as columns, one row per metric and
  pair source (Table 4's layout).
* ``table5_win_rate`` - one row per method and comparison: the circular win rate (the
  method's own reward model judges) and the true win rate (gold reward), against the
  zero-shot answer and, for Best-of-N selectors, against a random draw from the same pool.
  The ceiling a selector reaches by its own score (``n / (n + 1)`` for continuous scores;
  exactly ``1 - 1/(2M)`` against a draw from a pool of M, ties counted as half) belongs to the
  pool-draw comparison only and is shown only there (Table 5).
* ``table6_rank_agreement`` - every upstream predictor against ROUGE-1 and the reward:
  Kendall tau, Spearman rho, Pearson r across reward models, one point per reward model
  within each decoding family (``family``; ``all`` = every (reward model, family) point), a
  bootstrap over users (Table 6, extended with rho_eff, alpha and beta). Outcome-derived
  quantities (``capture``, ``true_win_rate``) are no predictors and are left out.
* ``rho_eff_vs_accuracy`` - the question the package exists for: across the Best-of-N
  reward models, does rho_eff predict generation quality better than ranking accuracy?
  Both correlations and their paired difference with a bootstrap interval over users.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.metrics import rank_agreement
from ttp_diag.stats import (
    CORRELATIONS,
    MIN_USERS_FOR_CI,
    bootstrap_mean_ci,
    correlation_difference,
    format_p_value,
    resample_counts,
    sign_flip_test,
)

__all__ = ["write_tables", "method_summary", "to_markdown", "UPSTREAM", "OUTCOME_DERIVED",
           "policy_family", "agreement_over_rms", "rho_eff_vs_accuracy"]

#: Upstream predictors of generation quality (measured without the generated answers' gold
#: reward). ``capture`` and ``true_win_rate`` are computed from the outcome itself and are
#: never predictors (OUTCOME_DERIVED).
UPSTREAM = ["rm_accuracy", "policy_accuracy", "win_rate", "rho_eff", "alpha", "beta"]
OUTCOME_DERIVED = ["capture", "true_win_rate", "true_win_rate_vs_pool"]

#: Decoding families whose policy accuracy is the RM accuracy by construction.
SELECTS_WITH_RM = ("best_of_n", "lora_best_of_n")

#: Pair sources the accuracies are also split by (suffixes of the upstream metric names).
PAIR_SOURCES = ("hard_negative", "candidates")


def _accuracy_metrics(present) -> list[str]:
    """Pooled accuracies first, then per pair source, for the metrics present."""
    out = []
    for suffix in ("", *(f"_{s}" for s in PAIR_SOURCES)):
        out += [f"{m}{suffix}" for m in ("rm_accuracy", "policy_accuracy")
                if f"{m}{suffix}" in present]
    return out


def policy_family(method: str) -> tuple[str, str] | None:
    """(decoding family, reward model) of a method, or None when it uses no reward model.

    Examples
    --------
    >>> policy_family("args_prob_sampled"), policy_family("bon_det"), policy_family("icl")
    (('args_sampled', 'prob'), ('best_of_n', 'det'), None)
    >>> policy_family("judge_pairwise"), policy_family("bon_oracle")
    (('best_of_n', 'judge_pairwise'), None)
    """
    if method in ("bon_random", "bon_oracle"):
        return None  # the two ends of the capture scale, no reward model
    if method.startswith("judge_"):
        return "best_of_n", method
    for prefix, fam in (("lora_bon_", "lora_best_of_n"), ("bon_", "best_of_n"),
                        ("args_", "args")):
        if method.startswith(prefix):
            rm = method[len(prefix):]
            if fam == "args" and rm.endswith("_sampled"):
                return "args_sampled", rm[: -len("_sampled")]
            return fam, rm
    return None


def _family_points(per_user: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """per family: the per-user rows of its methods with ``method`` = the reward model; and
    ``all`` with ``method`` = ``family:rm`` (one point per reward model and family)."""
    fam = per_user["method"].map(policy_family)
    d = per_user[fam.notna()].copy()
    if d.empty:
        return {}
    d["family"] = [f for f, _ in fam[fam.notna()]]
    d["rm"] = [r for _, r in fam[fam.notna()]]
    out = {f: g.assign(method=g["rm"]) for f, g in d.groupby("family", sort=True)}
    out["all"] = d.assign(method=d["family"] + ":" + d["rm"])
    return out


def agreement_over_rms(per_user: pd.DataFrame, predictors, quality: str, *,
                       ci: float | None = 0.95, n_boot: int = 1000,
                       seed: int | None = 0) -> pd.DataFrame:
    """Rank agreement between predictors and a quality metric across reward models.

    One point per reward model within each decoding family (and ``family="all"``: one point
    per (reward model, family)); each point's coordinates are means over users, the interval
    a bootstrap over users (:func:`ttp_diag.gen.evaluation.metrics.rank_agreement`).

    Returns
    -------
    pandas.DataFrame
        ``family, upstream, quality, statistic, estimate, ci_low, ci_high, n_points,
        n_users``; predictors a family lacks are left out.

    Examples
    --------
    >>> rows = [(f"{fam}_{rm}", f"u{u}", k, v) for fam in ("args", "bon")
    ...         for rm, v in (("a", 1.0), ("b", 2.0), ("c", 3.0)) for u in range(5)
    ...         for k in ("rm_accuracy", "rouge1")]
    >>> d = pd.DataFrame(rows, columns=["method", "user_id", "metric", "value"])
    >>> r = agreement_over_rms(d, ["rm_accuracy"], "rouge1", ci=None)
    >>> r[r["statistic"] == "kendall_tau"][["family", "estimate", "n_points"]]
          family  estimate  n_points
    0       args       1.0         3
    3  best_of_n       1.0         3
    6        all       1.0         6
    """
    rows = []
    for fam, d in _family_points(per_user).items():
        present = set(d.dropna(subset=["value"])["metric"])
        ups = [p for p in predictors if p in present and p not in OUTCOME_DERIVED]
        if quality not in present or not ups:
            continue
        r = rank_agreement(d, ups, quality, ci=ci, n_boot=n_boot, seed=seed)
        rows.append(r.rename(columns={"n_methods": "n_points"}).assign(family=fam))
    if not rows:
        return pd.DataFrame(columns=["family", "upstream", "quality", "statistic", "estimate",
                                     "ci_low", "ci_high", "n_points", "n_users"])
    out = pd.concat(rows, ignore_index=True)
    return out[["family"] + [c for c in out.columns if c != "family"]]


def rho_eff_vs_accuracy(per_user: pd.DataFrame, quality: str, *, ci: float = 0.95,
                        n_boot: int = 1000, seed: int | None = 0) -> pd.DataFrame:
    """Does rho_eff predict generation quality where ranking accuracy fails?

    Across the Best-of-N reward models (one point each; points having rho_eff, RM accuracy
    and ``quality``), the correlation of each predictor with ``quality`` and their paired
    difference ``corr(rho_eff) - corr(rm_accuracy)``, all on one bootstrap over users
    (:func:`ttp_diag.stats.correlation_difference`). A difference whose interval lies above
    0 says rho_eff is the better predictor on these reward models and users.

    Returns
    -------
    pandas.DataFrame
        ``family, quality, statistic, rho_eff, rho_eff_ci_low, rho_eff_ci_high, rm_accuracy,
        rm_accuracy_ci_low, rm_accuracy_ci_high, difference, ci_low, ci_high, n_points,
        n_users`` (empty when no family has both predictors).
    """
    rows = []
    for fam, d in _family_points(per_user).items():
        if fam not in SELECTS_WITH_RM:
            continue
        wide = d.pivot_table(index="user_id", columns=["metric", "method"], values="value")
        if not {"rho_eff", "rm_accuracy", quality} <= set(wide.columns.get_level_values(0)):
            continue
        pts = sorted(set(wide["rho_eff"].columns) & set(wide["rm_accuracy"].columns)
                     & set(wide[quality].columns))
        if not pts:
            continue
        mats = [wide[k].reindex(columns=pts).to_numpy(float)
                for k in ("rho_eff", "rm_accuracy", quality)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # n_users says it
            r = correlation_difference(*mats, ci=ci, n_boot=n_boot, seed=seed)
        for k in CORRELATIONS:
            rows.append(dict(
                family=fam, quality=quality, statistic=k,
                rho_eff=r["x"]["estimate"][k], rho_eff_ci_low=r["x"]["ci_low"][k],
                rho_eff_ci_high=r["x"]["ci_high"][k],
                rm_accuracy=r["z"]["estimate"][k], rm_accuracy_ci_low=r["z"]["ci_low"][k],
                rm_accuracy_ci_high=r["z"]["ci_high"][k], difference=r["difference"][k],
                ci_low=r["ci_low"][k], ci_high=r["ci_high"][k], n_points=r["n_points"],
                n_users=r["n_users"]))
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub markdown table (no extra dependency).

    Examples
    --------
    >>> print(to_markdown(pd.DataFrame({"a": [1.23456], "b": ["x"]})))
    | a | b |
    | --- | --- |
    | 1.235 | x |
    """
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |",
             "| " + " | ".join("---" for _ in df.columns) + " |"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines)


def method_summary(per_user: pd.DataFrame, *, ci: float | None = 0.95, n_boot: int = 1000,
                   seed: int | None = 0, baseline: str | None = "zero_shot") -> pd.DataFrame:
    """Mean over users per (method, metric) with a bootstrap interval over users, and the
    paired difference against ``baseline`` on the same users.

    Parameters
    ----------
    per_user : pandas.DataFrame
        ``method, user_id, metric, value`` (one value per user).
    ci : float or None, default 0.95
        Level of the percentile bootstrap over users
        (:func:`ttp_diag.stats.bootstrap_mean_ci` on one resample matrix shared by every
        method and metric); NaN for a method and metric with fewer than 5 users.
    n_boot, seed : int
    baseline : str or None, default "zero_shot"
        Each method's per-user difference from this method on the same metric and users:
        ``diff`` (mean), ``diff_low``/``diff_high`` (bootstrap interval over users on the same
        shared resamples) and ``diff_p`` (two-sided sign-flip test of
        :func:`ttp_diag.stats.sign_flip_test`, exact up to 12 users; ``diff_p_draws`` random
        sign patterns beyond, NaN when exact), ``n_paired`` users. NaN
        where the baseline is missing, for the baseline itself, or below 5 paired users.
        Two methods' intervals overlapping says nothing about their difference; this does.

    Examples
    --------
    >>> d = pd.DataFrame({"method": ["m"] * 2 + ["zero_shot"] * 2, "user_id": ["a", "b"] * 2,
    ...                   "metric": "x", "value": [0.2, 0.4, 0.1, 0.1]})
    >>> method_summary(d, ci=None)[["method", "metric", "mean", "diff", "n_users"]]
          method metric  mean  diff  n_users
    0          m      x   0.3   0.2        2
    1  zero_shot      x   0.1   0.0        2
    """
    d = per_user.dropna(subset=["value"])
    users = sorted(d["user_id"].unique())
    # one resample matrix over every user of the table (shared resamples): methods and
    # metrics on the same users are bootstrapped on the same draws, so equal values get
    # equal intervals and adding a method or a metric moves no other interval
    counts = (resample_counts(len(users), n_boot, seed)
              if ci is not None and len(users) >= MIN_USERS_FOR_CI else None)
    by_user = {mk: g.groupby("user_id")["value"].mean().reindex(users)
               for mk, g in d.groupby(["method", "metric"])}
    rows = []
    for (m, k), v in by_user.items():
        lo = hi = np.nan
        n = int(v.notna().sum())
        if counts is not None and n >= MIN_USERS_FOR_CI:
            low, high = bootstrap_mean_ci(v.to_numpy(float), ci=ci, counts=counts)
            lo, hi = float(low[0]), float(high[0])
        row = dict(method=m, metric=k, mean=float(v.mean()), ci_low=lo, ci_high=hi,
                   n_users=n, ci_level=np.nan if ci is None else float(ci))
        b = by_user.get((baseline, k)) if baseline is not None else None
        if b is not None:
            diff = (v - b).to_numpy(float)  # NaN where either is missing
            ok = np.isfinite(diff)
            row.update(diff=float(diff[ok].mean()) if ok.any() else np.nan, diff_low=np.nan,
                       diff_high=np.nan, diff_p=np.nan, diff_p_draws=np.nan,
                       n_paired=int(ok.sum()))
            if m != baseline and counts is not None and ok.sum() >= MIN_USERS_FOR_CI:
                dl, dh = bootstrap_mean_ci(diff, ci=ci, counts=counts)
                p, draws = sign_flip_test(diff[ok], n_flips=n_boot, seed=seed)
                row.update(diff_low=float(dl[0]), diff_high=float(dh[0]), diff_p=float(p[0]),
                           diff_p_draws=np.nan if draws is None else draws)
        rows.append(row)
    return pd.DataFrame(rows)


def _pivot_diff(s: pd.DataFrame, metrics, baseline: str) -> pd.DataFrame:
    """Paired differences against ``baseline`` as one cell per method and metric."""
    s = s[s["metric"].isin(metrics) & (s["method"] != baseline)].dropna(subset=["diff"])
    if s.empty:
        return pd.DataFrame()
    s = s.assign(cell=[
        f"{x:+.3f} [{lo:+.3f}, {hi:+.3f}] ({format_p_value(p, None if np.isnan(n) else int(n))})"
        if np.isfinite(lo) else f"{x:+.3f}"
        for x, lo, hi, p, n in zip(s["diff"], s["diff_low"], s["diff_high"], s["diff_p"],
                                   s["diff_p_draws"], strict=True)])
    w = s.pivot(index="method", columns="metric", values="cell")
    n = s.groupby("method")["n_paired"].max().astype(int).rename("n_users")
    return w.reindex(columns=[c for c in metrics if c in w.columns]).join(n).reset_index()


def _write(out: Path, name: str, df: pd.DataFrame, paths: dict, note: str = "") -> None:
    from ttp_diag.gen.candidates import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(out / f"{name}.md", (note + "\n\n" if note else "") + to_markdown(df))
    paths[name] = out / f"{name}.csv"


def _pivot(s: pd.DataFrame, metrics) -> pd.DataFrame:
    s = s[s["metric"].isin(metrics)].copy()
    s["cell"] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{m:.3f}"
                 for m, lo, hi in zip(s["mean"], s["ci_low"], s["ci_high"], strict=True)]
    w = s.pivot(index="method", columns="metric", values="cell")
    n = s.groupby("method")["n_users"].max().rename("n_users")
    return w.reindex(columns=[c for c in metrics if c in w.columns]).join(n).reset_index()


def _table5(summ: pd.DataFrame) -> pd.DataFrame:
    """Win rates, one row per method and comparison; the ceiling only where it belongs."""
    def cell(method, metric):
        r = summ[(summ["method"] == method) & (summ["metric"] == metric)]
        if r.empty:
            return np.nan, np.nan, np.nan, 0
        r = r.iloc[0]
        return r["mean"], r["ci_low"], r["ci_high"], int(r["n_users"])

    rows = []
    for m in sorted(summ["method"].unique()):
        for comp, circ, true, ceil in (
                ("zero-shot answer", "win_rate", "true_win_rate", None),
                ("random draw from the pool", "win_rate_vs_pool", "true_win_rate_vs_pool",
                 "ceiling_vs_pool")):
            c, t = cell(m, circ), cell(m, true)
            if np.isnan(c[0]) and np.isnan(t[0]):
                continue
            row = dict(method=m, comparison=comp, circular_win_rate=c[0], circular_ci_low=c[1],
                       circular_ci_high=c[2], true_win_rate=t[0], true_ci_low=t[1],
                       true_ci_high=t[2],
                       own_score_ceiling=cell(m, ceil)[0] if ceil else np.nan,
                       n_users=max(c[3], t[3]))
            rows.append(row)
    return pd.DataFrame(rows)


def write_tables(eval_dir, quality: pd.DataFrame, upstream: pd.DataFrame, *,
                 ci: float | None = 0.95, n_boot: int = 1000, seed: int | None = 0) -> dict:
    """Write every table under ``eval_dir/tables``; return ``name -> csv path``."""
    out = Path(eval_dir) / "tables"
    paths: dict = {}
    q_user = quality.groupby(["method", "user_id", "metric"])["value"].mean().reset_index()
    per_user = pd.concat([q_user, upstream[["method", "user_id", "metric", "value"]]],
                         ignore_index=True)
    summ = method_summary(per_user, ci=ci, n_boot=n_boot, seed=seed)
    _write(out, "summary_long", summ, paths)
    lvl = f"{int(round(100 * ci))}%" if ci else "no"
    quality_metrics = ["rouge1", "rougeL", "minilm", "reward"]
    _write(out, "generation_quality", _pivot(summ, quality_metrics),
           paths, f"Generation quality against the users' gold text: mean over adaptation "
           f"users [{lvl} bootstrap interval over users].")
    vs = _pivot_diff(summ, quality_metrics, "zero_shot")
    if len(vs):
        _write(out, "generation_quality_vs_zero_shot", vs, paths,
               "Each method minus zero_shot on the same adaptation users: mean paired "
               f"difference [{lvl} bootstrap interval over users] and the two-sided sign-flip "
               "p-value (exact over all sign patterns up to 12 users). An interval that spans "
               "0 means this sample cannot tell the method from zero-shot.")
    present = set(per_user.dropna(subset=["value"])["metric"])
    acc_metrics = _accuracy_metrics(present)
    acc = _pivot(summ, acc_metrics)
    corr = []
    fams = _family_points(per_user)
    for fam, d in fams.items():
        if fam in SELECTS_WITH_RM or fam == "all":
            continue  # policy accuracy = RM accuracy by construction (or mixed families)
        have = set(d.dropna(subset=["value"])["metric"])
        for suffix, label in (("", "pooled"), *((f"_{s}", s) for s in PAIR_SOURCES)):
            rm_m, pol_m = f"rm_accuracy{suffix}", f"policy_accuracy{suffix}"
            if {rm_m, pol_m} <= have:
                c = rank_agreement(d, [rm_m], pol_m, ci=ci, n_boot=n_boot, seed=seed)
                c = c.rename(columns={"n_methods": "n_points"}).assign(
                    upstream="rm_accuracy", quality="policy_accuracy")
                c.insert(0, "pairs", label)
                c.insert(0, "family", fam)
                corr.append(c)
    _write(out, "table2_rm_vs_policy", acc, paths,
           "Table 2: RM ranking accuracy (Def. 1) and policy accuracy (Def. 2) on the "
           "adaptation users' query pairs; ties count one half. Columns without a suffix "
           "pool every pair; _hard_negative = the user's gold vs a similar item's gold, "
           "_candidates = two generated candidates ordered by true reward. For Best-of-N "
           "methods policy accuracy equals RM accuracy by construction (they select with the "
           "reward model).")
    if corr:
        _write(out, "table2_correlations", pd.concat(corr, ignore_index=True), paths,
               "Correlation between RM accuracy and policy accuracy across reward models "
               "(one point per reward model) within each decoding family whose policy "
               "accuracy is not the RM accuracy by construction (ARGS), on all query pairs "
               f"(pooled) and per pair source; [{lvl} bootstrap interval over users]. With "
               "n_points = 3 a correlation rests on three reward models: read the interval.")
    wide = summ[summ["metric"].isin(acc_metrics)].pivot(
        index="metric", columns="method", values="mean")
    wide = wide.reindex([m for m in acc_metrics if m in wide.index]).reset_index()
    _write(out, "table4_accuracy_wide", wide, paths,
           "Table 4 layout: mean accuracy over users per method; one row per metric and pair "
           "source (no suffix = all pairs).")
    _write(out, "table5_win_rate", _table5(summ), paths,
           "Table 5: win rates per method and comparison, mean over users [interval over "
           "users]. circular = the method's own reward model prefers its answer; true = the "
           "gold reward does; ties count one half. own_score_ceiling is what any Best-of-M "
           "selector reaches against a random draw from its own pool when judged by its own "
           "score (1 - 1/(2M), the finite-pool form of n/(n+1)); it belongs to that "
           "comparison only and is left empty against the zero-shot answer, which a "
           "selector can beat or lose to without bound.")
    t6 = [agreement_over_rms(per_user, UPSTREAM, q, ci=ci, n_boot=n_boot, seed=seed)
          for q in ("rouge1", "reward") if q in present]
    t6 = [t for t in t6 if len(t)]
    if t6:
        _write(out, "table6_rank_agreement", pd.concat(t6, ignore_index=True), paths,
               "Table 6: rank agreement across reward models between each upstream predictor "
               "and generation quality; one point per reward model within a decoding family "
               "(family=all: one point per reward model and family); n_points = reward models "
               f"having both; [{lvl} bootstrap interval over users]. capture and "
               "true_win_rate are computed from the outcome and are not predictors.")
    if ci is not None:
        rq = [rho_eff_vs_accuracy(per_user, q, ci=ci, n_boot=n_boot, seed=seed)
              for q in ("reward", "rouge1") if q in present]
        rq = [t for t in rq if len(t)]
        if rq:
            _write(out, "rho_eff_vs_accuracy", pd.concat(rq, ignore_index=True), paths,
                   "Does rho_eff predict generation quality where ranking accuracy fails? "
                   "Across the Best-of-N reward models: the correlation of rho_eff and of RM "
                   "ranking accuracy with quality, and their paired difference (rho_eff minus "
                   f"accuracy) [{lvl} bootstrap interval over users, shared resamples]. An "
                   "interval above 0 says rho_eff predicts better on these reward models; one "
                   "that spans 0 says this sample cannot tell.")
    return paths
