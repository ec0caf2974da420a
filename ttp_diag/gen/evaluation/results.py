"""From generations and pair scores to the tidy results and the upstream metrics.

:func:`run_evaluation` is the entry point of ``ttp-diag evaluate``: it runs every stage of
:class:`~ttp_diag.gen.evaluation.runner.Evaluation` (each cached), then computes

* ``results.parquet`` - ``method, user_id, query_id, metric, value`` with ``rouge1``,
  ``rougeL``, ``minilm`` (cosine) and ``reward`` = (ROUGE-1 + ROUGE-L) / 2 of each method's
  answer against the user's gold (tied selections averaged);
* ``upstream.parquet`` - ``method, user_id, metric, value`` with ``rm_accuracy`` (Def. 1 on
  the user's query pairs), ``policy_accuracy`` (Def. 2 with the scoring function the method
  generates with: eq. 4's mean log-probability for the base policy, ICL and LoRA, eqs. 5-6's
  sum for ARGS, as the paper writes them), ``policy_accuracy_length_norm`` (ARGS with the
  mean over tokens instead of the sum: at lambda = 0 it equals zero-shot's),
  ``win_rate`` (circular: the method's reward model prefers its answer to
  the zero-shot answer), ``true_win_rate`` (the gold reward does), and for Best-of-N
  selectors ``rho_eff``, ``alpha``, ``beta`` (the package's diagnostics on the user's pool),
  ``capture`` ((selected - random) / (oracle - random) at the full pool) and the comparison
  with a random draw from the same pool (``win_rate_vs_pool`` by the selector's own score,
  ``true_win_rate_vs_pool`` by the reward, ``ceiling_vs_pool`` what the own score gives any
  Best-of-M selector: the n/(n+1) ceiling belongs here, not to the zero-shot comparison);

and writes the tables and figures.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.methods import method_rm
from ttp_diag.gen.evaluation.metrics import (
    behavioural_alignment,
    pairwise_accuracy,
    pool_draw_win_rates,
    score_base,
    score_rgd,
)
from ttp_diag.gen.evaluation.runner import EvalConfig, Evaluation, _atomic_parquet, _atomic_text

__all__ = ["run_evaluation", "quality_table", "upstream_table"]


def quality_table(gens: pd.DataFrame, gold: pd.Series, *, encoder=None,
                  minilm: bool = True) -> pd.DataFrame:
    """Tidy quality rows of every (method, user, query), tied answers averaged by weight."""
    g = gens.copy()
    g["gold"] = g["query_id"].map(gold)
    uniq = g[["text", "gold"]].drop_duplicates().reset_index(drop=True)
    m = behavioural_alignment(uniq["text"].fillna("").tolist(), uniq["gold"].tolist(),
                              minilm=minilm, encoder=encoder)
    m["reward"] = (m["rouge1"] + m["rougeL"]) / 2
    uniq = pd.concat([uniq, m], axis=1)
    g = g.merge(uniq, on=["text", "gold"], how="left")
    metrics = [c for c in ("rouge1", "rougeL", "minilm", "reward") if c in g.columns]
    w = g["weight"].to_numpy(float)
    for c in metrics:
        g[c] = g[c] * w
    agg = g.groupby(["method", "user_id", "query_id"])[metrics + ["weight"]].sum()
    for c in metrics:
        agg[c] = agg[c] / agg["weight"]
    return agg.drop(columns="weight").reset_index().melt(
        id_vars=["method", "user_id", "query_id"], var_name="metric", value_name="value")


def _acc(df, c, r, metric, method) -> pd.DataFrame:
    """Per-user accuracy pooled over pair sources (``metric``) and, when ``df`` has a
    ``source`` column, per source as ``<metric>_<source>`` (e.g. ``rm_accuracy_hard_negative``):
    hard negatives (the user's gold vs a similar item's gold) and candidate pairs (two
    generated candidates) ask different questions and can disagree."""
    parts = [(metric, df)]
    if "source" in df.columns:
        parts += [(f"{metric}_{src}", g) for src, g in df.groupby("source", sort=True)]
    out = []
    for name, d in parts:
        a = pairwise_accuracy(d.rename(columns={c: "score_chosen", r: "score_rejected"}))
        a = a[~a["user_id"].str.startswith("__")]
        out.append(pd.DataFrame({"method": method, "user_id": a["user_id"], "metric": name,
                                 "value": a["accuracy"], "n": a["n_pairs"]}))
    return pd.concat(out, ignore_index=True)


def upstream_table(ev: Evaluation, split, pairs, gens, quality) -> pd.DataFrame:
    """Upstream metrics per method and user (see the module docstring)."""
    out = []
    qp = pairs[pairs["split"] == "query"][["pair_id", "user_id", "source"]]
    methods = sorted(gens["method"].unique())
    lam_f = ev.out / "lambda_grid.csv"
    lams = pd.read_csv(lam_f) if lam_f.is_file() else pd.DataFrame(columns=["rm", "lam"])
    rm_cache = {}
    for kind in {method_rm(m) for m in methods} - {None, "random", "oracle"}:
        rm_cache[kind] = qp.merge(ev.rm_pair_scores(kind, ev.scored_pairs(pairs)),
                                  on="pair_id")
    lp0 = qp.merge(ev.lp_zero(ev.scored_pairs(pairs)), on="pair_id")
    base = lp0.assign(c=lp0["lp_chosen"].map(score_base), r=lp0["lp_rejected"].map(score_base))
    rw = quality[quality["metric"] == "reward"]
    zs = rw[rw["method"] == "zero_shot"].set_index("query_id")["value"]
    for m in methods:
        kind = method_rm(m)
        if m == "zero_shot":
            out.append(_acc(base, "c", "r", "policy_accuracy", m))
        elif m.startswith("icl"):
            f = ev.out / "pair_scores" / f"lp_{m}.parquet"
            d = qp.merge(pd.read_parquet(f), on="pair_id")
            d = d.assign(c=d["lp_chosen"].map(score_base), r=d["lp_rejected"].map(score_base))
            out.append(_acc(d, "c", "r", "policy_accuracy", m))
        elif m == "lora":
            fs = sorted((ev.out / "pair_scores" / "lora").glob("*.parquet"))
            d = qp.merge(pd.concat([pd.read_parquet(f) for f in fs]), on="pair_id")
            d = d.assign(c=d["lp_chosen"].map(score_base), r=d["lp_rejected"].map(score_base))
            out.append(_acc(d, "c", "r", "policy_accuracy", m))
        elif m.startswith("judge_"):
            d = qp.merge(pd.read_parquet(ev.out / "pair_scores" / f"{m}.parquet"), on="pair_id")
            out.append(_acc(d, "j_chosen", "j_rejected", "policy_accuracy", m))
        if kind in rm_cache:
            d = rm_cache[kind]
            out.append(_acc(d, "rm_chosen", "rm_rejected", "rm_accuracy", m))
            if m.startswith("args_"):
                lam = float(lams.loc[(lams["rm"] == kind) & lams["chosen"].astype(bool),
                                     "lam"].iloc[0])
                d2 = ev.scaled_prefix_rewards(kind, d).merge(
                    lp0[["pair_id", "lp_chosen", "lp_rejected"]], on="pair_id")
                d2 = d2.assign(
                    c=[score_rgd(a, b, lam) for a, b in zip(d2["lp_chosen"], d2["r_chosen"],
                                                            strict=True)],
                    r=[score_rgd(a, b, lam) for a, b in zip(d2["lp_rejected"],
                                                            d2["r_rejected"], strict=True)])
                out.append(_acc(d2, "c", "r", "policy_accuracy", m))
                # the length-normalised variant (mean, not the paper's sum, over tokens):
                # equal to the zero-shot policy accuracy at lambda = 0
                d3 = d2.assign(
                    c=[score_rgd(a, b, lam, length_norm=True) for a, b in zip(
                        d2["lp_chosen"], d2["r_chosen"], strict=True)],
                    r=[score_rgd(a, b, lam, length_norm=True) for a, b in zip(
                        d2["lp_rejected"], d2["r_rejected"], strict=True)])
                out.append(_acc(d3, "c", "r", "policy_accuracy_length_norm", m))
            else:  # Best-of-N generates with the reward model itself
                out.append(_acc(d, "rm_chosen", "rm_rejected", "policy_accuracy", m))
            out.append(_win_rates(ev, gens, m, kind))
        if m != "zero_shot" and len(zs):
            mine = rw[rw["method"] == m]
            d = mine.assign(z=mine["query_id"].map(zs)).dropna()
            w = (d["value"] > d["z"]) + 0.5 * (d["value"] == d["z"])
            t = w.groupby(d["user_id"]).agg(["mean", "size"]).reset_index()
            out.append(pd.DataFrame({"method": m, "user_id": t["user_id"],
                                     "metric": "true_win_rate", "value": t["mean"],
                                     "n": t["size"]}))
    out.append(_selector_diagnostics(ev, split, methods, quality))
    return pd.concat([o for o in out if o is not None and len(o)], ignore_index=True)


def _win_rates(ev, gens, m, kind) -> pd.DataFrame | None:
    """Circular win rate: the method's own reward model judges it against zero-shot."""
    from ttp_diag.gen.evaluation.policy import score_candidates

    if "zero_shot" not in set(gens["method"]):
        return None
    f = ev.out / "pair_scores" / f"win_{m}.parquet"
    if f.is_file():
        return pd.read_parquet(f)
    items = pd.read_parquet(ev.run / "items.parquet").set_index("item_id")
    g = gens[gens["method"].isin([m, "zero_shot"])].copy()
    g["s"] = score_candidates(ev.rms()[kind], ev.task, g["query_id"].map(items["body"]).tolist(),
                              g["text"].fillna("").tolist(), g["user_id"].tolist())
    g["s"] = g["s"] * g["weight"]
    s = g.groupby(["method", "user_id", "query_id"])[["s", "weight"]].sum()
    s = (s["s"] / s["weight"]).unstack("method").dropna()
    w = (s[m] > s["zero_shot"]) + 0.5 * (s[m] == s["zero_shot"])
    t = w.groupby(level="user_id").agg(["mean", "size"]).reset_index()
    df = pd.DataFrame({"method": m, "user_id": t["user_id"], "metric": "win_rate",
                       "value": t["mean"], "n": t["size"]})
    _atomic_parquet(df, f)
    return df


