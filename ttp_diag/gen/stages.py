"""The six stages of the generation pipeline, as methods of the run object.

:class:`_Stages` is a mixin of :class:`ttp_diag.gen.pipeline._Run`: each ``stage_<name>``
method computes one stage of :data:`ttp_diag.gen.pipeline.STAGES` from the previous stages'
tables, writes its result into the run folder and returns it (or returns the result found
there). The run object supplies the bookkeeping the stages rely on: ``c`` (the resolved
:class:`~ttp_diag.gen.run_config.RunConfig`), ``shard``, ``summary``, ``p(name)`` (a path in the
run folder), ``record(stage, seconds, **info)``, ``read_done(*names)``, ``torch_threads()`` and
``backend()``. Run the stages through :func:`ttp_diag.gen.pipeline.run_pipeline`, which holds
the folder's lock and checks the configuration first.

=============  ============================================================
stage          what it does
=============  ============================================================
data           read the users' items, split them into train/val examples
prompts        retrieval from earlier items and/or personas -> policy prompts
candidates     N sampled texts per query (resumable cache, time budget, shards)
labels         ROUGE (and MiniLM) reward of every candidate against the gold text
rms            fit (or load, ``rm_from``) the reward models
scores         every reward model's score of every candidate
=============  ============================================================
"""

from __future__ import annotations

import json
import time

import numpy as np

from ttp_diag.exceptions import TimeBudgetExceeded
from ttp_diag.gen.candidates import atomic_write_parquet, atomic_write_text
from ttp_diag.gen.run_folder import RunFolderError

__all__: list[str] = []


