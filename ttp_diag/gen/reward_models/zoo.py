"""The second paper's protocol for the reward-model zoo (section 3.1), run on a score table.

:func:`run_zoo` is what ``ttp-diag zoo`` runs:

1. every candidate gets its reward-model prompt (appendix E.2 up to ``[Document]:``, from
   the query's input text ``body``); prompt and response stay separate from here on;
2. preference pairs from the train-split candidate pools (higher vs lower true reward,
   gap >= ``min_gap``), each carrying its real prompt;
3. :func:`~.tables.split_pair_users`: seeded *training users* (all their pairs train the model)
   and *adaptation users*, whose pairs are split per query into ``support`` and ``query``;
4. each model is fitted on the training users' pairs only, then adapted to each adaptation
   user with ``adapt(support_pairs, user)`` (shared parameters frozen); a user with no
   usable pair is scored by the population model and named in ``fallback_users``;
5. held-out pair accuracy: training users on pairs from their val-split pools, adaptation
   users on their query pairs; the val split is scored for the diagnostics (alpha, beta,
   rho_eff with intervals) and the Best-of-N gain at N = 16 (``pool="clip"``).

Intervals: accuracy with a bootstrap over *queries* (pairs of one query share candidates,
so they are not independent; the Wilson interval over pairs is kept for reference, it is too
narrow); the Best-of-N gain with a bootstrap over *users*; alpha, beta and rho_eff from
``diagnose(..., ci=0.95)``. Every model finished is saved under ``out/<name>`` and its row
under ``out/rows/<name>.json``, so a killed run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ZOO", "LM_MODELS", "TableScores", "attach_bodies", "zoo_pairs", "fit_protocol",
           "run_zoo", "zoo_markdown", "paired_accuracy"]

ZOO = ["mpu", "mpu_avg", "lore", "lore_alt", "pref", "pal", "vpl", "global_bt", "global_bt_v2",
       "genarm", "pdpo"]
LM_MODELS = {"genarm", "pdpo"}

#: Version of a result row's columns; a saved row of an older version is recomputed (from the
#: cached scores when they match, else from the saved model), never the model retrained.
ROW_VERSION = 2
#: Settings that change no learned parameter (left out when saved and requested settings are
#: compared).
_RUNTIME = {"verbose", "device", "num_threads", "batch_size_score"}


def attach_bodies(table: pd.DataFrame) -> pd.DataFrame:
    """Add each query's input text (``body``) from the HuffPost set by ``query_id`` (the demo
    table keeps the candidates only). A table that has ``body`` is returned unchanged."""
    if "body" in table.columns:
        return table
    from ttp_diag.exceptions import DataError
    from ttp_diag.gen.loaders import load_huffpost_users

    items = load_huffpost_users()
    body = items.drop_duplicates("item_id").set_index("item_id")["body"]
    out = table.assign(body=table["query_id"].map(body))
    miss = out["body"].isna()
    if miss.any():
        raise DataError(f"{int(miss.sum())} row(s) have no input text: query id(s) "
                        f"{sorted(out.loc[miss, 'query_id'].unique())[:3]} are not in the HuffPost "
                        "set; give the table a 'body' column (the query input)")
    return out


def zoo_pairs(table: pd.DataFrame, *, task: str = "lamp4", adapt_frac: float = 0.3,
              support_frac: float = 0.5, min_gap: float = 0.1, seed: int = 0):
    """The protocol's data: (table with ``rm_prompt``, split pairs, held-out pairs).

    ``held`` has ``who`` = ``train_users`` (val-split pairs of training users) or
    ``adapt_users`` (query pairs of adaptation users).
    """
    from ttp_diag.gen.scoring import add_rm_inputs

    from .tables import pairs_from_pools, split_pair_users

    t = add_rm_inputs(attach_bodies(table), task, prompt_col="rm_prompt")
    kw = dict(text_col="text", prompt_col="rm_prompt", min_gap=min_gap, seed=seed)
    pairs = split_pair_users(pairs_from_pools(t, split="train", **kw), adapt_frac=adapt_frac,
                        support_frac=support_frac, seed=seed)
    adapt_users = sorted(pairs.loc[pairs["role"] == "adapt", "user_id"].unique())
    val = pairs_from_pools(t, split="val", **kw)
    held = pd.concat([val[~val["user_id"].isin(adapt_users)].assign(who="train_users"),
                      pairs[pairs["split"] == "query"].assign(who="adapt_users")],
                     ignore_index=True)
    return t, pairs, held


def fit_protocol(name: str, pairs: pd.DataFrame, adapt_users: Sequence[str], *,
                 settings: Mapping | None = None, seed: int = 0):
    """Family ``name`` by the protocol (section 3.1): fitted on the pairs with ``split ==
    "train"`` (the training users'), then ``adapt(support_pairs, user)`` for each of
    ``adapt_users`` from its ``split == "support"`` pairs, shared parameters frozen; a user
    without support pairs is scored by the population model (``fallback_users_``). Used by
    ``ttp-diag zoo`` and by ``ttp-diag evaluate --adapt-models``."""
    from .base import get_model_class

    m = get_model_class(name)(seed=seed, **dict(settings or {}))
    m.fit(pairs[pairs["split"] == "train"])
    sup = pairs[pairs["split"] == "support"]
    for u in adapt_users:
        m.adapt(sup[sup["user_id"] == u], user=u)
    return m


class TableScores:
    """A score column of the table read as a reward model (reference rows: the table's own
    models, trained on every user's train split, hence no adaptation)."""

    personalized = False

    def __init__(self, table: pd.DataFrame, col: str):
        key = ["user_id", "rm_prompt", "text"]
        self.look = table.drop_duplicates(key).set_index(key)[col]

    def score(self, texts, users, prompts) -> np.ndarray:
        idx = pd.MultiIndex.from_arrays([list(map(str, users)), list(prompts), list(texts)])
        return self.look.reindex(idx).to_numpy(float)


def _score(m, texts, users, prompts) -> np.ndarray:
    return np.asarray(m.score(list(texts), list(users), prompts=list(prompts)), float)


def _model_scores(m, t: pd.DataFrame, held: pd.DataFrame) -> dict:
    """Everything a row needs from a model: held-out pair scores and the val-split scores."""
    t1 = time.perf_counter()
    sc = _score(m, held["chosen"], held["user_id"], held["prompt"])
    sr = _score(m, held["rejected"], held["user_id"], held["prompt"])
    val = t[t["split"] == "val"]
    sv = _score(m, val["text"], val["user_id"], val["rm_prompt"])
    return dict(s_chosen=sc, s_rejected=sr, s_val=sv, score_s=time.perf_counter() - t1,
                fallback_users=list(getattr(m, "fallback_users_", [])))


def _save_scores(out: Path, name: str, sc: dict, t: pd.DataFrame, held: pd.DataFrame) -> None:
    """Cache a model's scores (``rows/<name>.pairs.parquet``, ``rows/<name>.val.parquet``), so
    that a new row format is recomputed without scoring again."""
    from ttp_diag.io import atomic_write_parquet, atomic_write_text
    from ttp_diag.stats import pair_wins

    atomic_write_parquet(held.assign(s_chosen=sc["s_chosen"], s_rejected=sc["s_rejected"],
                                     hit=pair_wins(sc["s_chosen"], sc["s_rejected"]))[
        ["user_id", "query_id", "who", "s_chosen", "s_rejected", "hit"]],
        out / "rows" / f"{name}.pairs.parquet")
    val = t[t["split"] == "val"]
    atomic_write_parquet(val[["user_id", "query_id", "cand_id"]].assign(score=sc["s_val"]),
                         out / "rows" / f"{name}.val.parquet")
    atomic_write_text(out / "rows" / f"{name}.meta.json", json.dumps(
        {"score_s": sc["score_s"], "fallback_users": sc["fallback_users"]}))


def _cached_scores(out: Path, name: str, t: pd.DataFrame, held: pd.DataFrame) -> dict | None:
    """The cached scores of ``name`` when they belong to these pairs and this val split."""
    fp, fv = out / "rows" / f"{name}.pairs.parquet", out / "rows" / f"{name}.val.parquet"
    fm = out / "rows" / f"{name}.meta.json"
    if not (fp.is_file() and fv.is_file() and fm.is_file()):
        return None
    p, v = pd.read_parquet(fp), pd.read_parquet(fv)
    val = t[t["split"] == "val"]
    key_p, key_v = ["user_id", "query_id", "who"], ["user_id", "query_id", "cand_id"]
    if (len(p) != len(held) or len(v) != len(val)
            or not p[key_p].astype(str).equals(held[key_p].astype(str).reset_index(drop=True))
            or not v[key_v].astype(str).equals(val[key_v].astype(str).reset_index(drop=True))):
        return None
    meta = json.loads(fm.read_text())
    return dict(s_chosen=p["s_chosen"].to_numpy(float), s_rejected=p["s_rejected"].to_numpy(float),
                s_val=v["score"].to_numpy(float), score_s=float(meta["score_s"]),
                fallback_users=list(meta["fallback_users"]))


def _row(name: str, sc: dict, t: pd.DataFrame, held: pd.DataFrame, train_s: float) -> dict:
    """One result row from a model's scores (see the module docstring for the intervals)."""
    import ttp_diag as td
    from ttp_diag.stats import bootstrap_mean_ci, cluster_ratio_ci, pair_wins, wilson_interval

    hits = pair_wins(sc["s_chosen"], sc["s_rejected"])  # the one tie rule: a tie counts half
    who = held["who"].to_numpy()
    q_lo, q_hi = cluster_ratio_ci(hits, held["query_id"].to_numpy(), ci=0.95, n_boot=2000,
                                  seed=0)
    w_lo, w_hi = wilson_interval(float(hits.sum()), len(hits), ci=0.95)
    val = t[t["split"] == "val"].copy()
    col = f"score_{name}"
    val[col] = sc["s_val"]
    d = td.diagnose(val, col, ci=0.95)
    iv = d.intervals or {}
    nan2 = (float("nan"), float("nan"))
    pu = td.bon_curve(val, col, [1, 16], per_user=True, pool="clip")
    g = pu.pivot(index="user_id", columns="n", values="utility")
    gain_u = (g[16] - g[1]).to_numpy()
    glo, ghi = bootstrap_mean_ci(gain_u, ci=0.95, n_boot=2000, seed=0)
    fb = list(sc["fallback_users"])
    return dict(
        model=name, acc_heldout=float(hits.mean()), acc_lo=q_lo, acc_hi=q_hi,
        acc_wilson_lo=w_lo, acc_wilson_hi=w_hi, n_pairs=int(len(hits)),
        n_queries=int(held["query_id"].nunique()),
        acc_train_users=float(hits[who == "train_users"].mean()),
        acc_adapt_users=float(hits[who == "adapt_users"].mean()),
        alpha=d.alpha, alpha_lo=iv.get("alpha", nan2)[0], alpha_hi=iv.get("alpha", nan2)[1],
        alpha_null=d.null.get("alpha_null", float("nan")), alpha_p=d.null["alpha_p"],
        beta=d.beta, beta_null=d.null.get("beta_null", float("nan")),
        beta_lo=iv.get("beta", nan2)[0],
        beta_hi=iv.get("beta", nan2)[1], beta_p=d.null["beta_p"], rho_eff=d.rho_eff,
        rho_eff_lo=iv.get("rho_eff", nan2)[0], rho_eff_hi=iv.get("rho_eff", nan2)[1],
        bon_gain_N16=float(gain_u.mean()), gain_lo=float(glo[0]), gain_hi=float(ghi[0]),
        n_users=int(len(gain_u)), n_fallback_users=len(fb), fallback_users=";".join(fb),
        train_s=train_s, score_s=sc["score_s"], row_version=ROW_VERSION)


def _learned(settings: Mapping) -> dict:
    return {k: v for k, v in dict(settings).items() if k not in _RUNTIME}


def run_zoo(table: pd.DataFrame, out: str | Path, *, models: Sequence[str] = tuple(ZOO),
            settings: Mapping[str, Mapping] | None = None, task: str = "lamp4",
            adapt_frac: float = 0.3, support_frac: float = 0.5, seed: int = 0,
            reference_cols: Sequence[str] = (), log=print) -> pd.DataFrame:
    """Train, adapt and evaluate each model of ``models`` by the protocol (module docstring).

    ``reference_cols`` are score columns of ``table`` (e.g. the demo's ``score_det``) added
    as reference rows ``"<name> (table)"``, evaluated on the same pairs and val split; they
    were trained on every user's train split, so their adaptation users are not new to them.

    Returns
    -------
    pandas.DataFrame
        One row per model (also written to ``out/zoo_results.csv`` and, as Markdown,
        ``out/zoo_table.md``).
    """
    from ttp_diag.io import atomic_write_text

    from .base import get_model_class

    for name in models:
        get_model_class(name)  # one clear error for an unknown name, before any work
    settings = {k: dict(v) for k, v in (settings or {}).items()}
    out = Path(out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    prev_f = out / "settings.json"
    # the settings the saved models were trained with (rows of older versions do not say)
    prev = json.loads(prev_f.read_text()).get("settings", {}) if prev_f.is_file() else {}
    atomic_write_text(prev_f, json.dumps(
        {"models": list(models), "settings": {**prev, **settings}, "task": task,
         "adapt_frac": adapt_frac, "support_frac": support_frac, "seed": seed}, indent=1))
    t, pairs, held = zoo_pairs(table, task=task, adapt_frac=adapt_frac,
                               support_frac=support_frac, seed=seed)
    sp = pairs["split"].value_counts()
    adapt_users = sorted(pairs.loc[pairs["role"] == "adapt", "user_id"].unique())
    log(f"pairs: {int(sp.get('train', 0))} train, {int(sp.get('support', 0))} support, "
        f"{int(sp.get('query', 0))} query; {len(held)} held out; adaptation users "
        f"{adapt_users}")
    rows = []
    for name in models:
        f = out / "rows" / f"{name}.json"
        want = _learned(settings.get(name, {}))
        old = json.loads(f.read_text()) if f.is_file() else None
        had = _learned(old.get("settings", prev.get(name, {}))) if old else None
        if old is not None and had == want and old.get("row_version") == ROW_VERSION:
            rows.append(old)
            log(f"{name}: reused {f}")
            continue
        sc = _cached_scores(out, name, t, held) if had == want else None
        train_s = float(old["train_s"]) if old else float("nan")
        if sc is not None:
            log(f"{name}: row recomputed from the cached scores")
        elif had == want and (out / name / "config.json").is_file():
            # a model trained by an older version of this command: scored again, not retrained
            log(f"{name}: scoring the saved model {out / name}")
            m = get_model_class(name).load(out / name)
            sc = _model_scores(m, t, held)
        else:
            t0 = time.perf_counter()
            m = fit_protocol(name, pairs, adapt_users, settings=settings.get(name), seed=seed)
            train_s = time.perf_counter() - t0
            m.save(out / name)
            sc = _model_scores(m, t, held)
        _save_scores(out, name, sc, t, held)
        row = dict(_row(name, sc, t, held, train_s), settings=settings.get(name, {}))
        atomic_write_text(f, json.dumps(row, default=float))
        rows.append(row)
        log(f"{name}: acc {row['acc_heldout']:.3f} [{row['acc_lo']:.3f}, {row['acc_hi']:.3f}], "
            f"gain {row['bon_gain_N16']:+.4f}, train {train_s:.0f} s, score "
            f"{row['score_s']:.0f} s")
    for col in reference_cols:
        name = f"{col.removeprefix('score_')} (table)"
        ref = TableScores(t, col)
        sc = _model_scores(ref, t, held)
        rows.append(_row(name, sc, t, held, float("nan")))
        log(f"{name}: acc {rows[-1]['acc_heldout']:.3f} (reference: the table's own scores)")
    res = pd.DataFrame(rows)
    res.to_csv(out / "zoo_results.csv", index=False)
    atomic_write_text(out / "zoo_table.md", zoo_markdown(res))
    done = [n for n in models if (out / "rows" / f"{n}.pairs.parquet").is_file()]
    if len(done) >= 2:
        atomic_write_text(out / "zoo_paired.csv",
                          paired_accuracy(out, done).to_csv(index=False))
    return res


def paired_accuracy(out: str | Path, models: Sequence[str], *, ci: float = 0.95,
                    n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Held-out accuracy differences between zoo models on the *same* pairs.

    Two models' accuracy intervals overlapping says little about their difference; on the
    same pairs the difference is much better determined. For every pair of models ``a, b``
    (from ``out/rows/<name>.pairs.parquet``): ``diff`` = acc(a) - acc(b), its interval by the
    cluster bootstrap over queries (:func:`ttp_diag.stats.cluster_ratio_ci` on the per-pair
    hit differences), and ``queries_needed``: the held-out queries at which an interval of
    this width, shrinking as 1/sqrt(queries), would exclude 0 if the observed difference were
    the truth (a planning figure, not a power calculation; inf for a zero difference).

    Returns
    -------
    pandas.DataFrame
        ``a, b, acc_a, acc_b, diff, ci_low, ci_high, n_pairs, n_queries, queries_needed``.
    """
    from itertools import combinations

    from ttp_diag.stats import cluster_ratio_ci

    out = Path(out)
    hits = {m: pd.read_parquet(out / "rows" / f"{m}.pairs.parquet") for m in models}
    rows = []
    for a, b in combinations(models, 2):
        ha, hb = hits[a], hits[b]
        if len(ha) != len(hb) or not ha["query_id"].astype(str).equals(hb["query_id"].astype(str)):
            continue  # scored on other pairs (another table or split): not paired
        d = ha["hit"].to_numpy(float) - hb["hit"].to_numpy(float)
        q = ha["query_id"].to_numpy()
        lo, hi = cluster_ratio_ci(d, q, ci=ci, n_boot=n_boot, seed=seed)
        diff, nq = float(d.mean()), int(pd.Series(q).nunique())
        half = (hi - lo) / 2
        need = float(np.ceil(nq * (half / abs(diff)) ** 2)) if diff != 0 else float("inf")
        rows.append(dict(a=a, b=b, acc_a=float(ha["hit"].mean()), acc_b=float(hb["hit"].mean()),
                         diff=diff, ci_low=lo, ci_high=hi, n_pairs=len(d), n_queries=nq,
                         queries_needed=need))
    return pd.DataFrame(rows)


def zoo_markdown(res: pd.DataFrame) -> str:
    """The results as the Markdown table of ``docs/zoo.md``.

    Examples
    --------
    >>> r = pd.DataFrame([dict(model="m", acc_heldout=.6, acc_lo=.5, acc_hi=.7, n_pairs=10,
    ...     acc_train_users=.6, acc_adapt_users=.6, alpha=.3, alpha_lo=.1, alpha_hi=.5,
    ...     alpha_p=.5, beta=.2, beta_lo=.1, beta_hi=.3, beta_p=.01, rho_eff=.2,
    ...     rho_eff_lo=.1, rho_eff_hi=.3, bon_gain_N16=.01, gain_lo=0., gain_hi=.02,
    ...     n_fallback_users=0, fallback_users="", train_s=1., score_s=1.)])
    >>> zoo_markdown(r).splitlines()[2].split(" | ")[-3]
    'hacking'
    """
    def s(x, f="{:.0f}"):
        return "-" if pd.isna(x) else f.format(x)

    def p(x):  # the null model's p at its resolution
        return "-" if pd.isna(x) else ("<0.01" if x < 0.005 else f"{x:.2f}")

    lines = [
        "| model | held-out pair acc. [95% CI, queries] | acc. train / adapt users | "
        "alpha [95% CI] (null p) | beta [95% CI] (null p) | rho_eff [95% CI] | "
        "BoN gain N=16 [95% CI, users] | fallback users | flag | train s | score s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for _, x in res.iterrows():
        flag = ", ".join(n for n, p in (("collapse", x.alpha_p), ("hacking", x.beta_p))
                         if p < 0.05)
        fb = f"{int(x.n_fallback_users)}" + (f" ({x.fallback_users})" if x.n_fallback_users
                                             else "")
        lines.append(
            f"| {x.model} | {x.acc_heldout:.3f} [{x.acc_lo:.3f}, {x.acc_hi:.3f}] | "
            f"{x.acc_train_users:.3f} / {x.acc_adapt_users:.3f} | "
            f"{x.alpha:.1f} [{x.alpha_lo:.1f}, {x.alpha_hi:.1f}] ({p(x.alpha_p)}) | "
            f"{x.beta:.3f} [{x.beta_lo:.3f}, {x.beta_hi:.3f}] ({p(x.beta_p)}) | "
            f"{x.rho_eff:+.3f} [{x.rho_eff_lo:+.3f}, {x.rho_eff_hi:+.3f}] | "
            f"{x.bon_gain_N16:+.4f} [{x.gain_lo:+.4f}, {x.gain_hi:+.4f}] | {fb} | "
            f"{flag or '-'} | {s(x.train_s)} | {s(x.score_s)} |")
    return "\n".join(lines) + "\n"
