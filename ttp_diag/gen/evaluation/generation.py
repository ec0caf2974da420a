"""The generation methods of the runner, one function per family.

Each returns the rows ``(query_id, text, weight)`` of one user (``weight`` < 1 where tied
candidates share a selection, so that metrics average over the tie as ``bon_curve`` does)
and, where the method scores pairs, caches those scores through the runner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError
from ttp_diag.gen.evaluation.runner import Evaluation, _select

__all__ = ["run_method", "icl_setting"]


def icl_setting(method: str, ks) -> tuple[str, int]:
    """``("random"|"retrieved", k)`` of an ICL method name.

    Examples
    --------
    >>> icl_setting("icl_rag_k2", [4]), icl_setting("icl", [4])
    (('retrieved', 2), ('random', 4))
    """
    mode = "retrieved" if method.startswith("icl_rag") else "random"
    k = int(method.rsplit("_k", 1)[1]) if "_k" in method else int(ks[0])
    return mode, k


def _greedy(ev: Evaluation, pm, prompts, **kw):
    from ttp_diag.gen.evaluation.guided_decoding import args_decode

    return [args_decode(pm, p, max_new_tokens=ev.max_new_tokens,
                        first_line=pm.backend.first_line, **kw)["text"] for p in prompts]


def zero_shot(ev: Evaluation, split):
    from ttp_diag.gen.evaluation.policy import icl_prompt

    def fn(u, q, sup):
        texts = _greedy(ev, ev.policy(), [icl_prompt(ev.task, b) for b in q["body"]])
        return [(qi, t, 1.0) for qi, t in zip(q["query_id"], texts, strict=True)]

    return ev.generate("zero_shot", split, fn)


def _demos(ev, sup, body, mode, k, qid, split=None):
    from ttp_diag.gen.evaluation.pairs import demo_triples
    from ttp_diag.gen.evaluation.policy import select_demos

    # Seed per query so that random demonstrations differ across queries but not runs.
    seed = (ev.cfg.seed * 1_000_003 + sum(map(ord, str(qid)))) % 2**32
    demos = select_demos(sup, body, k, mode=mode, seed=seed, encoder=ev.encoder(),
                         user=str(sup["user_id"].iloc[0]) if "user_id" in sup else "?")
    if ev.cfg.icl_demo_format == "triples":
        demos = demo_triples(demos, ev.pairs(split))
    return demos


def _icl_prompt(ev, body, demos):
    from ttp_diag.gen.evaluation.policy import icl_prompt

    return icl_prompt(ev.task, body, demos, demo_format=ev.cfg.icl_demo_format)


def icl(ev: Evaluation, split, method: str, pairs):

    mode, k = icl_setting(method, ev.cfg.icl_ks)

    def fn(u, q, sup):
        prompts = [_icl_prompt(ev, b, _demos(ev, sup, b, mode, k, qi, split))
                   for b, qi in zip(q["body"], q["query_id"], strict=True)]
        texts = _greedy(ev, ev.policy(), prompts)
        return [(qi, t, 1.0) for qi, t in zip(q["query_id"], texts, strict=True)]

    gens = ev.generate(method, split, fn)

    def lp(p):  # eq. 7: the ICL log-likelihood, demonstrations from the user's support set
        p = p[p["split"] == "query"]
        prompts = [_icl_prompt(ev, r.prompt, _demos(ev, ev._support(split, r.user_id),
                                                    r.prompt, mode, k, r.item_id, split))
                   for r in p.itertuples()]
        return ev._logprobs(ev.policy(), prompts, prompts, p)

    ev.pair_scores(f"lp_{method}", pairs, lp)
    return gens


def args_method(ev: Evaluation, split, method: str, pairs):
    from ttp_diag.gen.evaluation.guided_decoding import args_decode
    from ttp_diag.gen.evaluation.policy import icl_prompt

    kind = method_kind = method.removeprefix("args_").removesuffix("_sampled")
    sample = method.endswith("_sampled")
    lam = ev.choose_lambda(method_kind, pairs)

    def fn(u, q, sup):
        rows = []
        for qi, b in zip(q["query_id"], q["body"], strict=True):
            out = args_decode(ev.policy(), icl_prompt(ev.task, b),
                              reward_fn=ev.reward_fn(kind, b, u, scaled=True), lam=lam,
                              top_k=ev.cfg.args_top_k, max_new_tokens=ev.max_new_tokens,
                              first_line=ev.policy().backend.first_line, sample=sample,
                              seed=ev.cfg.seed)
            rows.append((qi, out["text"], 1.0))
        return rows

    return ev.generate(method, split, fn)


def bon(ev: Evaluation, split, method: str):
    pool = ev.pool()
    kind = method.removeprefix("bon_")

    def fn(u, q, sup):
        rows = []
        for qi in q["query_id"]:
            g = pool[pool["query_id"] == qi]
            if g.empty:
                continue
            texts = g["text"].astype(str).tolist()
            if kind == "random":
                rows += [(qi, t, 1.0 / len(texts)) for t in texts]
                continue
            col = "reward" if kind == "oracle" else f"score_{kind}"
            if col not in g.columns:
                from ttp_diag.gen.evaluation.policy import score_candidates

                s = score_candidates(ev.rms()[kind], ev.task, g["body"].astype(str).tolist(),
                                     texts, [u] * len(g))
            else:
                s = g[col].to_numpy(float)
            rows += [(qi, t, w) for t, w in _select(texts, s)]
        return rows

    return ev.generate(method, split, fn)


def judges(ev: Evaluation, split, method: str, pairs):
    """Judge scores for every pool candidate of the query set, then Best-of-N selection."""
    from ttp_diag.gen.candidates import atomic_write_parquet
    from ttp_diag.gen.evaluation.judges import LLMJudge, persona_context

    judge = LLMJudge(ev.policy())
    col = f"score_{method}"
    f = ev.out / "judge_scores.parquet"
    pool = ev.pool()
    pool = pool[pool["query_id"].isin(set(split.items_in("query")["item_id"]))]
    table = pd.read_parquet(f) if f.is_file() else pool.drop(columns=["body"])
    items = pd.read_parquet(ev.run / "items.parquet").set_index("item_id")
    ctx = {u: persona_context(ev._support(split, u).to_dict("records"),
                              ev.cfg.judge_persona_items) for u in split.adapt_users}
    if col not in table.columns:
        vals = np.zeros(len(table))
        groups = list(table.groupby("query_id", sort=False).indices.items())
        for qi, idx in ev._bar(groups, method, len(groups)):
            u, body = table["user_id"].iloc[idx[0]], items.at[qi, "body"]
            texts = table["text"].iloc[idx].astype(str).tolist()
            if method == "judge_pointwise":
                vals[idx] = judge.rate(ctx[u], body, texts)
            else:
                vals[idx] = judge.tournament(ctx[u], body, texts, seed=ev.cfg.seed)[0]
        table[col] = vals
        atomic_write_parquet(table, f)

    def pair_fn(p):
        p = p[p["split"] == "query"]
        if method == "judge_pointwise":
            c = [judge.rate(ctx[r.user_id], r.prompt, [r.chosen])[0] for r in p.itertuples()]
            r_ = [judge.rate(ctx[r.user_id], r.prompt, [r.rejected])[0] for r in p.itertuples()]
        else:  # the preference itself decides the pair; rejected side at 0
            c = [judge.compare(ctx[r.user_id], r.prompt, r.chosen, r.rejected)
                 for r in p.itertuples()]
            r_ = [0.0] * len(c)
        return pd.DataFrame({"pair_id": p["pair_id"].to_numpy(), "j_chosen": c,
                             "j_rejected": r_})

    ev.pair_scores(method, pairs, pair_fn)

    def fn(u, q, sup):
        rows = []
        for qi in q["query_id"]:
            g = table[table["query_id"] == qi]
            if len(g):
                rows += [(qi, t, w) for t, w in _select(g["text"].astype(str).tolist(),
                                                        g[col].to_numpy(float))]
        return rows

    return ev.generate(method, split, fn)


def lora(ev: Evaluation, split, methods: list[str], pairs):
    """``lora`` (greedy), ``lora_random`` (mean sample) and ``lora_bon_<rm>`` for each user."""
    from ttp_diag.gen.evaluation.lora import UserLoRA
    from ttp_diag.gen.evaluation.policy import icl_prompt, score_candidates

    todo = [m for m in methods if m == "lora" or m.startswith("lora_bon_")]
    if any(m.startswith("lora_bon_") for m in todo):
        todo.append("lora_random")
    trainer = UserLoRA(ev.policy(), epochs=ev.cfg.lora_epochs, lr=ev.cfg.lora_lr,
                       seed=ev.cfg.seed)
    queries = ev._queries(split)
    n = int(ev.cfg.lora_n or ev.rc.n)
    lp_rows = []
    for u in ev._bar(split.adapt_users, "per-user LoRA"):
        files = {m: ev.out / "generations" / m / f"{u}.parquet" for m in todo}
        lp_file = ev.out / "pair_scores" / "lora" / f"{u}.parquet"
        if all(f.is_file() for f in files.values()) and lp_file.is_file():
            continue
        sup = ev._support(split, u)
        pm = trainer.fit_user(u, [icl_prompt(ev.task, b) for b in sup["body"]],
                              sup["output"].tolist())
        q = queries[queries["user_id"] == u]
        prompts = [icl_prompt(ev.task, b) for b in q["body"]]
        greedy = _greedy(ev, pm, prompts)
        out = {"lora": [(qi, t, 1.0) for qi, t in zip(q["query_id"], greedy, strict=True)]}
        if len(todo) > 1:
            samples = pm.backend.generate(prompts, n=n, temperature=float(
                ev.rc.temperature or 0.7), top_p=float(ev.rc.top_p),
                max_new_tokens=ev.max_new_tokens, seed=ev.cfg.seed)
            out["lora_random"] = [(qi, t, 1.0 / len(s))
                                  for qi, s in zip(q["query_id"], samples, strict=True)
                                  for t in s]
            for m in todo:
                if m.startswith("lora_bon_"):
                    kind, rows = m.removeprefix("lora_bon_"), []
                    for qi, b, s in zip(q["query_id"], q["body"], samples, strict=True):
                        sc = score_candidates(ev.rms()[kind], ev.task, [b] * len(s), s,
                                              [u] * len(s))
                        rows += [(qi, t, w) for t, w in _select(list(s), sc)]
                    out[m] = rows
        for m in todo:
            rows = pd.DataFrame(out[m], columns=["query_id", "text", "weight"])
            rows.insert(0, "user_id", u)
            rows.insert(0, "method", m)
            from ttp_diag.gen.evaluation.runner import _atomic_parquet

            _atomic_parquet(rows, files[m])
        pu = pairs[(pairs["split"] == "query") & (pairs["user_id"] == u)]
        pr = [icl_prompt(ev.task, b) for b in pu["prompt"]]
        lp = ev._logprobs(pm, pr, pr, pu) if len(pu) else pd.DataFrame(
            columns=["pair_id", "lp_chosen", "lp_rejected"])
        from ttp_diag.gen.evaluation.runner import _atomic_parquet

        _atomic_parquet(lp, lp_file)
        lp_rows.append(lp)
    return pd.concat([ev._clean(pd.read_parquet(ev.out / "generations" / m / f"{u}.parquet"))
                      for m in todo for u in split.adapt_users], ignore_index=True)


def run_method(ev: Evaluation, split, method: str, pairs) -> pd.DataFrame:
    """Dispatch one method name (lora methods are run together by :func:`lora`)."""
    if method == "zero_shot":
        return zero_shot(ev, split)
    if method.startswith("icl"):
        return icl(ev, split, method, pairs)
    if method.startswith("args_"):
        return args_method(ev, split, method, pairs)
    if method.startswith("bon_"):
        return bon(ev, split, method)
    if method.startswith("judge_"):
        return judges(ev, split, method, pairs)
    raise ConfigError(f"run_method cannot run {method!r}")  # lora handled by the caller
