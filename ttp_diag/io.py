"""Reading and writing files (tables, atomic writes, folder swaps): the package's one io module.

Reading (:func:`read_table`, :func:`read_json`) happens at the boundary and fails with *one*
error that names the file and the fix: a missing file, a 0-byte file, an empty directory
named ``x.parquet``, a ``;``-separated or Latin-1 CSV, Parquet bytes named ``.csv`` (or CSV
named ``.parquet``), a duplicated column name, a truncated or corrupted Parquet file. Errors
are :class:`~ttp_diag.exceptions.InputFileError` (wrong, missing or unreadable file) or its
subclass :class:`~ttp_diag.exceptions.CorruptFileError` (damaged bytes).

Parquet files are written with page checksums (CRC32 of every data page,
``write_page_checksum=True``) and read with their verification on
(``page_checksum_verification=True``): a flipped byte inside a page is an error, not a
silently different score. Files written by other tools without checksums still read
(there is nothing to verify); only their footer and page headers are checked then.

Writing is atomic: every ``atomic_write*`` function writes a temporary file created with
:func:`tempfile.mkstemp` *in the target's folder* (an unpredictable name that never follows a
planted symlink, on the same file system so the rename is atomic), flushes and fsyncs it,
renames it over the target, then fsyncs the folder. A crash leaves the old file or the new
one, never a half-written one; on any error the temporary file is removed. :func:`atomic_dir`
does the same for a whole folder (a model save): build the new folder beside the target and
swap it in with one rename (an atomic exchange on Linux), so concurrent savers and readers
never see a half-written or missing folder.

Examples
--------
>>> import tempfile, pandas as pd
>>> from ttp_diag.io import read_table, write_table
>>> d = tempfile.mkdtemp()
>>> t = pd.DataFrame({"user_id": ["u"], "query_id": ["q"], "cand_id": [0], "reward": [0.5]})
>>> _ = write_table(t, f"{d}/scores.parquet")
>>> read_table(f"{d}/scores.parquet").equals(t)
True
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import io as _io
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ttp_diag.exceptions import CorruptFileError, InputFileError

__all__ = [
    "read_table",
    "write_table",
    "read_json",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_parquet",
    "atomic_write_csv",
    "atomic_dir",
    "remove_paths",
    "remove_temp_files",
    "PARQUET_WRITE_OPTIONS",
]

# Every Parquet file the package writes carries page checksums.
PARQUET_WRITE_OPTIONS: dict[str, Any] = {"write_page_checksum": True}
_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_FILE_MODE = 0o644  # mkstemp creates 0600; results are meant to be shared


# -- reading -------------------------------------------------------------------------------
def read_table(
    path: str | os.PathLike,
    *,
    sep: str = ",",
    encoding: str = "utf-8",
    what: str = "score table",
    columns: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Read a table from Parquet (``.parquet``/``.pq``, a file or a dataset folder), CSV or
    JSON lines (``.jsonl``, ``.jsonl.gz``, ``.ndjson``).

    The format is checked against the file's bytes, not only its name, and Parquet page
    checksums are verified.

    Parameters
    ----------
    path : path
        The file.
    sep : str
        CSV delimiter (default ``,``).
    encoding : str
        CSV text encoding (default UTF-8; a byte-order mark is accepted).
    what : str
        What the file is, for error messages (``"score table"``).
    columns : dict, optional
        A column mapping (``user``, ``query``, ``candidate``, ``reward``, ``scores={name:
        column}``, ...; see :func:`ttp_diag.mapping.map_columns`): the file is turned into the
        long score table, list columns exploded into one row per candidate.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputFileError
        Missing, empty, wrongly named or unparseable file; duplicated column names; a CSV
        that is not ``sep``-separated or not in ``encoding``. The message names the file
        and the fix.
    CorruptFileError
        A Parquet file that is truncated or fails its page checksums.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("user_id;query_id;cand_id;reward\\nu;q;0;0.5\\n")
    >>> read_table(p)
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.InputFileError: score table '...t.csv' is ';'-separated, ...
    >>> read_table(p, sep=";")["reward"].tolist()
    [0.5]
    """
    df = _read_table(Path(path), sep=sep, encoding=encoding, what=what)
    if columns:
        from .mapping import map_columns

        return map_columns(df, **dict(columns))
    return df