class _Stages:
    """The stage methods of a run (mixed into :class:`ttp_diag.gen.pipeline._Run`)."""

    def stage_data(self):
        ex_p, it_p = self.p("examples.parquet"), self.p("items.parquet")
        done = self.read_done("examples.parquet", "items.parquet")
        if done is not None:
            return done
        from ttp_diag.gen import data as D

        t0 = time.perf_counter()
        c = self.c
        if c.data_format == "jsonl":
            items = D.load_jsonl_users(c.data_path, c.task, strict=c.strict)
        elif c.data_format == "lamp":
            items = D.load_lamp(c.data_path, c.outputs_path, c.task, strict=c.strict)
        else:
            items = D.load_longlamp(c.data_path, c.task, strict=c.strict)
        ex = D.build_examples(
            items,
            top_k_users=c.top_k_users,
            max_samples_per_user=c.max_samples_per_user,
            val_fraction=c.val_fraction,
            min_items=c.min_items,
            users=c.users,
        )
        examples = ex.examples
        if c.order == "val_first":
            # Latest first within each (user, split), then round-robin over users.
            examples = examples.assign(
                _v=(examples["split"] != "val").astype(int), _p=-examples["position"]
            )
            examples = examples.sort_values(["_v", "user_id", "_p"], kind="mergesort")
            examples["_r"] = examples.groupby(["user_id", "_v"]).cumcount()
            examples = examples.sort_values(["_v", "_r", "user_id"], kind="mergesort").drop(
                columns=["_v", "_p", "_r"]
            )
        atomic_write_parquet(ex.items, it_p)
        atomic_write_parquet(examples.reset_index(drop=True), ex_p)
        atomic_write_text(
            self.p("data_summary.json"), json.dumps(ex.summary, indent=1, default=str)
        )
        self.record(
            "data",
            time.perf_counter() - t0,
            users=len(ex.summary["users"]),
            examples=int(len(examples)),
            train=ex.summary["n_train"],
            val=ex.summary["n_val"],
            skipped=ex.summary.get("n_skipped", 0),
        )
        return examples.reset_index(drop=True), ex.items

    def stage_prompts(self, examples, items):
        pr_p = self.p("prompts.parquet")
        done = self.read_done("prompts.parquet")
        if done is not None:
            return done[0]
        from ttp_diag.gen.prompts import generate_personas, policy_prompt
        from ttp_diag.gen.retrieval import MiniLMEncoder, retrieve_history

        t0 = time.perf_counter()
        self.torch_threads()
        c = self.c
        hist = {}
        if c.policy in ("rag", "persona_rag"):
            hist = retrieve_history(
                examples, items, MiniLMEncoder(device=c.device), k=c.retrieval_k
            )
        personas: dict[str, str] = {}
        if c.policy in ("persona", "persona_rag"):
            samples = {}
            for uid, g in examples.groupby("user_id", sort=False):
                first_val = g.loc[g["split"] == "val", "position"].min()
                pool = items[
                    (items["user_id"] == uid) & (items["position"] < first_val)
                ].sort_values("position")
                samples[uid] = pool.tail(c.persona_samples)[["body", "output"]].to_dict(
                    "records"
                )
            personas = generate_personas(self.backend(), c.task, samples, seed=c.seed)
            # An empty generation would make the persona prompt invalid; keep the run going
            # with a neutral note and count it in the summary.
            empty = sorted(u for u, p in personas.items() if not p.strip())
            for u in empty:
                personas[u] = "(no style description could be generated for this user)"
            atomic_write_text(
                self.p("personas.json"), json.dumps(personas, indent=1, ensure_ascii=False)
            )
        prompts = [
            policy_prompt(
                c.task,
                r.body,
                policy=c.policy,
                history=hist.get(r.query_id, ()),
                persona=personas.get(r.user_id),
                max_chars=c.retrieval_max_chars,
            )
            for r in examples.itertuples()
        ]
        out = examples[["user_id", "query_id", "split", "position", "body", "output"]].copy()
        out["prompt"] = prompts
        out["retrieved"] = [
            json.dumps([h["item_id"] for h in hist.get(q, [])]) for q in out["query_id"]
        ]
        atomic_write_parquet(out, pr_p)
        extra = {"personas_empty": len(empty)} if personas else {}
        self.record(
            "prompts",
            time.perf_counter() - t0,
            prompts=len(out),
            policy=c.policy,
            retrieval_k=c.retrieval_k,
            **extra,
        )
        return out

    def stage_candidates(self, prompts):
        cand_p = self.p("candidates.parquet")
        done = self.read_done("candidates.parquet")
        if done is not None:
            return done[0]
        from ttp_diag.gen.candidates import CandidateGenerator
        from ttp_diag.gen.shards import shard_queries

        c = self.c
        self.torch_threads()
        sampling = dict(n=c.n, temperature=c.temperature, top_p=c.top_p,
                        max_new_tokens=c.max_new_tokens, batch_size=c.batch_size, seed=c.seed,
                        dedup=c.dedup, progress=c.progress)
        if c.engine == "ray":  # same chunks, seeds and files; one backend per Ray actor
            from ttp_diag.gen.ray_engine import RayCandidateGenerator

            gen = RayCandidateGenerator(c, session=self.ray(), worker_dir=self.p("ray_workers"),
                                        **sampling)
        else:
            gen = CandidateGenerator(self.backend(), **sampling)
        # A shard writes its own users' queries; chunks (and so seeds) are those of the
        # whole run, so its texts are the unsharded run's (see ttp_diag.gen.shards).
        keep = shard_queries(prompts, *self.shard) if self.shard else None
        n_queries = len(prompts) if keep is None else len(keep)
        budget = c.candidate_time_budget_s
        t0 = time.perf_counter()
        prev = self.summary["stages"].get("candidates", {})

        def stop() -> bool:
            return budget is not None and time.perf_counter() - t0 > budget

        cands = None
        try:
            cands = gen.run(prompts, self.p("candidates"), should_stop=stop, keep=keep)
        finally:
            # Recorded even when the run is interrupted (Ctrl-C), so that wall time
            # accumulates over sessions and queries_done is never stale.
            secs = time.perf_counter() - t0
            total_secs = prev.get("seconds_total", 0.0) + secs
            if cands is None or not getattr(gen, "stats_", {}).get("complete", True):
                from ttp_diag.gen.candidates import count_done

                n_done = (
                    count_done(self.p("candidates"), prompts, keep)
                    if cands is None
                    else int(cands["query_id"].nunique())
                )
                self.record(
                    "candidates",
                    None,
                    seconds_total=round(total_secs, 1),
                    complete=False,
                    queries_done=int(n_done),
                    queries=int(n_queries),
                )
        stats = gen.stats_
        if not stats["complete"]:
            if not c.allow_partial or cands.empty:
                raise TimeBudgetExceeded(
                    f"candidate time budget of {budget} s used up with "
                    f"{cands['query_id'].nunique()} of "
                    f"{n_queries} queries done; run again to resume, or pass --allow-partial "
                    "(allow_partial=True) to score the queries done"
                )
            return cands
        atomic_write_parquet(cands, cand_p)
        self.summary["stages"].get("candidates", {}).pop("queries_done", None)
        self.record(
            "candidates",
            secs,
            seconds_total=round(total_secs, 1),
            complete=True,
            queries=int(cands["query_id"].nunique()),
            candidates=int(len(cands)),
            samples_generated=cands.attrs.get("n_generated"),
            empty=cands.attrs.get("n_empty"),
            duplicates=cands.attrs.get("n_duplicates"),
            last_session=stats,
            backend=(getattr(self.backend(), "describe", lambda: {})() if c.engine != "ray"
                     else {"backend": gen.backend.name, "engine": "ray",
                           "workers": self.ray().workers,
                           "ray_startup_seconds": round(self.ray().startup_seconds, 2)}),
        )
        return cands

    def stage_labels(self, cands, prompts):
        lab_p = self.p("labeled.parquet")
        done = self.read_done("labeled.parquet")
        if done is not None:
            return done[0]
        from ttp_diag.gen.labels import label_table

        t0 = time.perf_counter()
        gold = prompts[["query_id", "body", "output"]].rename(columns={"output": "gold"})
        table = cands.merge(gold, on="query_id", how="left", validate="many_to_one")
        if self.c.engine == "ray":
            from ttp_diag.gen.ray_engine import ray_rouge_labels

            rouge = ray_rouge_labels(self.ray(), table, progress=self.c.progress)
        else:
            rouge = label_table(
                table,
                text_col="text",
                gold_col="gold",
                out_col="reward_rouge",
                n_jobs=self.c.label_workers,
                progress=self.c.progress,
            )["reward_rouge"].to_numpy()
        labels = {"rouge": rouge}
        if "minilm" in {self.c.label, *self.c.extra_labels}:
            from ttp_diag.gen.labels import minilm_similarity

            sim = minilm_similarity(
                table["text"].tolist(), table["gold"].tolist(), device=self.c.device
            )
            # Cosine can be negative; rewards live in [0, 1] like ROUGE.
            labels["minilm"] = np.clip(sim, 0.0, 1.0)
        table = table.copy()
        table["reward"] = labels[self.c.label]
        for name in self.c.extra_labels:
            if name != self.c.label:
                table[f"reward_{name}"] = labels[name]
        atomic_write_parquet(table, lab_p)
        self.record(
            "labels",
            time.perf_counter() - t0,
            rows=int(len(table)),
            mean_reward=float(table["reward"].mean()),
            zero_share=float((table["reward"] == 0).mean()),
        )
        return table

    def stage_rms(self, table):
        from ttp_diag.gen.scoring import (
            PIPELINE_RM_INPUT,
            add_rm_inputs,
            fit_reward_models,
            load_reward_models,
        )

        self.torch_threads(rm=True)
        t0 = time.perf_counter()
        # prompt and response separate, as the evaluation suite and the zoo score them
        table = add_rm_inputs(table, self.c.task, input_col="body", text_col="text",
                              prompt_col=PIPELINE_RM_INPUT["rm_prompt_col"])
        if self.c.rm_from:
            # Reward models trained once (in the merged run folder), loaded by every shard.
            models = load_reward_models(
                self.c.rm_from, kinds=self.c.rm_kinds, backbone=self.c.rm_backbone
            )
            self.record("rms", time.perf_counter() - t0, kinds=self.c.rm_kinds,
                        loaded_from=str(self.c.rm_from))
            return table, models
        if self.shard is not None:
            raise RunFolderError(
                f"shard {self.c.shard}: reward-model training is one job. Stop shards with "
                "--until labels, merge them (ttp-diag merge SHARD_DIRS --out MERGED), train in "
                "MERGED (ttp-diag run --run-dir MERGED --until rms), then score each shard "
                "with --rm-from MERGED/rm"
            )
        fit_on = table
        if self.c.rm_data_pct < 100:
            from ttp_diag.gen.reward_models.tables import subsample_user_train

            fit_on = subsample_user_train(table, self.c.rm_data_pct, seed=self.c.seed)
        models = fit_reward_models(
            fit_on,
            kinds=self.c.rm_kinds,
            output_dir=self.p("rm"),
            backbone=self.c.rm_backbone,
            settings=self.c.rm_settings,
            kind_settings=self.c.rm_kind_settings,
            verbose=self.c.progress,
            **PIPELINE_RM_INPUT,
        )
        timings = models.timings
        n_train = int((fit_on["split"] == "train").sum())
        self.record(
            "rms",
            time.perf_counter() - t0,
            kinds=self.c.rm_kinds,
            train_rows=n_train,
            rm_data_pct=self.c.rm_data_pct,
            seconds_per_kind={k: round(v, 2) for k, v in timings.items()},
        )
        return table, models

    def stage_scores(self, table, models):
        sc_p = self.p("scores.parquet")
        done = self.read_done("scores.parquet")
        if done is not None:
            return done[0]
        from ttp_diag.gen.scoring import PIPELINE_RM_INPUT, score_table

        self.torch_threads(rm=True)
        t0 = time.perf_counter()
        if self.c.engine == "ray":  # each actor loads the saved models once
            from ttp_diag.gen.ray_engine import ray_score_table

            scores = ray_score_table(
                self.ray(), table, rm_dir=self.c.rm_from or self.p("rm"),
                kinds=self.c.rm_kinds, backbone=self.c.rm_backbone,
                threads=self.c.rm_num_threads or self.c.num_threads, progress=self.c.progress)
        else:
            scores = score_table(table, models, out_path=None, **PIPELINE_RM_INPUT)
        keep_extra = [c for c in ("gold", "body") if c in scores.columns]
        scores = scores.drop(columns=keep_extra)
        atomic_write_parquet(scores, sc_p)
        self.record(
            "scores",
            time.perf_counter() - t0,
            rows=int(len(scores)),
            seconds_per_kind={
                k: round(v, 2) for k, v in scores.attrs.get("scoring_seconds", {}).items()
            },
        )
        return scores
