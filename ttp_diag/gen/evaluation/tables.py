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
  Kendall correlation between the two across methods, pooled and per source
  (``table2_correlations``, column ``pairs``) (Table 2).
* ``table4_accuracy_wide`` - the same accuracies, methods as columns, one row per metric and
  pair source (Table 4's layout).
* ``table5_win_rate`` - circular win rate against zero-shot beside the true win rate (gold
  reward) and the best-of-n ceiling ``n / (n + 1)`` for the run's mean pool size (Table 5).
* ``table6_rank_agreement`` - every upstream metric against ROUGE-1 and the reward:
  Kendall tau, Spearman rho, Pearson r across methods (Table 6, extended with rho_eff,
  alpha, beta and capture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.metrics import bon_win_rate_ceiling, rank_agreement
from ttp_diag.stats import MIN_USERS_FOR_CI, bootstrap_mean_ci, resample_counts

__all__ = ["write_tables", "method_summary", "to_markdown", "UPSTREAM"]

UPSTREAM = ["rm_accuracy", "policy_accuracy", "win_rate", "rho_eff", "alpha", "beta",
            "capture"]

#: Pair sources the accuracies are also split by (suffixes of the upstream metric names).
PAIR_SOURCES = ("hard_negative", "candidates")


def _accuracy_metrics(present) -> list[str]:
    """Pooled accuracies first, then per pair source, for the metrics present."""
    out = []
    for suffix in ("", *(f"_{s}" for s in PAIR_SOURCES)):
        out += [f"{m}{suffix}" for m in ("rm_accuracy", "policy_accuracy")
                if f"{m}{suffix}" in present]
    return out


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
                   seed: int | None = 0) -> pd.DataFrame:
    """Mean over users per (method, metric) with a bootstrap interval over users.

    Parameters
    ----------
    per_user : pandas.DataFrame
        ``method, user_id, metric, value`` (one value per user).
    ci : float or None, default 0.95
        Level of the percentile bootstrap over users
        (:func:`ttp_diag.stats.bootstrap_mean_ci` on one resample matrix shared by every
        method and metric); NaN for a method and metric with fewer than 5 users.
    n_boot, seed : int

    Examples
    --------
    >>> d = pd.DataFrame({"method": "m", "user_id": ["a", "b"], "metric": "x",
    ...                   "value": [0.2, 0.4]})
    >>> method_summary(d, ci=None)[["method", "metric", "mean", "n_users"]]
      method metric  mean  n_users
    0      m      x   0.3        2
    """
    d = per_user.dropna(subset=["value"])
    users = sorted(d["user_id"].unique())
    # one resample matrix over every user of the table (shared resamples): methods and
    # metrics on the same users are bootstrapped on the same draws, so equal values get
    # equal intervals and adding a method or a metric moves no other interval
    counts = (resample_counts(len(users), n_boot, seed)
              if ci is not None and len(users) >= MIN_USERS_FOR_CI else None)
    rows = []
    for (m, k), g in d.groupby(["method", "metric"]):
        v = g.groupby("user_id")["value"].mean().reindex(users)
        lo = hi = np.nan
        n = int(v.notna().sum())
        if counts is not None and n >= MIN_USERS_FOR_CI:
            low, high = bootstrap_mean_ci(v.to_numpy(float), ci=ci, counts=counts)
            lo, hi = float(low[0]), float(high[0])
        rows.append(dict(method=m, metric=k, mean=float(v.mean()), ci_low=lo, ci_high=hi,
                         n_users=n))
    return pd.DataFrame(rows)


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


def write_tables(eval_dir, quality: pd.DataFrame, upstream: pd.DataFrame, *,
                 ci: float | None = 0.95, n_boot: int = 1000, seed: int | None = 0,
                 n_pool: float | None = None) -> dict:
    """Write every table under ``eval_dir/tables``; return ``name -> csv path``."""
    out = Path(eval_dir) / "tables"
    paths: dict = {}
    q_user = quality.groupby(["method", "user_id", "metric"])["value"].mean().reset_index()
    per_user = pd.concat([q_user, upstream[["method", "user_id", "metric", "value"]]],
                         ignore_index=True)
    summ = method_summary(per_user, ci=ci, n_boot=n_boot, seed=seed)
    _write(out, "summary_long", summ, paths)
    lvl = f"{int(round(100 * ci))}%" if ci else "no"
    _write(out, "generation_quality", _pivot(summ, ["rouge1", "rougeL", "minilm", "reward"]),
           paths, f"Generation quality against the users' gold text: mean over adaptation "
           f"users [{lvl} bootstrap interval over users].")
    present = set(per_user.dropna(subset=["value"])["metric"])
    acc_metrics = _accuracy_metrics(present)
    acc = _pivot(summ, acc_metrics)
    corr = []
    for suffix, label in (("", "pooled"), *((f"_{s}", s) for s in PAIR_SOURCES)):
        rm_m, pol_m = f"rm_accuracy{suffix}", f"policy_accuracy{suffix}"
        if {rm_m, pol_m} <= present:
            c = rank_agreement(per_user, [rm_m], pol_m, ci=ci, n_boot=n_boot, seed=seed)
            c = c.assign(upstream="rm_accuracy", quality="policy_accuracy")
            c.insert(0, "pairs", label)
            corr.append(c)
    _write(out, "table2_rm_vs_policy", acc, paths,
           "Table 2: RM ranking accuracy (Def. 1) and policy accuracy (Def. 2) on the "
           "adaptation users' query pairs; ties count one half. Columns without a suffix "
           "pool every pair; _hard_negative = the user's gold vs a similar item's gold, "
           "_candidates = two generated candidates ordered by true reward.")
    if corr:
        _write(out, "table2_correlations", pd.concat(corr, ignore_index=True), paths,
               "Correlation across methods between RM accuracy and policy accuracy, on all "
               "query pairs (pooled) and per pair source.")
    wide = summ[summ["metric"].isin(acc_metrics)].pivot(
        index="metric", columns="method", values="mean")
    wide = wide.reindex([m for m in acc_metrics if m in wide.index]).reset_index()
    _write(out, "table4_accuracy_wide", wide, paths,
           "Table 4 layout: mean accuracy over users per method; one row per metric and pair "
           "source (no suffix = all pairs).")
    wr = _pivot(summ, ["win_rate", "true_win_rate"])
    if n_pool:
        wr["bon_ceiling_n_over_n_plus_1"] = bon_win_rate_ceiling(n_pool)
        wr["pool_size_n"] = n_pool
    _write(out, "table5_win_rate", wr, paths,
           "Table 5: circular win rate (the method's own RM prefers its answer to zero-shot) "
           "beside the true win rate (gold reward) and the ceiling n/(n+1) that any "
           "Best-of-n selector reaches when judged by its own score.")
    ups = [u for u in UPSTREAM + ["true_win_rate"] if u in present]
    t6 = [rank_agreement(per_user, ups, q, ci=ci, n_boot=n_boot, seed=seed)
          for q in ("rouge1", "reward") if q in set(per_user["metric"])]
    if t6:
        _write(out, "table6_rank_agreement", pd.concat(t6, ignore_index=True), paths,
               "Table 6: rank agreement across methods between each upstream metric and "
               "generation quality; n_methods = methods having both; interval = bootstrap "
               "over users.")
    return paths