def _selector_diagnostics(ev, split, methods, quality) -> pd.DataFrame | None:
    """rho_eff, alpha, beta (ttp_diag.diagnose on each user's pool) and capture."""
    import ttp_diag

    sel = [m for m in methods if (m.startswith("bon_") and m not in ("bon_random", "bon_oracle"))
           or m.startswith("judge_")]
    if not sel:
        return None
    table = ev.pool()  # the run's and the adapted models' scores
    table = table[table["query_id"].isin(set(split.items_in("query")["item_id"]))]
    jf = ev.out / "judge_scores.parquet"
    if jf.is_file():
        j = pd.read_parquet(jf)
        jc = [c for c in j.columns if c.startswith("score_judge_")]
        table = table.merge(j[["query_id", "cand_id", *jc]], on=["query_id", "cand_id"],
                            how="left")
    rw = quality[quality["metric"] == "reward"].groupby(["method", "user_id"])["value"].mean()
    rows = []
    for m in sel:
        col = f"score_{m}" if m.startswith("judge_") else f"score_{m.removeprefix('bon_')}"
        if col not in table.columns:
            continue
        for u, g in table.groupby("user_id"):
            try:
                d = ttp_diag.diagnose(g.assign(split="val"), col)
                vals = {"rho_eff": d.rho_eff, "alpha": d.alpha, "beta": d.beta}
            except ValueError:  # e.g. a constant score on every query of the user
                vals = {"rho_eff": np.nan, "alpha": np.nan, "beta": np.nan}
            # the comparison the n/(n+1) ceiling belongs to: the selected answer against a
            # random draw from the same pool, by the selector's own score and by the reward
            pd_w = pool_draw_win_rates(g, col)
            vals.update(win_rate_vs_pool=pd_w["circular"].mean(),
                        true_win_rate_vs_pool=pd_w["true"].mean(),
                        ceiling_vs_pool=pd_w["ceiling"].mean())
            try:
                o, r = rw[("bon_oracle", u)], rw[("bon_random", u)]
                vals["capture"] = (rw[(m, u)] - r) / (o - r) if o > r else np.nan
            except KeyError:
                pass
            rows += [dict(method=m, user_id=u, metric=k, value=float(v), n=len(g))
                     for k, v in vals.items()]
    return pd.DataFrame(rows)


