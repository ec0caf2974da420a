"""Run-folder safety: one process per folder, and damaged bookkeeping files named and repaired.

* :class:`RunLock` takes ``<run>/.lock`` exclusively (``O_CREAT | O_EXCL``) with the owner's
  pid and host; it is released on exit (also at interpreter exit). A lock whose process no
  longer exists on this host is stale and taken over, with a warning.
* :func:`read_json` reads a bookkeeping JSON file; a truncated or garbled one is named in a
  warning, moved aside to ``<name>.bad-<time>`` and reported as absent, so the caller
  recomputes it (a run summary) or recovers it from elsewhere (``config.json`` from the
  summary's copy).
* :func:`check_inputs` records a checksum of every input file (users file, LaMP outputs, model
  files, reward-model backbone, the config file) in ``inputs.json``; a changed input is
  refused naming the stage it invalidates, or recomputed from that stage with ``--refresh``.
* :func:`remove_stale_temporaries` removes what a killed process left half-written.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["RunFolderError", "RunLock", "read_json", "move_aside", "check_inputs", "fingerprint",
           "remove_stale_temporaries"]


from ttp_diag.exceptions import RunFolderError  # noqa: E402  (one class for the package)


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.bad-<unix time>`` next to it and return the new path."""
    bad = path.with_name(f"{path.name}.bad-{int(time.time() * 1000)}")
    os.replace(path, bad)
    return bad


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any | None:
    """The parsed JSON at ``path``; ``None`` when absent or damaged (moved aside, warned).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run_summary.json"
    >>> _ = p.write_text('{"stages": {"da')
    >>> read_json(p) is None, p.exists()
    (True, False)
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        bad = move_aside(path)
        logger.warning("%s %s is damaged (%s); moved aside to %s and rebuilt", what, path,
                       exc.__class__.__name__, bad.name)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive lock on a run folder, held by one process at a time.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with RunLock(d):
    ...     try:
    ...         RunLock(d).acquire()
    ...     except RunFolderError as e:
    ...         print("busy")
    busy
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / ".lock"
        self._held = False

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text())
                    pid, host = int(owner["pid"]), str(owner["host"])
                except (OSError, ValueError, KeyError, TypeError):
                    owner, pid, host = None, None, None
                if owner is not None and pid == me["pid"] and host == me["host"]:
                    raise RunFolderError(
                        f"{self.path.parent} is already locked by this process"
                    ) from None
                if owner is not None and (host != me["host"] or _alive(pid)):
                    raise RunFolderError(
                        f"{self.path.parent} is in use by process {pid} on {host} (lock file "
                        f"{self.path}); wait for it to finish, or delete the lock file if that "
                        "process is gone"
                    ) from None
                # Stale (its process is gone) or unreadable (a crash while writing it).
                logger.warning("taking over stale lock %s (owner %s)", self.path, owner)
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self._held = True
            atexit.register(self.release)
            return self
        raise RunFolderError(f"could not take the lock {self.path}; another process races for it")

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            atexit.unregister(self.release)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- input provenance and stale temporaries -------------------------------------------------
#: What each stage writes into the run folder (moved aside when an input change invalidates it).
STAGE_OUTPUTS = {
    "data": ("examples.parquet", "items.parquet", "data_summary.json"),
    "prompts": ("prompts.parquet", "personas.json"),
    "candidates": ("candidates", "candidates.parquet"),
    "labels": ("labeled.parquet",),
    "rms": ("rm",),
    "scores": ("scores.parquet",),
}
INPUTS_FILE = "inputs.json"


def _is_temporary(name: str) -> bool:
    """Names of atomic-write temporaries: ``.x.<random>.tmp``, ``x.<random>.tmp``,
    ``.x.tmp-<random>`` (folders) and ``.x.old-<random>`` (an interrupted folder swap)."""
    return name.endswith(".tmp") or (name.startswith(".") and (".tmp-" in name
                                                               or ".old-" in name))


def remove_stale_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed process left in a run folder; return them.

    Atomic writes make a temporary beside their target and rename it into place, so a kill
    in between orphans it: ``.<name>.<random>.tmp`` files (:mod:`ttp_diag.io`),
    ``.<name>.tmp-<random>`` folders (reward models, sweeps) and ``<name>.<random>.tmp``
    files (safetensors, score shards). Only the folder itself and the stage folders
    (``candidates/``, ``rm/``) are searched, never a run folder nested inside (a shard's,
    which another process may be writing). Call it only while holding the folder's lock.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "rm").mkdir()
    >>> (d / "rm" / ".global.tmp-k2j4").mkdir()
    >>> _ = (d / "rm" / "a.safetensors.x1.tmp").write_text("")
    >>> _ = (d / "scores.parquet").write_text("")
    >>> sorted(p.name for p in remove_stale_temporaries(d))
    ['.global.tmp-k2j4', 'a.safetensors.x1.tmp']
    >>> sorted(p.name for p in d.rglob("*"))
    ['rm', 'scores.parquet']
    """
    from ttp_diag.io import remove_paths

    root = Path(run_dir)
    found = [p for p in root.iterdir() if _is_temporary(p.name)] if root.is_dir() else []
    for sub in ("candidates", "rm"):
        if (root / sub).is_dir():
            found += [p for p in (root / sub).rglob("*") if _is_temporary(p.name)]
    removed = remove_paths(found)
    if removed:
        logger.warning("removed %d stale temporary file(s) of an interrupted run: %s",
                       len(removed), ", ".join(str(p.relative_to(root)) for p in removed[:5]))
    return removed


