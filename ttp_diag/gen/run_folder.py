"""Run-folder safety: one process per folder, and damaged bookkeeping files named and repaired.

* :class:`RunLock` takes ``<run>/.lock`` exclusively (``O_CREAT | O_EXCL``) with the owner's
  pid and host; it is released on exit (also at interpreter exit). A lock whose process no
  longer exists on this host is stale and taken over, with a warning.
* :func:`read_json` reads a bookkeeping JSON file; a truncated or garbled one is named in a
  warning, moved aside to ``<name>.bad-<time>`` and reported as absent, so the caller
  recomputes it (a run summary) or recovers it from elsewhere (``config.json`` from the
  summary's copy).
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

__all__ = ["RunFolderError", "RunLock", "read_json", "move_aside"]


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
