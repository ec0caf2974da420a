"""The evaluation runner: every method on the same adaptation users, cached per stage.

Reads a finished ``ttp-diag run`` folder (``items.parquet``, ``examples.parquet``,
``labeled.parquet``, ``scores.parquet``, ``rm/``, ``config.json``) and writes under
``<run>/eval/``:

========================  ===========================================================
``config.json``           the evaluation settings (a changed setting is refused)
``user_split.*``          training / adaptation users, support / query items
``pairs.parquet``         the tidy pairs table (all splits)
``pair_scores/*.parquet`` per scorer: log-probabilities, prefix rewards, RM and judge
                          scores of the training and query pairs
``lambda_grid.csv``       policy accuracy of every lambda on training users, per RM
``generations/<m>/<u>``   one file per method and user: the answer(s) to each query
``judge_scores.parquet``  the score table with ``score_judge_pointwise`` and
                          ``score_judge_pairwise`` columns (usable in ``bon_curve``)
``results.parquet``       the tidy table ``method, user_id, query_id, metric, value``
``upstream.parquet``      per method and user: rm/policy accuracy, win rate, rho_eff, ...
``tables/``, ``figures/`` written by :mod:`ttp_diag.gen.evaluation.tables` / ``figures``
========================  ===========================================================

Every file is written atomically; a killed run resumes at the first missing file.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.methods import parse_methods
from ttp_diag.gen.evaluation.split import EvaluationInputError, UserSplit, split_users
from ttp_diag.gen.run_config import load_config

__all__ = ["EvalConfig", "Evaluation"]


REWARD_SCALES = ("query_sd", "raw")


@dataclass
class EvalConfig:
    """Settings of an evaluation (see :class:`Evaluation`)."""

    methods: list[str] = field(default_factory=lambda: ["zero_shot", "icl", "icl_rag"])
    n_train_users: float = 0.34
    max_support: int = 32
    icl_ks: list[int] = field(default_factory=lambda: [4])
    #: "gold": ICL demonstrations are (input, gold) pairs (the first paper's RAG history);
    #: "triples": (input, chosen, rejected) triples from the support pairs (second paper)
    icl_demo_format: str = "gold"
    hard_negative_k: int = 5
    min_gap: float = 0.1
    max_pairs_per_query: int = 4
    max_lambda_pairs: int = 48
    lambda_grid: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 5.0, 10.0])
    args_top_k: int = 10
    #: "policy_accuracy" (default): lambda maximises policy accuracy on training users (the
    #: paper's TLDR/PRISM rule); "harmonic": the paper's LaMP-5 rule, the harmonic mean of
    #: ROUGE-1, inverse perplexity and policy accuracy, from ARGS answers to
    #: ``lambda_gen_items`` training items at every lambda of the grid
    args_lambda_rule: str = "policy_accuracy"
    lambda_gen_items: int = 8
    #: "query_sd" (default): ARGS and the policy-accuracy score use r / s, s = the median
    #: within-query standard deviation of the RM's scores on the run's train split, so lambda
    #: is in log-probability nats per typical within-query reward difference; "raw": the
    #: paper's r. With ROUGE-scale rewards (within-query sd ~0.001-0.005) no lambda of the
    #: usual grid moves a decoding step: greedy ARGS output was zero-shot token for token.
    args_reward_scale: str = "query_sd"
    max_new_tokens: int | None = None
    lora_epochs: int = 3
    lora_lr: float = 5e-4
    lora_n: int | None = None
    judge_persona_items: int = 5
    #: reward-model families of the registry (e.g. ``["mpu_avg", "lore"]``) trained by the
    #: second paper's protocol (section 3.1) inside the evaluation: fitted on the training
    #: users' pairs only, then ``adapt(support_pairs, user)`` for each adaptation user with
    #: every shared parameter frozen. Each becomes a reward model ``<name>`` of this
    #: evaluation (methods ``bon_<name>``, ``args_<name>``, ``lora_bon_<name>``), saved in
    #: ``eval/rm/<name>``; the run's own models (``rm/``) saw the adaptation users'
    #: support items in ordinary training instead.
    adapt_models: list[str] = field(default_factory=list)
    #: constructor settings per adapted family, ``{"lore": {"n_bases": 3}}``
    adapt_settings: dict = field(default_factory=dict)
    ci: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    minilm: bool = True
    progress: bool = True

    def validate(self, rm_kinds) -> None:
        check_adapt_models(self.adapt_models, self.adapt_settings,
                           [k for k in rm_kinds if k not in self.adapt_models])
        self.methods = parse_methods(self.methods, rm_kinds)
        for lam in self.lambda_grid:
            if lam < 0:
                raise EvaluationInputError(
                    f"lambda grid value {lam} is negative; ARGS needs lambda >= 0")
        if self.args_reward_scale not in REWARD_SCALES:
            raise EvaluationInputError(
                f"args_reward_scale={self.args_reward_scale!r}; use one of {REWARD_SCALES}")
        if self.args_lambda_rule not in ("policy_accuracy", "harmonic"):
            raise EvaluationInputError(
                f"args_lambda_rule={self.args_lambda_rule!r}; use 'policy_accuracy' or "
                "'harmonic' (the paper's LaMP-5 rule)")
        if self.icl_demo_format not in ("gold", "triples"):
            raise EvaluationInputError(
                f"icl_demo_format={self.icl_demo_format!r}; use 'gold' or 'triples'")
        for k in self.icl_ks:
            if int(k) < 0:
                raise EvaluationInputError(f"ICL k={k}; use k >= 0 (0 = zero-shot)")


def check_adapt_models(names, settings, run_kinds) -> None:
    """``adapt_models`` must be registered families that can adapt, not named like a run model.

    Examples
    --------
    >>> check_adapt_models(["lore"], {}, ["global", "prob"])
    >>> check_adapt_models(["det"], {}, ["global"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: adapt model 'det' has no adapt(): ...
    """
    from ttp_diag.exceptions import ConfigError
    from ttp_diag.gen.reward_models import REGISTRY
    from ttp_diag.gen.reward_models.base import get_model_class

    for name in names:
        cls = get_model_class(name)  # an unknown name: one ConfigError listing the registry
        if name in run_kinds:
            raise ConfigError(f"adapt model {name!r} is also a reward model of the run (rm/"
                              f"{name}); adapt another family or leave it out of adapt_models")
        if not cls.can_adapt():
            ok = sorted(n for n, c in REGISTRY.items() if c.can_adapt())
            raise ConfigError(f"adapt model {name!r} has no adapt(): it trains one model per "
                              f"user from labelled rows. Use one of {ok}")
    extra = sorted(set(settings) - set(names))
    if extra:
        raise ConfigError(f"adapt_settings for {extra}, which are not in adapt_models {names}")


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    from ttp_diag.gen.candidates import atomic_write_parquet

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(df, path)


def _atomic_text(path: Path, text: str) -> None:
    from ttp_diag.gen.candidates import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def _select(texts: list[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """The top-scored texts with equal weights (ties averaged, as in ``bon_curve``)."""
    s = np.asarray(scores, float)
    top = np.flatnonzero(s == s.max())
    return [(texts[i], 1.0 / len(top)) for i in top]


class Evaluation:
    """Run the evaluation suite on a pipeline run folder.

    Parameters
    ----------
    run_dir : path
        A finished ``ttp-diag run`` folder.
    config : EvalConfig
    backend : optional
        The policy backend; default: the run's own (``config.json``).
    encoder : optional
        Sentence encoder (default MiniLM).
    reward_models : dict, optional
        ``kind -> model``; default: loaded from ``run_dir/rm``.
    """

    def __init__(self, run_dir, config: EvalConfig, *, backend=None, encoder=None,
                 reward_models: dict | None = None):
        self.run = Path(run_dir)
        for f in ("items.parquet", "examples.parquet", "labeled.parquet", "config.json"):
            if not (self.run / f).is_file():
                raise EvaluationInputError(
                    f"{self.run} has no {f}; finish `ttp-diag run --run-dir {self.run}` first")
        # the run's settings, typed and checked (an unknown or bad setting: one ConfigError)
        self.rc = load_config(self.run / "config.json")
        self.cfg = config
        self.out = self.run / "eval"
        self._backend, self._encoder, self._rms = backend, encoder, reward_models
        self._policy = None
        self._pool: pd.DataFrame | None = None
        self._reward_scales: dict[str, float] = {}
        self.timings: dict[str, float] = {}

    # -- shared resources -------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.rc.task

    def rm_kinds(self) -> list[str]:
        """The run's reward models (``rm/``) and the evaluation's adapted ones."""
        if self._rms is not None:
            kinds = list(self._rms)
        else:
            d = self.run / "rm"
            kinds = [k for k in self.rc.rm_kinds if (d / k).exists()]
        return kinds + [k for k in self.cfg.adapt_models if k not in kinds]

    def rms(self) -> dict:
        if self._rms is None:
            from ttp_diag.gen.scoring import load_reward_models

            run_kinds = [k for k in self.rm_kinds() if k not in self.cfg.adapt_models]
            self._rms = dict(load_reward_models(self.run / "rm", kinds=run_kinds,
                                                verbose=self.cfg.progress))
        for name in self.cfg.adapt_models:
            if name not in self._rms:
                self._rms[name] = self.adapted_model(name)
        return self._rms

    def adapted_model(self, name: str):
        """Reward model ``name`` by the protocol: fitted on the training users' pairs, then
        adapted to each adaptation user from that user's support pairs (shared parameters
        frozen); saved in ``eval/rm/<name>`` and loaded from there on resume."""
        from ttp_diag.gen.reward_models.base import get_model_class, rm_context
        from ttp_diag.gen.reward_models.zoo import fit_protocol

        path = self.out / "rm" / name
        if (path / "config.json").is_file():
            return get_model_class(name).load(path)
        split = self.split()
        pairs = self.pairs(split)
        # the pairs' prompt is the query input; the model's prompt is the E.2 context of it
        ctx = {b: rm_context(self.task, b) for b in pairs["prompt"].astype(str).unique()}
        p = pairs.assign(prompt=pairs["prompt"].astype(str).map(ctx))
        t0 = time.perf_counter()
        m = fit_protocol(name, p, split.adapt_users, settings=self.cfg.adapt_settings.get(name),
                         seed=self.cfg.seed)
        self.timings[f"adapt:{name}"] = time.perf_counter() - t0
        m.save(path)
        return m

    def pool(self) -> pd.DataFrame:
        """The run's candidate pools (``scores.parquet``, else ``labeled.parquet``) with each
        query's input ``body`` and a ``score_<name>`` column per adapted model (cached in
        ``eval/rm/<name>/pool_scores.parquet``)."""
        if self._pool is not None:
            return self._pool
        f = self.run / "scores.parquet"
        pool = pd.read_parquet(f if f.is_file() else self.run / "labeled.parquet")
        if "body" not in pool.columns:
            ex = pd.read_parquet(self.run / "examples.parquet", columns=["query_id", "body"])
            pool = pool.merge(ex.drop_duplicates("query_id"), on="query_id", how="left")
        for name in self.cfg.adapt_models:
            cf = self.out / "rm" / name / "pool_scores.parquet"
            if cf.is_file():
                sc = pd.read_parquet(cf)
            else:
                from ttp_diag.gen.evaluation.policy import score_candidates

                sc = pool[["query_id", "cand_id"]].assign(score=score_candidates(
                    self.rms()[name], self.task, pool["body"].astype(str).tolist(),
                    pool["text"].astype(str).tolist(), pool["user_id"].astype(str).tolist()))
                _atomic_parquet(sc, cf)
            pool = pool.merge(sc.rename(columns={"score": f"score_{name}"}),
                              on=["query_id", "cand_id"], how="left")
        self._pool = pool
        return pool

    def policy(self):
        from ttp_diag.gen.evaluation.policy import PolicyModel

        if self._policy is None:
            if self._backend is None:
                from ttp_diag.gen.backends import make_backend

                kw = dict(self.rc.backend_kwargs or {})
                kw.setdefault("first_line", self.rc.first_line)
                if self.rc.backend in ("transformers", "hf"):
                    kw.setdefault("device", self.rc.device)
                self._backend = make_backend(self.rc.backend, self.rc.model, **kw)
            self._policy = PolicyModel(self._backend)
        return self._policy

    def encoder(self):
        if self._encoder is None:
            from ttp_diag.gen.retrieval import MiniLMEncoder

            self._encoder = MiniLMEncoder()
        return self._encoder

    @property
    def max_new_tokens(self) -> int:
        return int(self.cfg.max_new_tokens or self.rc.max_new_tokens or 32)

    def _bar(self, it, desc: str, total: int | None = None):
        if not self.cfg.progress:
            return it
        from tqdm.auto import tqdm

        return tqdm(it, desc=desc, total=total)

    # -- stage: config, split, pairs --------------------------------------------------
    def check_config(self) -> None:
        self.cfg.validate(self.rm_kinds())
        f = self.out / "config.json"
        new = dataclasses.asdict(self.cfg)
        if f.is_file():
            old = json.loads(f.read_text())
            keys = ("n_train_users", "max_support", "hard_negative_k", "min_gap",
                    "max_pairs_per_query", "seed")
            diff = {k: (old.get(k), new[k]) for k in keys if old.get(k) != new[k]}
            # folders made before the setting existed used the raw reward; the ARGS lambda and
            # generations cached there depend on it
            for k, default in (("args_lambda_rule", "policy_accuracy"),
                               ("lambda_gen_items", 8)):
                if old.get(k, default) != new[k]:
                    diff[k] = (old.get(k, default), new[k])
            if old.get("icl_demo_format", "gold") != new["icl_demo_format"]:
                diff["icl_demo_format"] = (old.get("icl_demo_format", "gold"),
                                           new["icl_demo_format"])
            if old.get("args_reward_scale", "raw") != new["args_reward_scale"]:
                diff["args_reward_scale"] = (old.get("args_reward_scale", "raw"),
                                             new["args_reward_scale"])
            for name in set(old.get("adapt_models", [])) & set(new["adapt_models"]):
                a = old.get("adapt_settings", {}).get(name, {})
                b = new["adapt_settings"].get(name, {})
                if a != b:  # eval/rm/<name> and every answer selected with it depend on it
                    diff[f"adapt_settings.{name}"] = (a, b)
            if diff:
                raise EvaluationInputError(
                    f"{self.out} was made with other settings {diff} (old, new); use those "
                    "settings to resume or delete the eval folder")
        _atomic_text(f, json.dumps(new, indent=1))

    def split(self) -> UserSplit:
        if (self.out / "user_split.json").is_file():
            return UserSplit.load(self.out)
        items = pd.read_parquet(self.run / "items.parquet")
        ex = pd.read_parquet(self.run / "examples.parquet")
        q = set(ex.loc[ex["split"] == "val", "item_id"])
        s = split_users(items, n_train_users=self.cfg.n_train_users, query_items=q,
                        max_support=self.cfg.max_support, seed=self.cfg.seed)
        s.save(self.out)
        return s

    def pairs(self, split: UserSplit) -> pd.DataFrame:
        f = self.out / "pairs.parquet"
        if f.is_file():
            return pd.read_parquet(f)
        from ttp_diag.gen.evaluation.pairs import build_pairs

        items = pd.read_parquet(self.run / "items.parquet")
        lab = pd.read_parquet(self.run / "labeled.parquet")
        p = build_pairs(items, split, candidates=lab, k=self.cfg.hard_negative_k,
                        min_gap=self.cfg.min_gap,
                        max_pairs_per_query=self.cfg.max_pairs_per_query,
                        encoder=self.encoder(), seed=self.cfg.seed)
        p.insert(0, "pair_id", np.arange(len(p)))
        _atomic_parquet(p, f)
        return p

    def scored_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Query pairs plus a seeded sample of training pairs (lambda selection)."""
        q = pairs[pairs["split"] == "query"]
        tr = pairs[pairs["split"] == "train"]
        if len(tr) > self.cfg.max_lambda_pairs:
            tr = tr.sample(self.cfg.max_lambda_pairs, random_state=self.cfg.seed)
        return pd.concat([tr, q]).sort_values("pair_id").reset_index(drop=True)

    # -- pair scorers -----------------------------------------------------------------
    def pair_scores(self, name: str, pairs: pd.DataFrame, fn) -> pd.DataFrame:
        """Cached ``fn(pairs) -> DataFrame(pair_id, ...)`` under ``pair_scores/<name>``."""
        f = self.out / "pair_scores" / f"{name}.parquet"
        if f.is_file():
            return pd.read_parquet(f)
        t0 = time.perf_counter()
        df = fn(pairs)
        self.timings[f"pairs:{name}"] = time.perf_counter() - t0
        _atomic_parquet(df, f)
        return df

    def _logprobs(self, pm, prompts_c, prompts_r, pairs) -> pd.DataFrame:
        lc = pm.token_logprobs(prompts_c, pairs["chosen"].tolist())
        lr = pm.token_logprobs(prompts_r, pairs["rejected"].tolist())
        return pd.DataFrame({"pair_id": pairs["pair_id"].to_numpy(),
                             "lp_chosen": [x.tolist() for x in lc],
                             "lp_rejected": [x.tolist() for x in lr]})

    def lp_zero(self, pairs):
        from ttp_diag.gen.evaluation.policy import icl_prompt

        def fn(p):
            pr = [icl_prompt(self.task, b) for b in p["prompt"]]
            return self._logprobs(self.policy(), pr, pr, p)

        return self.pair_scores("lp_zero_shot", pairs, fn)

    def reward_fn(self, kind: str, body: str, user: str, *, scaled: bool = False):
        """``texts -> rewards`` of RM ``kind`` for one query; ``scaled``: divided by
        :meth:`reward_scale` (what ARGS uses)."""
        from ttp_diag.gen.evaluation.policy import score_candidates

        rm = self.rms()[kind]
        s = self.reward_scale(kind) if scaled else 1.0
        return lambda texts: np.asarray(score_candidates(
            rm, self.task, [body] * len(texts), texts, [user] * len(texts)), float) / s

    def reward_scale(self, kind: str) -> float:
        """The divisor of RM ``kind``'s reward in ARGS (see ``EvalConfig.args_reward_scale``)."""
        if self.cfg.args_reward_scale == "raw":
            return 1.0
        cache = self._reward_scales
        if kind not in cache:
            col = f"score_{kind}"
            sc = self.pool()[["query_id", "split", col]]
            sc = sc[sc["split"] == "train"]
            sd = float(sc.groupby("query_id")[col].std().median()) if len(sc) else float("nan")
            if not np.isfinite(sd) or sd <= 0:
                warnings.warn(f"reward model {kind!r} has no within-query score spread on the "
                              f"train split (median sd {sd}); ARGS uses its raw reward",
                              RuntimeWarning, stacklevel=2)
                sd = 1.0
            cache[kind] = sd
        return cache[kind]

    def scaled_prefix_rewards(self, kind: str, d: pd.DataFrame) -> pd.DataFrame:
        """``d`` with its cached raw prefix rewards (r_chosen, r_rejected) divided by the scale."""
        s = self.reward_scale(kind)
        return d.assign(r_chosen=[np.asarray(v, float) / s for v in d["r_chosen"]],
                        r_rejected=[np.asarray(v, float) / s for v in d["r_rejected"]])

    def rm_pair_scores(self, kind: str, pairs):
        from ttp_diag.gen.evaluation.guided_decoding import prefix_rewards
        from ttp_diag.gen.evaluation.policy import score_candidates

        def fn(p):
            rm, pm = self.rms()[kind], self.policy()
            n = len(p)
            full = score_candidates(rm, self.task, list(p["prompt"]) * 2,
                                    list(p["chosen"]) + list(p["rejected"]),
                                    list(p["user_id"]) * 2)
            rc, rr = [], []
            for r in self._bar(p.itertuples(), f"prefix rewards {kind}", n):
                f = self.reward_fn(kind, r.prompt, r.user_id)
                rc.append(prefix_rewards(pm, r.chosen, f).tolist())
                rr.append(prefix_rewards(pm, r.rejected, f).tolist())
            return pd.DataFrame({"pair_id": p["pair_id"].to_numpy(), "rm_chosen": full[:n],
                                 "rm_rejected": full[n:], "r_chosen": rc, "r_rejected": rr})

        return self.pair_scores(f"rm_{kind}", pairs, fn)

    def choose_lambda(self, kind: str, pairs) -> float:
        from ttp_diag.gen.evaluation.guided_decoding import select_lambda

        f = self.out / "lambda_grid.csv"
        old = pd.read_csv(f) if f.is_file() else pd.DataFrame(columns=["rm", "lam"])
        if kind in set(old["rm"]):
            g = old[old["rm"] == kind]
            return float(g.loc[g["chosen"].astype(bool), "lam"].iloc[0])
        tr = pairs[pairs["split"] == "train"]
        d = tr[["pair_id", "user_id"]].merge(self.lp_zero(pairs), on="pair_id").merge(
            self.rm_pair_scores(kind, pairs), on="pair_id")
        if self.cfg.args_lambda_rule == "harmonic":
            from ttp_diag.gen.evaluation.guided_decoding import harmonic_lambda

            _, grid = select_lambda(self.scaled_prefix_rewards(kind, d), self.cfg.lambda_grid,
                                    extend=False)
            gen = [self._lambda_generation(kind, tr, x) for x in grid["lam"]]
            grid["rouge1"] = [g[0] for g in gen]
            grid["inv_perplexity"] = [g[1] for g in gen]
            lam, grid = harmonic_lambda(grid)
            grid["rule"] = "harmonic"
        else:
            lam, grid = select_lambda(self.scaled_prefix_rewards(kind, d), self.cfg.lambda_grid)
            grid["rule"] = "policy_accuracy"
        grid.insert(0, "rm", kind)
        grid["chosen"] = grid["lam"] == lam
        _atomic_text(f, pd.concat([old, grid]).to_csv(index=False))
        return lam

    # -- generation -------------------------------------------------------------------
    def _lambda_generation(self, kind: str, train_pairs: pd.DataFrame,
                           lam: float) -> tuple[float, float]:
        """(mean ROUGE-1 against the gold, mean inverse perplexity) of ARGS answers at ``lam``
        to the first ``lambda_gen_items`` training items (the LaMP-5 lambda rule's inputs)."""
        from ttp_diag.gen.evaluation.guided_decoding import args_decode
        from ttp_diag.gen.evaluation.policy import icl_prompt
        from ttp_diag.gen.labels import rouge_scores

        items = train_pairs.drop_duplicates("prompt").sort_values("pair_id").head(
            int(self.cfg.lambda_gen_items))
        pm = self.policy()
        texts, prompts = [], []
        for r in items.itertuples():
            prompts.append(icl_prompt(self.task, r.prompt))
            texts.append(args_decode(pm, prompts[-1],
                                     reward_fn=self.reward_fn(kind, r.prompt, r.user_id,
                                                              scaled=True),
                                     lam=lam, top_k=self.cfg.args_top_k,
                                     max_new_tokens=self.max_new_tokens,
                                     first_line=pm.backend.first_line,
                                     seed=self.cfg.seed)["text"])
        rouge = rouge_scores(texts, items["chosen"].astype(str).tolist())["rouge1_f"]
        keep = [i for i, t in enumerate(texts) if t.strip()]
        inv_ppl = 0.0
        if keep:
            lps = pm.token_logprobs([prompts[i] for i in keep], [texts[i] for i in keep])
            inv_ppl = float(np.mean([np.exp(np.mean(x)) if len(x) else 0.0 for x in lps]))
        return float(rouge.mean()), inv_ppl

    def _queries(self, split: UserSplit) -> pd.DataFrame:
        items = pd.read_parquet(self.run / "items.parquet").drop(columns=["user_id", "position"])
        q = split.items_in("query").merge(items, on="item_id")
        return q.rename(columns={"item_id": "query_id"})

    def _support(self, split: UserSplit, user: str) -> pd.DataFrame:
        items = pd.read_parquet(self.run / "items.parquet").drop(columns=["user_id", "position"])
        return split.items_in("support", user).merge(items, on="item_id").sort_values(
            "position")

    def _clean(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Apply the backends' one-line post-processing (idempotent) to stored answers."""
        if self.rc.first_line:
            from ttp_diag.gen.backends import _postprocess

            rows = rows.assign(text=[_postprocess(str(t), True) for t in rows["text"]])
        return rows

    def generate(self, method: str, split: UserSplit, fn) -> pd.DataFrame:
        """Per user: ``fn(user, queries, support) -> rows(query_id, text, weight)``."""
        queries = self._queries(split)
        parts = []
        for u in self._bar(split.adapt_users, method):
            f = self.out / "generations" / method / f"{u}.parquet"
            if f.is_file():
                parts.append(self._clean(pd.read_parquet(f)))
                continue
            sup = self._support(split, u)
            if sup.empty:
                raise EvaluationInputError(
                    f"user {u!r} has no support items; method {method!r} needs them (raise "
                    "max_support or make the user a training user)")
            t0 = time.perf_counter()
            rows = pd.DataFrame(fn(u, queries[queries["user_id"] == u], sup),
                                columns=["query_id", "text", "weight"])
            rows.insert(0, "user_id", u)
            rows.insert(0, "method", method)
            rows["seconds"] = time.perf_counter() - t0
            _atomic_parquet(rows, f)
            parts.append(rows)
        return pd.concat(parts, ignore_index=True)