def _sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: str | os.PathLike, old: dict | None = None) -> dict:
    """``{"path", "sha256", "size", "mtime_ns", "files"}`` of a file or a folder (every file
    in it, hidden temporaries left out). The checksum is reused from ``old`` when the size
    and modification time of every file are unchanged, so a resume does not re-read models.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "users.jsonl"; _ = p.write_text("a")
    >>> fingerprint(p)["sha256"][:12]
    'ca978112ca1b'
    """
    p = Path(path).resolve()
    files = [p] if p.is_file() else sorted(
        f for f in p.rglob("*") if f.is_file() and not any(
            part.startswith(".") for part in f.relative_to(p).parts))
    stats = [(str(f.relative_to(p)) if f != p else "", f.stat().st_size, f.stat().st_mtime_ns)
             for f in files]
    size, mtime = sum(s[1] for s in stats), max((s[2] for s in stats), default=0)
    stamp = [list(s) for s in stats]
    if old and old.get("path") == str(p) and old.get("stat") == stamp and old.get("sha256"):
        sha = old["sha256"]
    elif p.is_file():
        sha = _sha256_file(p)
    else:
        import hashlib

        h = hashlib.sha256()
        for f, (rel, *_rest) in zip(files, stats, strict=True):
            h.update(f"{rel}\0{_sha256_file(f)}\n".encode())
        sha = h.hexdigest()
    return {"path": str(p), "sha256": sha, "size": size, "mtime_ns": mtime,
            "files": len(files), "stat": stamp}


def check_inputs(run_dir: Path, inputs: dict[str, tuple[str, str]], started, *,
                 refresh: bool = False) -> list[str]:
    """Compare the checksums of a run's input files with those recorded in ``inputs.json``.

    ``inputs``: ``{setting: (path, first stage it feeds)}``; ``started(stage)`` says whether a
    stage has results. A changed input whose stage has results is refused
    (:class:`RunFolderError` naming the file, the setting and the stage), or with ``refresh``
    the results of that stage and every later one are moved aside to ``stale-<time>/`` and
    recomputed. The new checksums are recorded. Returns the stages invalidated.
    """
    from ttp_diag.gen.run_config import STAGES
    from ttp_diag.io import atomic_write_text

    path = run_dir / INPUTS_FILE
    old = read_json(path, what="input checksums") or {}
    old = old if isinstance(old, dict) else {}
    new, changed = {}, []
    for key, (file, stage) in inputs.items():
        if not file or not Path(file).exists():
            continue
        prev = old.get(key) if isinstance(old.get(key), dict) else None
        new[key] = {**fingerprint(file, prev), "stage": stage}
        if prev and prev.get("path") == new[key]["path"] and prev.get("sha256") != new[key][
                "sha256"] and started(stage):
            changed.append((key, stage, prev, new[key]))
    invalid: list[str] = []
    if changed:
        first = min(changed, key=lambda c: STAGES.index(c[1]) if c[1] in STAGES else 99)
        stage = first[1]
        what = "; ".join(
            f"{k} {n['path']} (sha256 {p['sha256'][:12]} -> {n['sha256'][:12]}) feeds stage "
            f"'{s}'" for k, s, p, n in changed)
        later = list(STAGES[STAGES.index(stage):]) if stage in STAGES else [stage]
        if not refresh:
            raise RunFolderError(
                f"input changed since {run_dir} used it: {what}; the results of stage "
                f"'{stage}' and later ({', '.join(later)}) are stale. Run the same command "
                f"with --refresh to recompute from '{stage}' on (refresh=True in "
                f"run_pipeline), use a new run folder, or restore the old file.")
        stale = run_dir / f"stale-{int(time.time() * 1000)}"
        for st in later:
            for name in STAGE_OUTPUTS.get(st, ()):
                src = run_dir / name
                if src.exists():
                    stale.mkdir(exist_ok=True)
                    os.replace(src, stale / name)
        invalid = later
        logger.warning("input changed (%s): moved the results of %s to %s; recomputing",
                       what, ", ".join(later), stale)
    for key, val in old.items():  # inputs not used this time keep their record
        new.setdefault(key, val)
    atomic_write_text(path, json.dumps(new, indent=1))
    return invalid
