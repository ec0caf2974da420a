"""Reading data files record by record: damaged files named, text fields checked, skips counted.

The loaders of :mod:`ttp_diag.gen.data` read through these helpers so that every failure names
the file and the line (or record) and says what to do:

* a ``.gz`` name on plain text, a truncated or damaged gzip stream, a binary or non-UTF-8 line,
  a missing, empty or folder path: one :class:`~ttp_diag.exceptions.InputFileError` or
  :class:`~ttp_diag.exceptions.CorruptFileError`;
* a text field holding a JSON object, array or boolean is refused by name (``str({"a": 1})``
  must never become a gold headline), numbers are accepted as text (ids, ratings);
* every skipped record is counted by reason in a :class:`LoadSummary`, its first few named;
  ``strict=True`` turns the first skip into a :class:`~ttp_diag.exceptions.DataError`.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ttp_diag.exceptions import CorruptFileError, DataError, InputFileError

__all__ = ["LoadSummary"]


@dataclass
class LoadSummary:
    """Counts of what a loader kept and skipped, with the reasons.

    Attributes
    ----------
    n_records : int
        Records (users / questions) read.
    n_users : int
        Users kept.
    n_items : int
        Items kept.
    skipped : collections.Counter
        Reason -> count.
    examples : list of str
        The first few skip messages, each naming the record.
    """

    n_records: int = 0
    n_users: int = 0
    n_items: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str, strict: bool = False, detail: str = "") -> None:
        """Count a skipped record under ``reason`` (raise :class:`DataError` if ``strict``).

        ``detail`` (the offending value) goes into the message, not into the reason's key, so
        that the counts group records by the kind of problem.
        """
        msg = f"{where}: {reason}{detail}"
        if strict:
            raise DataError(msg + " (pass strict=False to skip such records)")
        self.skipped[reason] += 1
        if len(self.examples) < 20:
            self.examples.append(msg)

    @property
    def n_skipped(self) -> int:
        return int(sum(self.skipped.values()))

    def format(self, max_examples: int = 5) -> str:
        """What was skipped and why: counts per reason, then the first few records by name.

        Examples
        --------
        >>> s = LoadSummary(n_records=3)
        >>> s.skip("bad JSON", "u.jsonl line 2")
        >>> print(s.format())
        3 records -> 0 users, 0 items; skipped 1 x bad JSON
          u.jsonl line 2: bad JSON
        """
        lines = [str(self)]
        lines += [f"  {m}" for m in self.examples[:max_examples]]
        rest = self.n_skipped - min(len(self.examples), max_examples)
        if rest > 0:
            lines.append(f"  ... and {rest} more skipped (strict=True makes any skip an error)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "n_records": self.n_records,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_skipped": self.n_skipped,
            "skipped": dict(self.skipped),
            "examples": list(self.examples),
        }

    def __str__(self) -> str:
        s = f"{self.n_records} records -> {self.n_users} users, {self.n_items} items"
        if self.skipped:
            s += "; skipped " + ", ".join(f"{v} x {k}" for k, v in sorted(self.skipped.items()))
        return s


class _NotText(Exception):
    """A field holds an object, list or boolean where text is expected."""

    def __init__(self, value: Any):
        self.value = value
        super().__init__(f"is a JSON {_json_type(value)}, not text")


def _json_type(x: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean"}.get(type(x), type(x).__name__)


def _short(x: Any, n: int = 40) -> str:
    r = json.dumps(x, default=str) if isinstance(x, (dict, list, bool)) else repr(x)
    return r if len(r) <= n else r[: n - 3] + "..."


def _text(x: Any) -> str | None:
    """A text field as a stripped string; numbers become text, None/NaN/blank None.

    Objects, arrays and booleans raise :class:`_NotText`: ``str({"a": 1})`` must never become a
    gold headline.
    """
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, (dict, list, tuple, bool)):
        raise _NotText(x)
    s = str(x).strip()
    return s or None


class _FieldError(Exception):
    """A named field of a record holds a non-text value (the record is skipped or refused)."""

    def __init__(self, name: str, exc: _NotText):
        self.detail = f" ({_short(exc.value)})"
        super().__init__(f"field {name!r} {exc}")


def _field(rec: dict, name: str) -> str | None:
    """``_text(rec[name])``; a non-text value raises :class:`_FieldError` naming the field."""
    try:
        return _text(rec.get(name))
    except _NotText as exc:
        raise _FieldError(name, exc) from None


def _open_binary(path: Path):
    """Open a data file for binary line reading, gunzipping by content (checked against name)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    is_gz = head[:2] == b"\x1f\x8b"
    if path.name.lower().endswith(".gz") and not is_gz:
        raise InputFileError(
            f"data file {str(path)!r} is named .gz but is not gzip-compressed (it starts with "
            f"{head[:8]!r}); rename it without .gz if it is plain JSON text, or gzip it."
        )
    return gzip.open(path, "rb") if is_gz else open(path, "rb")


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of a (gzipped) file; a damaged stream names the last good line."""
    lineno = 0
    with _open_binary(path) as fh:
        try:
            for lineno, raw in enumerate(fh, 1):  # noqa: B007 - lineno is used after the loop
                yield lineno, raw
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise CorruptFileError(
                f"data file {str(path)!r} is truncated or damaged after line {lineno} "
                f"({' '.join(str(exc).split())}); copy or download it again "
                "(nothing from it was used)."
            ) from exc


def _decode_line(raw: bytes) -> tuple[str | None, str | None, str]:
    """(text, problem, detail): a line as UTF-8 text, or why it is not text.

    A UTF-8 byte-order mark (Windows editors write one at the start of the file, also of
    each file concatenated into it) is dropped, and CRLF line ends are whitespace to JSON.

    Examples
    --------
    >>> _decode_line(b'\\xef\\xbb\\xbf{"a": 1}\\r\\n')
    ('{"a": 1}\\r\\n', None, '')
    """
    if b"\x00" in raw:
        return None, "binary data (NUL bytes), not JSON text", ""
    try:
        return raw.decode("utf-8-sig"), None, ""
    except UnicodeDecodeError as exc:
        return None, "not UTF-8 text (re-save the file as UTF-8)", (
            f" (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
        )


def _read_text(path: Path) -> str:
    """A whole (gzipped) data file as UTF-8 text; binary or non-UTF-8 content names the line."""
    raw = b"".join(r for _, r in _raw_lines(path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputFileError(
            f"data file {str(path)!r} line {line} is not UTF-8 text (byte {raw[exc.start]:#04x}); "
            "is it the right file? Re-save it as UTF-8 JSON."
        ) from exc


def _parse_dates(dates: pd.Series) -> pd.Series:
    """Parse dates (ISO 8601 first, then any format pandas knows) as UTC; NaT if unparseable."""
    parsed = pd.to_datetime(dates, errors="coerce", format="ISO8601", utc=True)
    retry = dates.notna() & parsed.isna()
    if retry.any():
        parsed[retry] = pd.to_datetime(dates[retry], errors="coerce", format="mixed", utc=True)
    return parsed


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputFileError(f"{what} {str(path)!r} does not exist; check the path (--data).")
    if not path.is_file():
        raise InputFileError(f"{what} {str(path)!r} is a folder; give the file itself.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{what} {str(path)!r} is empty (0 bytes); copy it again.")


def _read_json_records(path: Path) -> Any:
    _check_file(path, "data file")
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        # JSON Lines: one record per line.
        recs = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"data file {str(path)!r}: neither JSON ({first.msg} at line "
                        f"{first.lineno}) nor JSON Lines (line {lineno}: {exc.msg}); check the "
                        "file is complete"
                    ) from exc
        return recs