_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


def _read_table(path: Path, *, sep: str, encoding: str, what: str) -> pd.DataFrame:
    """The reading half of :func:`read_table` (by the file's bytes; no mapping)."""
    name = f"{what} {str(path)!r}"
    if not path.exists():
        hint = ""
        if not path.is_absolute():
            hint = f" (relative to the current folder {os.getcwd()!r})"
        raise InputFileError(f"{name} does not exist{hint}; check the path.")
    suffix = path.suffix.lower()
    if path.is_dir():
        if suffix not in _PARQUET_SUFFIXES and suffix != "":
            raise InputFileError(f"{name} is a folder; give the .parquet or .csv file inside it.")
        parts = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
        if not parts:
            raise InputFileError(
                f"{name} is an empty folder, not a Parquet file; remove it and write the table "
                "again (ttp_diag.io.write_table), or give the path of the real file."
            )
        return _read_parquet(path, name)
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode) or (suffix == "" and str(path).startswith(("/dev/", "/proc/"))
                               and stat.S_ISREG(mode)):
        return _read_stream(path, name, sep=sep, encoding=encoding, what=what)
    if not stat.S_ISREG(mode):
        kind = ("a terminal" if stat.S_ISCHR(mode) and path.exists() and _is_tty(path) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise InputFileError(
            f"{name} is {kind}, not a file; give the path of a .parquet or .csv file, or pipe "
            f"the table in (e.g. `cat t.csv | ttp-diag analyze /dev/stdin`).")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(
            f"{name} is empty (0 bytes): the program that wrote it failed or was killed; "
            "write it again."
        )
    with open(path, "rb") as fh:
        head = fh.read(4096)
    is_parquet = head[:4] == _PARQUET_MAGIC
    if suffix in _PARQUET_SUFFIXES:
        if not is_parquet:
            kind = "CSV text" if _looks_like_text(head) else "not Parquet"
            raise InputFileError(
                f"{name} is named {suffix} but its bytes are {kind} (a Parquet file starts with "
                f"'PAR1', this one with {head[:8]!r}); rename it to .csv if it is CSV, or write "
                "it again with ttp_diag.io.write_table."
            )
        return _read_parquet(path, name)
    if path.name.lower().endswith(_JSONL_SUFFIXES):
        try:
            return pd.read_json(path, lines=True, encoding=encoding)
        except ValueError as exc:
            raise InputFileError(f"{name} is not JSON lines (one JSON object per line): "
                                 f"{' '.join(str(exc).split())}; fix the file or convert it."
                                 ) from exc
    if suffix == ".csv":
        if is_parquet:
            raise InputFileError(
                f"{name} is named .csv but holds Parquet bytes; rename it to "
                f"{path.with_suffix('.parquet').name!r}."
            )
        return _read_csv(path, name, sep=sep, encoding=encoding)
    raise InputFileError(
        f"cannot read {name}: unknown extension {suffix or '(none)'!r}; "
        "use a .parquet or .csv file (or JSON lines: .jsonl)."
    )


def _is_tty(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _read_stream(path: Path, name: str, *, sep: str, encoding: str, what: str) -> pd.DataFrame:
    """A table piped in (``/dev/stdin``, a named pipe): read it whole, tell Parquet from CSV
    by its first bytes, and parse it from a temporary file."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        raise InputFileError(
            f"{name} is a pipe and nothing arrived on it; pipe a .parquet or .csv table in "
            f"(e.g. `cat t.csv | ttp-diag analyze /dev/stdin`) or give the file's path.")
    suffix = ".parquet" if data[:4] == _PARQUET_MAGIC else ".csv"
    fd, tmp = tempfile.mkstemp(prefix=".ttp_diag_stdin.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return read_table(tmp, sep=sep, encoding=encoding, what=f"{what} from {str(path)!r}")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a character cut by the 4 KiB window
    return True


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_file():
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            if fh.read(4) != _PARQUET_MAGIC:
                raise CorruptFileError(
                    f"{name} is truncated (no Parquet footer at its end): the write was "
                    "interrupted; write it again (`ttp-diag run` recomputes it on resume)."
                )
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        return table.to_pandas()
    except (pa.ArrowException, OSError) as exc:
        msg = " ".join(str(exc).split())
        raise CorruptFileError(
            f"{name} is damaged ({msg[:200]}); write it again or restore a copy "
            "(`ttp-diag run` recomputes run-folder files on resume)."
        ) from exc


def _read_csv(path: Path, name: str, *, sep: str, encoding: str) -> pd.DataFrame:
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise InputFileError(
            f"{name} is a binary file, not CSV text; give a .csv or .parquet table."
        )
    try:
        utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        text = raw.decode("utf-8-sig" if utf8 else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputFileError(
            f"{name} is not {encoding} text (byte {raw[exc.start]:#04x} on line {line}, typical "
            "of Latin-1/Windows-1252); re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), "
            "or in Python pass read_table(path, encoding='latin-1')."
        ) from exc
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise InputFileError(f"{name} holds no data (only blank lines); write it again.")
    header = next(csv.reader([next(line for line in lines if line.strip())], delimiter=sep))
    if len(header) == 1:
        for other in (";", "\t", "|"):
            if other != sep and other in header[0]:
                shown = {"\t": "tab"}.get(other, repr(other))
                raise InputFileError(
                    f"{name} is {shown}-separated, not {sep!r}-separated (header "
                    f"{header[0][:80]!r}); re-save it comma-separated, or in Python pass "
                    f"read_table(path, sep={other!r})."
                )
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise InputFileError(
            f"{name} has duplicated column name(s) {dup}; rename them so every column is unique."
        )
    try:
        df = pd.read_csv(_io.StringIO(text), sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise InputFileError(
            f"{name} is not valid CSV ({msg[:200]}); fix or re-export it."
        ) from exc
    if len(df) == 0:
        raise InputFileError(f"{name} has a header but no rows; write it again.")
    return df


def read_json(path: str | os.PathLike, *, what: str = "JSON file") -> Any:
    """Read a JSON file; a missing, empty or truncated one is an error naming it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "config.json"
    >>> _ = p.write_text('{"seed": 7, "n"')
    >>> read_json(p, what="run config")
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.CorruptFileError: run config '...config.json' is not valid JSON ...
    """
    path = Path(path)
    name = f"{what} {str(path)!r}"
    if not path.is_file():
        raise InputFileError(f"{name} does not exist; check the path.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{name} is not UTF-8 text (damaged?); write it again.") from exc
    if not text.strip():
        raise CorruptFileError(f"{name} is empty: its write was interrupted; write it again.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptFileError(
            f"{name} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}; "
            "truncated?); write it again or remove it to have it recomputed."
        ) from exc


# -- atomic writes -------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; some file systems refuse fsync on a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file beside ``path``; on success fsync it and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise InputFileError(f"cannot write {str(path)!r}: it is a folder; choose a file name.")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # whoever wrote it, flush it to the disk
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically (fsynced).

    A crash leaves either the old file or none, never a half-written one; on an error the
    temporary file is removed and the error propagates.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(p, lambda tmp: pathlib.Path(tmp).write_text("hi")).read_text()
    'hi'
    """
    path = Path(path)
    with _atomic_target(path) as tmp:
        write(str(tmp))
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    with _atomic_target(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON atomically; values JSON cannot hold are written with ``str``."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=str) + "\n")


def atomic_write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame to Parquet atomically, with page checksums, without its index.

    ``df.attrs`` are not stored (pandas would put them in the file as JSON; run metadata
    belongs elsewhere).
    """
    df = df.copy(deep=False)
    df.attrs = {}
    return atomic_write(path, lambda p: df.to_parquet(p, index=False, **PARQUET_WRITE_OPTIONS))


def atomic_write_csv(df: pd.DataFrame, path: str | os.PathLike, **to_csv: Any) -> Path:
    """Write a DataFrame to CSV atomically (``index=False`` unless given)."""
    to_csv.setdefault("index", False)
    return atomic_write_text(path, df.to_csv(**to_csv))


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a score table to Parquet (with page checksums) or CSV, by extension, atomically."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return atomic_write_csv(table, path)
    return atomic_write_parquet(table, path)


# -- folders -------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # file system or kernel without the exchange
    if err == errno.ENOENT:
        raise FileNotFoundError(err, os.strerror(err), str(b))
    raise OSError(err, os.strerror(err), str(b))


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def swap_in_dir(new: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Make the finished folder ``new`` the folder at ``target`` (fsynced, by renames).

    The previous folder, if any, is deleted; concurrent callers never fail and ``target``
    always holds one complete folder. :func:`atomic_dir` is the context-manager form.
    """
    new, target = Path(new), Path(target)
    _fsync_tree(new)
    _swap_in(new, target)
    _fsync_dir(target.parent)
    return target


def _swap_in(new: Path, target: Path) -> None:
    """Make ``new`` the folder at ``target``; the previous one (if any) is deleted."""
    for _ in range(1000):
        try:
            os.rename(new, target)  # no target yet (or an empty one): a plain rename
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                raise
        # The target exists: exchange atomically where the kernel can, so that a reader
        # never finds the folder missing; else move the old one aside first.
        try:
            if _exchange(new, target):
                shutil.rmtree(new, ignore_errors=True)  # holds the old folder now
                return
        except FileNotFoundError:
            continue  # another writer moved the target away in between: retry
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(target, trash)
        except FileNotFoundError:
            continue
        shutil.rmtree(trash, ignore_errors=True)
    raise OSError(f"could not swap {str(new)!r} into {str(target)!r}: too many concurrent writers")


def new_temp_dir(path: str | os.PathLike) -> Path:
    """A new empty folder beside ``path`` (same file system, so a rename is atomic), named
    ``.<name>.<random>.tmp`` so that :func:`remove_temp_files` finds it after a crash."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name and swap it in at ``path`` on success.

    Yields the temporary folder (:func:`new_temp_dir`); write everything into it. On normal
    exit its files are fsynced and it replaces ``path`` in one rename (an atomic exchange on
    Linux), so concurrent savers never fail and never interleave files, and a reader finds
    the old folder or the new one, complete. With ``replace=False`` a folder already at
    ``path`` (e.g. one another process finished first) is kept and the new one discarded.
    On an error the temporary folder is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> with atomic_dir(target) as tmp:
    ...     _ = (tmp / "config.json").write_text("{}")
    >>> sorted(p.name for p in target.iterdir())
    ['config.json']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise InputFileError(
            f"cannot save into {str(target)!r}: it is a file, not a folder; choose another path."
        )
    tmp = new_temp_dir(target)
    try:
        yield tmp
        _fsync_tree(tmp)
        os.chmod(tmp, 0o755)
        if replace:
            _swap_in(tmp, target)
        else:
            try:
                os.rename(tmp, target)  # no folder there yet (or an empty one)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # keep the one already there
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_paths(paths) -> list[Path]:
    """Remove each of ``paths`` (a file, a link or a whole folder; outermost first, so a path
    inside a folder removed just before is skipped) and return those removed. The one removal
    loop behind :func:`remove_temp_files` and the run folder's stale-temporary cleanup."""
    removed = []
    for p in sorted({Path(q) for q in paths}, key=lambda q: len(q.parts)):
        if not os.path.lexists(p):
            continue  # inside a folder removed just before
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            continue
        removed.append(p)
    return removed


def remove_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove what a killed atomic write left behind in ``folder`` (recursively).

    A SIGKILL between ``mkstemp`` and the rename orphans the temporary file (or folder): a
    ``.<name>.<random>.tmp`` entry. Call this when starting on a folder that no other process
    is writing (e.g. after taking the run folder's lock). Returns the removed paths.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / ".scores.parquet.k2j4x9.tmp").write_bytes(b"half")
    >>> _ = (d / "scores.parquet").write_bytes(b"PAR1")
    >>> [p.name for p in remove_temp_files(d)], sorted(p.name for p in d.iterdir())
    (['.scores.parquet.k2j4x9.tmp'], ['scores.parquet'])
    """
    removed = remove_paths(sorted(Path(folder).rglob(".*.tmp")))
    for p in sorted(Path(folder).rglob(".*.old-*")):  # an interrupted non-exchange swap
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
