"""Resumable Best-of-N candidate generation.

For every example (a query with its policy prompt) ``n`` completions are sampled; for
short-form tasks exact duplicates (and empty completions) are removed, as in the paper
(appendix D.1), so a query keeps at most ``n`` distinct candidates.

Resumability
------------
Each query's candidates are written to their own small JSON file, through a temporary file,
``fsync`` and ``os.replace``, so a file is either complete or absent. Queries are processed
in fixed chunks of ``batch_size`` prompts (fixed by the example order), and each chunk is
sampled with a seed derived from ``seed`` and the chunk's query ids. A run killed at any
point and started again skips the finished queries and regenerates an unfinished chunk
with the same seed and the same composition, so it ends with exactly the rows of an
uninterrupted run (on the same machine and thread count), none lost and none duplicated.
A settings file (``_settings.json``) refuses to resume with different sampling settings.

Each file records how many texts it holds (``n_texts``) and a checksum of them
(``texts_sha``). On resume a file that does not parse, lacks fields, or whose texts do not
match their count or checksum (a truncated write by another tool, a hand edit) is named in a
warning, moved to ``_bad/`` and its query regenerated with its chunk's seed.

Shards
------
``run(..., keep=query_ids)`` writes only the queries in ``keep`` while the chunks are still
formed over all of ``examples``: a chunk that holds kept queries is generated whole (its
seed and composition are the unsharded run's), so a shard's texts equal the unsharded
run's. See :mod:`ttp_diag.gen.shards`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

# one atomic-write family for the package (mkstemp, fsync, rename; Parquet with page checksums)
from ttp_diag.exceptions import CorruptFileError, DataError, RunFolderError
from ttp_diag.gen.run_folder import read_json
from ttp_diag.io import atomic_write_parquet, atomic_write_text

if TYPE_CHECKING:
    from ttp_diag.gen.backends import GenerationBackend

logger = logging.getLogger(__name__)

__all__ = [
    "CandidateGenerator",
    "generate_candidates",
    "load_candidates",
    "atomic_write_text",
    "atomic_write_parquet",
    "check_entry",
    "count_done",
]

CANDIDATE_COLUMNS = ["user_id", "query_id", "cand_id", "split", "text"]


def _safe_name(query_id: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(query_id))[:80]
    return f"{stem}-{hashlib.sha1(str(query_id).encode()).hexdigest()[:8]}.json"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _texts_sha(texts: list[str]) -> str:
    return _sha(json.dumps(texts, ensure_ascii=False))


def check_entry(rec: object) -> str | None:
    """Why a parsed per-query record cannot be trusted (``None``: it can).

    The expected number of texts is ``n_texts`` (or, for files written before it existed,
    ``n_generated - n_empty - n_duplicates``); ``texts_sha`` must match when present.

    Examples
    --------
    >>> rec = {"query_id": "q", "user_id": "u", "split": "val", "texts": ["a", "b"],
    ...        "n_generated": 3, "n_empty": 0, "n_duplicates": 1, "prompt_sha": "x"}
    >>> check_entry(rec) is None
    True
    >>> check_entry({**rec, "texts": ["a"]})
    'holds 1 texts, expected 2'
    """
    if not isinstance(rec, dict):
        return f"is a JSON {type(rec).__name__}, not an object"
    need = ["query_id", "user_id", "split", "texts", "n_generated", "n_empty", "n_duplicates",
            "prompt_sha"]
    miss = [k for k in need if k not in rec]
    if miss:
        return f"lacks field(s) {miss}"
    texts = rec["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return "texts is not a list of strings"
    try:
        expected = int(
            rec.get("n_texts", rec["n_generated"] - rec["n_empty"] - rec["n_duplicates"])
        )
    except (TypeError, ValueError):
        return "has non-numeric counts"
    if len(texts) != expected:
        return f"holds {len(texts)} texts, expected {expected}"
    if "texts_sha" in rec and rec["texts_sha"] != _texts_sha(texts):
        return "texts do not match their checksum"
    return None


def _read_entry(f: Path) -> tuple[dict | None, str | None]:
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"is not valid JSON ({exc.__class__.__name__}: truncated or garbled)"
    why = check_entry(rec)
    return (rec, None) if why is None else (None, why)


def _quarantine(f: Path, why: str) -> Path:
    bad_dir = f.parent / "_bad"
    bad_dir.mkdir(exist_ok=True)
    dest = bad_dir / f"{f.name}.{int(time.time() * 1000)}"
    os.replace(f, dest)
    logger.warning("candidate file %s %s; moved to %s and regenerating", f, why, dest)
    return dest


def count_done(
    out_dir: str | os.PathLike, examples: pd.DataFrame, keep: Iterable[str] | None = None
) -> int:
    """Queries of ``examples`` (within ``keep``) whose candidate file exists and is sound."""
    out_dir = Path(out_dir)
    n = 0
    for qid in examples["query_id"].astype(str):
        if keep is not None and qid not in keep:
            continue
        f = out_dir / _safe_name(qid)
        if f.is_file() and _read_entry(f)[1] is None:
            n += 1
    return n


def _chunk_seed(seed: int, query_ids) -> int:
    h = hashlib.sha256((f"{int(seed)}|" + "|".join(map(str, query_ids))).encode()).hexdigest()
    return int(h[:15], 16)


class CandidateGenerator:
    """Sample ``n`` candidates per query, written per query and resumable.

    Parameters
    ----------
    backend : GenerationBackend
        Anything with ``generate(prompts, n, temperature, top_p, max_new_tokens, seed)``.
    n : int
        Samples per query (the paper: 30).
    temperature : float
        The paper: 1.7 for short-form (LaMP), 1.5 for long-form (LongLaMP).
    top_p : float
        Nucleus sampling mass.
    max_new_tokens : int
        Completion length cap.
    batch_size : int
        Prompts per backend call (each expands to ``n`` sequences); on CPU several prompts
        per call are much cheaper per candidate than one.
    seed : int
        Base seed; each chunk's seed is derived from it and the chunk's query ids.
    dedup : bool
        Remove exact duplicates and empty completions (short-form tasks).
    progress : bool
        Show a tqdm progress bar.

    Attributes
    ----------
    stats_ : dict
        After :meth:`run`: queries generated / reused, candidates, seconds, throughput.

    Examples
    --------
    >>> import tempfile
    >>> from ttp_diag.gen.backends import tiny_random_backend
    >>> examples = pd.DataFrame({"query_id": ["q0", "q1"], "user_id": ["u0", "u1"],
    ...                          "split": ["val", "val"],
    ...                          "prompt": ["### Article: a storm. ### Headline:", "### Title:"]})
    >>> gen = CandidateGenerator(tiny_random_backend(), n=4, max_new_tokens=8, progress=False)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     cands = gen.run(examples, d)
    >>> list(cands.columns)
    ['user_id', 'query_id', 'cand_id', 'split', 'text']
    >>> bool(cands.groupby("query_id").size().le(4).all()), gen.stats_["queries_generated"]
    (True, 2)
    """

    def __init__(
        self,
        backend: GenerationBackend,
        *,
        n: int = 30,
        temperature: float = 1.7,
        top_p: float = 0.95,
        max_new_tokens: int = 32,
        batch_size: int = 4,
        seed: int = 0,
        dedup: bool = True,
        progress: bool = True,
    ):
        self.backend = backend
        self.n = n
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.seed = seed
        self.dedup = dedup
        self.progress = progress

    def settings(self) -> dict:
        """The settings that must match for a resume to be valid."""
        return {
            "n": int(self.n),
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "max_new_tokens": int(self.max_new_tokens),
            "batch_size": int(self.batch_size),
            "seed": int(self.seed),
            "dedup": bool(self.dedup),
            "backend": getattr(self.backend, "name", type(self.backend).__name__),
        }

    def _check_settings(self, out_dir: Path) -> None:
        path = out_dir / "_settings.json"
        mine = self.settings()
        # A damaged settings file is moved aside (named in a warning) and written again: in a
        # run folder the run's config.json check has already matched these settings.
        theirs = read_json(path, what="candidate settings")
        if theirs is not None:
            diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
            if diff:
                raise RunFolderError(
                    f"{out_dir} holds candidates made with other settings {diff} (old, new); "
                    "use a new folder or the old settings to resume"
                )
        else:
            atomic_write_text(path, json.dumps(mine, indent=1))

    def _clean(self, texts: list[str]) -> tuple[list[str], int, int]:
        if not self.dedup:
            return list(texts), 0, 0
        seen, keep, n_empty = set(), [], 0
        for t in texts:
            t = t.strip()
            if not t:
                n_empty += 1
                continue
            if t in seen:
                continue
            seen.add(t)
            keep.append(t)
        return keep, n_empty, len(texts) - n_empty - len(keep)

    def _chunk_outputs(self, todo: list[list[dict]], should_stop: Callable[[], bool] | None):
        """``(chunk, seed, texts per prompt, seconds)`` for each chunk of ``todo``, in turn.

        Yields ``(None, None, None, None)`` (and stops) when ``should_stop()`` is true before a
        chunk. Other engines (:mod:`ttp_diag.gen.ray_engine`) override this, and only this:
        files, checksums, progress and resume stay those of :meth:`run`.
        """
        for chunk in todo:
            if should_stop is not None and should_stop():
                yield None, None, None, None
                return
            seed = _chunk_seed(self.seed, [r["query_id"] for r in chunk])
            tb = time.perf_counter()
            outs = self.backend.generate(
                [r["prompt"] for r in chunk],
                n=self.n,
                temperature=self.temperature,
                top_p=self.top_p,
                max_new_tokens=self.max_new_tokens,
                seed=seed,
            )
            yield chunk, seed, outs, time.perf_counter() - tb

    def run(
        self,
        examples: pd.DataFrame,
        out_dir: str | os.PathLike,
        callback: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        keep: set[str] | None = None,
    ) -> pd.DataFrame:
        """Generate (or resume) candidates for ``examples`` into ``out_dir``.

        Parameters
        ----------
        examples : DataFrame
            Columns ``query_id`` (unique), ``user_id``, ``split``, ``prompt``. Row order
            fixes the chunks, so resume with the same order.
        out_dir : path
            One JSON file per query is written here.
        callback : callable, optional
            Called with each query id right after its file is written (progress hooks;
            tests raise from it to simulate a crash).
        should_stop : callable, optional
            Checked before each chunk; when it returns True generation stops cleanly and
            the queries finished so far are returned (``stats_["complete"]`` is False).
        keep : set of str, optional
            Write (and return) only these query ids (a shard); chunks are still formed
            over all of ``examples``.

        Returns
        -------
        DataFrame
            One row per candidate: ``user_id, query_id, cand_id, split, text``.
        """
        need = [c for c in ("query_id", "user_id", "split", "prompt") if c not in examples.columns]
        if need:
            raise DataError(
                f"examples lack column(s) {need}; build prompts with ttp_diag.gen.pipeline"
            )
        dup = examples["query_id"].astype(str).duplicated()
        if dup.any():
            raise DataError(
                f"query_id {examples.loc[dup, 'query_id'].iloc[0]!r} occurs twice; "
                "query ids must be unique"
            )
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self._check_settings(out_dir)

        recs = (
            examples[["query_id", "user_id", "split", "prompt"]]
            .astype({"query_id": str})
            .to_dict("records")
        )
        if keep is not None:
            keep = {str(q) for q in keep}
        mine = [r for r in recs if keep is None or r["query_id"] in keep]
        done: set[str] = set()
        self.n_quarantined_ = 0
        for r in mine:
            f = out_dir / _safe_name(r["query_id"])
            if f.is_file():
                stored, why = _read_entry(f)
                if why is not None:
                    _quarantine(f, why)
                    self.n_quarantined_ += 1
                    continue
                if stored.get("prompt_sha") != _sha(r["prompt"]):
                    raise RunFolderError(
                        f"query {r['query_id']!r}: the stored candidates in {f} were made from a "
                        "different prompt; use a new folder (or delete that file) to regenerate"
                    )
                done.add(r["query_id"])
        chunks = [recs[i : i + self.batch_size] for i in range(0, len(recs), self.batch_size)]
        wanted = {r["query_id"] for r in mine}
        todo = [c for c in chunks if any(r["query_id"] in wanted - done for r in c)]
        n_new_q, n_new_c, t0 = 0, 0, time.perf_counter()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(mine), initial=len(done), desc="candidates", unit="query")
        stopped = False
        try:
            for chunk, seed, outs, dt in self._chunk_outputs(todo, should_stop):
                if chunk is None:  # should_stop() said so
                    stopped = True
                    break
                if len(outs) != len(chunk):
                    raise RuntimeError(
                        f"backend returned {len(outs)} lists for {len(chunk)} prompts"
                    )
                for r, texts in zip(chunk, outs, strict=True):
                    if r["query_id"] in done or r["query_id"] not in wanted:
                        # finished before the interruption (identical by construction), or
                        # another shard's query generated only to keep this chunk's seed
                        continue
                    kept, n_empty, n_dup = self._clean(texts)
                    rec = {
                        "query_id": r["query_id"],
                        "user_id": str(r["user_id"]),
                        "split": r["split"],
                        "texts": kept,
                        "n_texts": len(kept),
                        "texts_sha": _texts_sha(kept),
                        "n_requested": int(self.n),
                        "n_generated": len(texts),
                        "n_empty": n_empty,
                        "n_duplicates": n_dup,
                        "chunk_seed": seed,
                        "prompt_sha": _sha(r["prompt"]),
                        "seconds": dt / len(chunk),
                    }
                    atomic_write_text(
                        out_dir / _safe_name(r["query_id"]), json.dumps(rec, ensure_ascii=False)
                    )
                    done.add(r["query_id"])
                    n_new_q += 1
                    n_new_c += len(texts)
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        callback(r["query_id"])
                elapsed = time.perf_counter() - t0
                logger.info(
                    "candidates: %d/%d queries, %.1f candidates/s (%.0f ms/candidate)",
                    len(done),
                    len(mine),
                    n_new_c / max(elapsed, 1e-9),
                    1000 * elapsed / max(n_new_c, 1),
                )
                if bar is not None:
                    bar.set_postfix(cand_per_s=f"{n_new_c / max(elapsed, 1e-9):.1f}")
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        self.stats_ = {
            "queries": len(mine),
            "queries_generated": n_new_q,
            "queries_reused": len(mine) - n_new_q,
            "entries_quarantined": self.n_quarantined_,
            "samples_generated": n_new_c,
            "seconds": elapsed,
            "ms_per_sample": 1000 * elapsed / n_new_c if n_new_c else None,
            "complete": not stopped,
        }
        mine_ex = examples if keep is None else examples[
            examples["query_id"].astype(str).isin(keep)
        ]
        return load_candidates(out_dir, mine_ex, allow_missing=stopped)


def load_candidates(
    out_dir: str | os.PathLike, examples: pd.DataFrame, *, allow_missing: bool = False
) -> pd.DataFrame:
    """Assemble the per-query files of ``out_dir`` into one table, in example order.

    Parameters
    ----------
    out_dir : path
    examples : DataFrame with ``query_id``
    allow_missing : bool
        Return the queries that have files and skip the rest (a partial run).

    Raises
    ------
    FileNotFoundError
        If a query of ``examples`` has no file yet (the run is unfinished: resume it) and
        ``allow_missing`` is false.
    """
    out_dir = Path(out_dir)
    rows, missing = [], []
    meta = []
    for qid in examples["query_id"].astype(str):
        f = out_dir / _safe_name(qid)
        if not f.is_file():
            missing.append(qid)
            continue
        rec, why = _read_entry(f)
        if why is not None:
            raise CorruptFileError(
                f"candidate file {f} {why}; run candidate generation again (it moves the "
                "file aside and regenerates that query)"
            )
        meta.append({k: rec[k] for k in ("query_id", "n_generated", "n_empty", "n_duplicates")})
        for j, t in enumerate(rec["texts"]):
            rows.append((rec["user_id"], qid, j, rec["split"], t))
    if missing and not allow_missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(examples)} queries have no candidates in {out_dir} "
            f"(first: {missing[0]!r}); run candidate generation again to resume"
        )
    df = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    df["cand_id"] = df["cand_id"].astype("int64")
    m = pd.DataFrame(meta)
    df.attrs["n_generated"] = int(m["n_generated"].sum()) if len(m) else 0
    df.attrs["n_empty"] = int(m["n_empty"].sum()) if len(m) else 0
    df.attrs["n_duplicates"] = int(m["n_duplicates"].sum()) if len(m) else 0
    return df


def generate_candidates(
    examples: pd.DataFrame,
    backend: GenerationBackend,
    out_dir: str | os.PathLike,
    **kwargs: Any,
) -> pd.DataFrame:
    """Functional shortcut: ``CandidateGenerator(backend, **kwargs).run(examples, out_dir)``.

    Examples
    --------
    >>> import tempfile
    >>> from ttp_diag.gen.backends import tiny_random_backend
    >>> examples = pd.DataFrame({"query_id": ["q0"], "user_id": ["u0"], "split": ["val"],
    ...                          "prompt": ["### Headline:"]})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     cands = generate_candidates(examples, tiny_random_backend(), d, n=4,
    ...                                 max_new_tokens=6, progress=False)
    >>> set(cands["query_id"])
    {'q0'}
    """
    callback = kwargs.pop("callback", None)
    return CandidateGenerator(backend, **kwargs).run(examples, out_dir, callback=callback)
