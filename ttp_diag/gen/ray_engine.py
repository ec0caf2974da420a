"""The generation pipeline's candidate, label and scoring stages on Ray Data (``engine="ray"``).

``ttp-diag run --engine ray [--address ADDR] [--ray-workers K]`` runs the same stages as the
single-process path, with the work spread by Ray Data and the bookkeeping unchanged:

=============  ===============================================================================
stage          on Ray
=============  ===============================================================================
candidates     the chunks still to do (the single-process run's chunks and seeds) become a Ray
               Dataset; ``map_batches`` over an actor pool (:class:`ray.data.ActorPoolStrategy`)
               holds one backend per actor (transformers on CPU, or on a GPU with ``num_gpus``
               per actor; the vLLM adapter with ``tensor_parallel_size`` GPUs per actor). The
               driver writes each query's file (count, checksum, atomic) as results stream
               back, exactly as :class:`~ttp_diag.gen.candidates.CandidateGenerator` does.
labels         ROUGE over row blocks in a task pool (MiniLM labels stay in the driver).
rms            one job in the driver, as always.
scores         the trained models (``rm/`` or ``rm_from``) loaded once per actor; row blocks
               scored in an actor pool and put back in row order.
=============  ===============================================================================

Because the chunks, their seeds and the files are those of the single-process run, a Ray run
writes the same tables (texts, labels; scores up to float32 rounding of batch-mates), can be
resumed without Ray (``--engine local``) and merged with ``ttp-diag merge``. A killed worker
is restarted by Ray and its chunk retried (Ray Data's actors default to ``max_restarts=-1``,
``max_task_retries=-1``); a chunk whose query files were written already is skipped, so no row
is lost or written twice. If Ray gives up on the whole dataset, the stage resumes from the run
folder (up to ``MAX_ATTEMPTS`` times).

On a cluster of several machines the run folder must sit on a filesystem every node sees (the
scoring actors load ``rm/`` from it), as for ``--shard`` job arrays.

**vLLM.** vLLM's documented route is ``ray.data.llm`` (``build_llm_processor``); here the vLLM
backend instead runs as one vLLM actor per pool slot, so the per-chunk seeds (and so the
resume and same-answer guarantees) carry over. This path was never run: vLLM is not installed
and there is no GPU on the machine this was built on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag._ray import RaySession
from ttp_diag.gen.candidates import CandidateGenerator, _chunk_seed
from ttp_diag.gen.run_config import RunConfig

logger = logging.getLogger(__name__)

__all__ = ["RayCandidateGenerator", "ray_rouge_labels", "ray_score_table", "RaySession",
           "MAX_ATTEMPTS"]

MAX_ATTEMPTS = 3  # whole-stage resumes from the run folder after Ray gives up

_BACKEND_NAMES = {"tiny": "tiny-random", "tiny-random": "tiny-random", "hf": "transformers",
                  "transformers": "transformers", "vllm": "vllm"}


class _Named:
    """Stands in for the backend in the driver (which never loads the model): its name only."""

    def __init__(self, name: str):
        self.name = name


def _set_threads(n: int | None) -> None:
    import torch

    torch.set_num_threads(int(n or 1))


def _worker_resources(c: RunConfig) -> dict:
    """``num_cpus``/``num_gpus`` per generation actor."""
    if c.backend == "vllm":
        tp = int(c.backend_kwargs.get("tensor_parallel_size", 1))
        return {"num_cpus": 1, "num_gpus": tp}
    if str(c.device).startswith("cuda"):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1}


class _GenerateChunks:
    """Ray Data actor: one backend, built once; each row of a batch is one chunk of prompts."""

    def __init__(self, config: RunConfig, sampling: dict, worker_dir: str | None):
        from ttp_diag.gen.backends import build_backend

        _set_threads(config.num_threads)
        self.backend = build_backend(config)
        self.sampling = sampling
        if worker_dir:  # who works on this run (pids, for operators and the fault test)
            d = Path(worker_dir)
            d.mkdir(parents=True, exist_ok=True)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            (d / f"{socket.gethostname()}-{os.getpid()}.json").write_text(json.dumps(info))

    def __call__(self, batch: dict) -> dict:
        texts, secs = [], []
        for prompts, seed in zip(batch["prompts"], batch["seed"], strict=True):
            t0 = time.perf_counter()
            outs = self.backend.generate(json.loads(prompts), seed=int(seed), **self.sampling)
            secs.append(time.perf_counter() - t0)
            texts.append(json.dumps(outs, ensure_ascii=False))
        return {"chunk": np.asarray(batch["chunk"]), "texts": np.array(texts, dtype=object),
                "seconds": np.asarray(secs, dtype=float),
                "worker": np.array([f"{socket.gethostname()}-{os.getpid()}"] * len(texts),
                                   dtype=object)}


class RayCandidateGenerator(CandidateGenerator):
    """:class:`~ttp_diag.gen.candidates.CandidateGenerator` whose chunks run on a Ray actor pool.

    Only the chunk loop differs (:meth:`_chunk_outputs`): chunks, seeds, per-query files,
    checksums, progress and resume are the base class's, so the candidate files equal those of
    the single-process run with the same settings.

    Parameters
    ----------
    config : RunConfig
        The resolved run configuration; every actor builds its backend from it.
    session : RaySession
        The Ray to run on; ``session.workers`` actors.
    worker_dir : path, optional
        Each actor writes ``<host>-<pid>.json`` here when it starts.
    **kwargs
        Sampling settings of :class:`CandidateGenerator` (``n``, ``temperature``, ...).

    Attributes
    ----------
    stats_ : dict
        As the base class's, plus ``ray_workers_used`` (actors that returned a chunk) and
        ``ray_first_chunk_seconds`` (from submitting the dataset to the first chunk back:
        the actors' start-up, a fresh process each, plus one chunk).
    workers_used_ : set of str
        ``<host>-<pid>`` of those actors.

    Examples
    --------
    See ``tests/gen/test_ray_engine.py`` (it starts a local Ray: too slow for a doctest).

    >>> RayCandidateGenerator  # doctest: +ELLIPSIS
    <class '...RayCandidateGenerator'>
    """

    def __init__(self, config: RunConfig, *, session: RaySession,
                 worker_dir: str | os.PathLike | None = None, **kwargs):
        super().__init__(_Named(_BACKEND_NAMES.get(config.backend, config.backend)), **kwargs)
        self.config = config
        self.session = session
        self.worker_dir = None if worker_dir is None else str(worker_dir)

    def _chunk_outputs(self, todo, should_stop):
        if not todo:
            return
        if should_stop is not None and should_stop():
            yield None, None, None, None
            return
        ray = self.session.ray
        seeds = [_chunk_seed(self.seed, [r["query_id"] for r in ch]) for ch in todo]
        items = [{"chunk": i, "prompts": json.dumps([r["prompt"] for r in ch]), "seed": s}
                 for i, (ch, s) in enumerate(zip(todo, seeds, strict=True))]
        sampling = {"n": self.n, "temperature": self.temperature, "top_p": self.top_p,
                    "max_new_tokens": self.max_new_tokens}
        workers = min(self.session.workers, len(items))
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _GenerateChunks,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={"config": self.config, "sampling": sampling,
                                   "worker_dir": self.worker_dir},
            **_worker_resources(self.config),
        )
        t0 = time.perf_counter()
        for k, row in enumerate(ds.iter_rows(), start=1):
            if self.first_chunk_seconds_ is None:  # actor start-up (+ one chunk)
                self.first_chunk_seconds_ = time.perf_counter() - t0
            self.workers_used_.add(str(row["worker"]))
            i = int(row["chunk"])
            yield todo[i], seeds[i], json.loads(row["texts"]), float(row["seconds"])
            # as in the single process: checked before a chunk that is still to come
            if k < len(todo) and should_stop is not None and should_stop():
                yield None, None, None, None
                return

    def run(self, examples, out_dir, **kwargs) -> pd.DataFrame:
        """:meth:`CandidateGenerator.run`; if Ray gives up, resume from the run folder."""
        ray = self.session.ray
        self.workers_used_: set[str] = set()
        self.first_chunk_seconds_: float | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                out = super().run(examples, out_dir, **kwargs)
                self.stats_["ray_workers_used"] = len(self.workers_used_)
                self.stats_["ray_first_chunk_seconds"] = self.first_chunk_seconds_
                return out
            except ray.exceptions.RayError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                logger.warning("candidates on Ray failed (%s: %s); resuming from the run folder "
                               "(attempt %d of %d)", type(exc).__name__, str(exc)[:200],
                               attempt + 1, MAX_ATTEMPTS)
        raise AssertionError("unreachable")  # pragma: no cover


def _blocks(df: pd.DataFrame, n_blocks: int) -> list[pd.DataFrame]:
    """Contiguous row blocks with a ``_row`` column (the original position)."""
    df = df.assign(_row=np.arange(len(df)))
    n_blocks = max(1, min(n_blocks, len(df)))
    edges = np.linspace(0, len(df), n_blocks + 1).astype(int)
    return [df.iloc[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _collect(ds, progress: bool, what: str, n_blocks: int) -> pd.DataFrame:
    """The dataset's blocks as they finish (a tqdm line per stage), put back in row order."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_blocks, desc=f"{what} (ray)", unit="block")
    parts = []
    for part in ds.iter_batches(batch_size=None, batch_format="pandas"):
        parts.append(part)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    out = pd.concat(parts, ignore_index=True).sort_values("_row", kind="mergesort")
    return out.reset_index(drop=True)


def _rouge_block(df: pd.DataFrame) -> pd.DataFrame:
    from ttp_diag.gen.labels import rouge_scores

    sc = rouge_scores(df["text"].tolist(), df["gold"].tolist(), n_jobs=1)
    return pd.DataFrame({"_row": df["_row"].to_numpy(), "reward": sc["reward"].to_numpy()})


def ray_rouge_labels(session: RaySession, table: pd.DataFrame, *, text_col: str = "text",
                     gold_col: str = "gold", progress: bool = False) -> np.ndarray:
    """ROUGE rewards of ``table``'s rows (as :func:`~ttp_diag.gen.labels.label_table`) on Ray.

    Rows go in contiguous blocks (4 per worker) to a task pool; the rewards come back in row
    order. ROUGE is deterministic, so the values equal the single-process labels exactly.
    """
    ray = session.ray
    df = pd.DataFrame({"text": table[text_col].to_numpy(), "gold": table[gold_col].to_numpy()})
    blocks = _blocks(df, 4 * session.workers)
    ds = ray.data.from_pandas(blocks).map_batches(
        _rouge_block, batch_format="pandas", batch_size=None,
        compute=ray.data.TaskPoolStrategy(size=session.workers), num_cpus=1)
    out = _collect(ds, progress, "labels", len(blocks))
    if len(out) != len(df) or not np.array_equal(out["_row"].to_numpy(), np.arange(len(df))):
        raise RuntimeError(f"Ray returned {len(out)} labels for {len(df)} rows")
    return out["reward"].to_numpy()


class _ScoreRows:
    """Ray Data actor: the reward models, loaded once; scores a block of rows."""

    def __init__(self, rm_dir: str, kinds: list[str], backbone: str | None,
                 threads: int | None):
        from ttp_diag.gen.scoring import load_reward_models

        _set_threads(threads)
        self.models = load_reward_models(rm_dir, kinds=kinds, backbone=backbone)

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        from ttp_diag.gen.scoring import PIPELINE_RM_INPUT, score_table

        return score_table(df, self.models, out_path=None, **PIPELINE_RM_INPUT)


def ray_score_table(session: RaySession, table: pd.DataFrame, *, rm_dir: str | os.PathLike,
                    kinds: list[str], backbone: str | None = None, threads: int | None = None,
                    progress: bool = False) -> pd.DataFrame:
    """:func:`~ttp_diag.gen.scoring.score_table` with the models saved in ``rm_dir``, on Ray.

    Each actor loads the models once; contiguous row blocks are scored and put back in row
    order, with the columns of the single-process table. Scores equal the single-process ones
    up to float32 rounding (a text's batch-mates differ).
    """
    ray = session.ray
    blocks = _blocks(table.reset_index(drop=True), 2 * session.workers)
    ds = ray.data.from_pandas(blocks).map_batches(
        _ScoreRows, batch_format="pandas", batch_size=None,
        compute=ray.data.ActorPoolStrategy(size=min(session.workers, len(blocks))),
        fn_constructor_kwargs={"rm_dir": str(rm_dir), "kinds": list(kinds),
                               "backbone": backbone, "threads": threads},
        num_cpus=1)
    out = _collect(ds, progress, "scores", len(blocks))
    if not np.array_equal(out["_row"].to_numpy(), np.arange(len(table))):
        raise RuntimeError(f"Ray returned {len(out)} scored rows for {len(table)}")
    out = out.drop(columns=["_row"])
    src = table.reset_index(drop=True)
    for c in out.columns:  # the input's columns as they were (Arrow changed their dtypes)
        if c in src.columns:
            out[c] = src[c]
        else:  # the new score columns: float64, as score_table makes them
            out[c] = out[c].to_numpy(dtype=float)
    return out