def run_evaluation(run_dir, config: EvalConfig, **kwargs) -> dict:
    """Run (or resume) the evaluation of a pipeline run folder; return the output paths.

    Examples
    --------
    >>> run_evaluation("runs/hp6", EvalConfig(methods=["zero_shot", "bon_prob"]))  # doctest: +SKIP
    """
    from ttp_diag.gen.evaluation import figures, tables
    from ttp_diag.gen.evaluation.generation import run_method

    ev = Evaluation(run_dir, config, **kwargs)
    ev.check_config()
    t0 = time.perf_counter()
    split = ev.split()
    pairs = ev.pairs(split)
    scored = ev.scored_pairs(pairs)
    methods = list(config.methods)
    needs_zero = any(method_rm(m) for m in methods) and "zero_shot" not in methods
    if needs_zero:
        methods.insert(0, "zero_shot")  # the circular win rate's baseline
    if any(m.startswith(("judge_", "bon_")) for m in methods):
        for extra in ("bon_random", "bon_oracle"):  # capture needs both ends
            if extra not in methods:
                methods.append(extra)
    expanded = []
    for m in methods:
        if m in ("icl", "icl_rag") and len(config.icl_ks) > 1:
            expanded += [f"{m}_k{k}" for k in config.icl_ks]
        else:
            expanded.append(m)
    gens, lora_done = [], False
    for m in expanded:  # in the order given (a stopped run has the first methods done)
        t = time.perf_counter()
        if m == "lora" or m.startswith("lora_bon_"):
            if lora_done:  # the LoRA methods share one fine-tuning per user
                continue
            from ttp_diag.gen.evaluation.generation import lora

            gens.append(lora(ev, split, expanded, scored))
            lora_done, m = True, "lora"
        else:
            gens.append(run_method(ev, split, m, scored))
        ev.timings[m] = time.perf_counter() - t
    gens = pd.concat(gens, ignore_index=True)
    items = pd.read_parquet(ev.run / "items.parquet").set_index("item_id")
    quality = quality_table(gens, items["output"], encoder=ev.encoder() if config.minilm
                            else None, minilm=config.minilm)
    _atomic_parquet(quality, ev.out / "results.parquet")
    upstream = upstream_table(ev, split, pairs, gens, quality)
    _atomic_parquet(upstream, ev.out / "upstream.parquet")
    paths = tables.write_tables(ev.out, quality, upstream, ci=config.ci, n_boot=config.n_boot,
                                seed=config.seed)
    paths.update(figures.write_figures(ev.out, quality, upstream, ci=config.ci,
                                       n_boot=config.n_boot, seed=config.seed))
    summary = {"seconds": round(time.perf_counter() - t0, 1), "methods": expanded,
               "adapt_users": split.adapt_users, "train_users": split.train_users,
               "pairs": pairs.groupby(["split", "source"]).size().rename("n").reset_index()
               .to_dict("records"),
               "timings": {k: round(v, 1) for k, v in ev.timings.items()},
               "outputs": {k: str(v) for k, v in paths.items()}}
    _atomic_text(ev.out / "eval_summary.json", json.dumps(summary, indent=1, default=str))
    return summary
