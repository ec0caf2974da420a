"""Readers of the three input formats into one tidy items table.

LaMP task files (:func:`load_lamp`), LongLaMP exports (:func:`load_longlamp`) and the JSONL
user format of the shared HuffPost set (:func:`load_jsonl_users`,
:func:`load_huffpost_users`); the formats are described in :mod:`ttp_diag.gen.data`, which
re-exports every public name here. Malformed records are skipped with a reason (or raise with
``strict=True``); every skip is counted in the :class:`LoadSummary` attached to the result.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ttp_diag.exceptions import ConfigError, DataError, InputFileError
from ttp_diag.gen.records import (
    LoadSummary,
    _check_file,
    _decode_line,
    _field,
    _FieldError,
    _json_type,
    _parse_dates,
    _raw_lines,
    _read_json_records,
)
from ttp_diag.gen.tasks import ITEM_COLUMNS, TaskSpec, get_task

# Logged under the name these readers had before the split, so log filters keep working.
logger = logging.getLogger("ttp_diag.gen.data")

__all__ = [
    "HUFFPOST_PATH",
    "load_huffpost_users",
    "load_jsonl_users",
    "load_lamp",
    "load_longlamp",
]


def _find_huffpost() -> Path:
    """The shared HuffPost set: $TTP_DIAG_HUFFPOST, else ``shared/`` beside the checkout."""
    rel = Path("data/lamp4_reconstructed_huffpost/users.jsonl.gz")
    candidates = [Path(p) for p in [os.environ.get("TTP_DIAG_HUFFPOST")] if p]
    candidates += [parent / "shared" / rel for parent in Path(__file__).resolve().parents]
    candidates.append(Path("/work/shared") / rel)
    return next((p for p in candidates if p.is_file()), candidates[-1])


HUFFPOST_PATH = _find_huffpost()


def _items_frame(
    rows: list[dict],
    summary: LoadSummary,
    strict: bool,
    path: Path,
    declared: dict[str, tuple[str, int]] | None = None,
) -> pd.DataFrame:
    """The items table: bad dates refused, time-sorted per user, empty users counted.

    ``declared`` maps each accepted user to (where it was read, number of items it listed), so
    that a user left with no item is a counted skip, never a silent disappearance.
    """
    df = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    if len(df):
        date = _parse_dates(df["date"])
        bad = df["date"].notna() & date.isna()
        for r in df[bad].itertuples():
            # An unparseable date would be NaT and sort as the oldest item: refuse it by name.
            summary.skip(
                "unparseable date",
                f"user {r.user_id!r} item {r.item_id!r}",
                strict,
                f" {r.date!r} (use ISO 8601, e.g. 2020-01-31)",
            )
        df, date = df[~bad], date[~bad]
        # Time order within each user: dated items by date, ties and undated items by file
        # order (``order``), so the sort is total and reproducible.
        df = df.assign(_date=date)
        df = df.sort_values(["user_id", "_date", "order"], kind="mergesort", na_position="first")
        df = df.drop(columns="_date").reset_index(drop=True)
        df["position"] = df.groupby("user_id").cumcount()
    else:
        df["position"] = pd.Series(dtype="int64")
    kept = set(df["user_id"])
    for uid, (where, n_listed) in (declared or {}).items():
        if uid not in kept:
            why = (
                "user has no items (empty profile and no queries)"
                if n_listed == 0
                else f"user has none of its {n_listed} items left (each skipped, see above)"
            )
            summary.skip(why, f"{where} (user {uid!r})", strict)
    summary.n_users = int(df["user_id"].nunique()) if len(df) else 0
    summary.n_items = int(len(df))
    df.attrs["summary"] = summary
    if summary.n_skipped:
        logger.warning("%s: %s", path.name, summary.format())
    if not len(df):
        if summary.n_records == 0:
            raise InputFileError(
                f"data file {str(path)!r} holds no records; is it the right file?"
            )
        raise DataError(
            f"no usable record in data file {str(path)!r}; is it the right file and format? "
            + summary.format().replace("\n", ";")
        )
    return df


def _profile_item(
    task: TaskSpec, item: Any, uid: str, author, k: int, summary, strict
) -> dict | None:
    where = f"user {uid!r} profile item {k}"
    if not isinstance(item, dict):
        summary.skip("profile item is not an object", where, strict)
        return None
    try:
        iid = _field(item, "id") or f"{uid}_p{k}"
        where = f"user {uid!r} profile item {iid!r}"
        if task.body_template is not None:
            missing = [f for f in task.extra_fields if _field(item, f) is None]
            if missing:
                summary.skip(f"missing field {missing[0]!r}", where, strict)
                return None
            body = task.body_of(item)
        else:
            body = _field(item, task.body_field)
            if body is None:
                summary.skip(f"missing or empty field {task.body_field!r}", where, strict)
                return None
        out = _field(item, task.output_field)
        if out is None:
            summary.skip(f"missing or empty output field {task.output_field!r}", where, strict)
            return None
        date = _field(item, "date")
    except _FieldError as exc:
        summary.skip(str(exc), where, strict, exc.detail)
        return None
    return {
        "user_id": uid,
        "author": author,
        "item_id": iid,
        "date": date,
        "order": k,
        "source": "profile",
        "input": task.input_of(body),
        "body": body,
        "output": out,
    }


def _query_item(task: TaskSpec, q: Any, uid: str, author, k: int, order: int, summary, strict):
    qwhere = f"user {uid!r} query {k}"
    if not isinstance(q, dict):
        summary.skip("query is not an object", qwhere, strict)
        return None
    try:
        qid = _field(q, "id") or f"{uid}_q{k}"
        qwhere = f"user {uid!r} query {qid!r}"
        inp, out = _field(q, "input"), _field(q, "output")
        date = _field(q, "date")
    except _FieldError as exc:
        summary.skip(str(exc), qwhere, strict, exc.detail)
        return None
    if inp is None:
        summary.skip("missing or empty field 'input'", qwhere, strict)
        return None
    if out is None:
        summary.skip("missing or empty field 'output'", qwhere, strict)
        return None
    return {
        "user_id": uid,
        "author": author,
        "item_id": qid,
        "date": date,
        "order": order,
        "source": "query",
        "input": inp,
        "body": task.strip_prefix(inp),
        "output": out,
    }


def load_jsonl_users(
    path: str | os.PathLike,
    task: str | TaskSpec = "lamp4",
    *,
    strict: bool = False,
) -> pd.DataFrame:
    """Read the JSONL user format (one user per line with ``profile`` and ``queries``).

    Profile items and queries together are the user's items (queries carry their own
    ``input`` and ``output``); both are sorted by date.

    Parameters
    ----------
    path : path
        ``.jsonl`` or ``.jsonl.gz`` (gzip is recognised by content; a ``.gz`` name on plain
        text is an error).
    task : str or TaskSpec
        Field mapping of the profile items (default LaMP-4: ``text`` -> ``title``).
    strict : bool
        Raise :class:`DataError` on the first malformed record instead of skipping it.

    Returns
    -------
    pandas.DataFrame
        Items with columns ``user_id, author, item_id, date, order, source, input, body,
        output, position``; ``df.attrs["summary"]`` is the :class:`LoadSummary`.

    Raises
    ------
    InputFileError
        Missing, empty, non-text or wrongly named file.
    CorruptFileError
        A truncated or damaged gzip stream (names the last good line).
    DataError
        With ``strict=True``, the first skipped record; always, when nothing is usable.

    Notes
    -----
    Skipped (each counted with its reason, the first few named in the log and in
    ``summary.examples``): a line that is not UTF-8 text or not JSON, a record that is not
    an object, without ``user_id`` or with one already seen, without a ``profile`` list, a
    user left with no item, a profile item or query missing its text or output, a text field
    holding an object/array/boolean, an unparseable date.

    Examples
    --------
    >>> import json, os, tempfile
    >>> user = {"user_id": "u1", "author": "Ann", "queries": [],
    ...         "profile": [{"id": f"p{i}", "text": f"story {i}", "title": f"Title {i}",
    ...                      "date": f"2021-01-0{i + 1}"} for i in range(3)]}
    >>> path = os.path.join(tempfile.mkdtemp(), "users.jsonl")
    >>> with open(path, "w") as fh:
    ...     print(json.dumps(user), file=fh)
    >>> items = load_jsonl_users(path)
    >>> items.attrs["summary"].n_users, list(items["output"])
    (1, ['Title 0', 'Title 1', 'Title 2'])
    """
    task = get_task(task)
    path = Path(path)
    _check_file(path, "data file")
    summary = LoadSummary()
    rows: list[dict] = []
    declared: dict[str, tuple[str, int]] = {}
    for lineno, raw in _raw_lines(path):
        if not raw.strip():
            continue
        summary.n_records += 1
        where = f"{path.name} line {lineno}"
        line, problem, detail = _decode_line(raw)
        if problem:
            summary.skip(problem, where, strict, detail)
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            summary.skip("bad JSON", where, strict, f" ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(rec, dict):
            summary.skip(f"record is a JSON {_json_type(rec)}, not an object", where, strict)
            continue
        try:
            uid = _field(rec, "user_id")
            author = _field(rec, "author")
        except _FieldError as exc:
            summary.skip(str(exc), where, strict, exc.detail)
            continue
        if uid is None:
            summary.skip("missing field 'user_id'", where, strict)
            continue
        if uid in declared:
            summary.skip(
                f"duplicate user_id {uid!r}", f"{where} (first at {declared[uid][0]})", strict
            )
            continue
        prof, queries = rec.get("profile"), rec.get("queries", [])
        if queries is None:
            queries = []
        if not isinstance(prof, list):
            summary.skip("missing or non-list field 'profile'", f"{where} (user {uid!r})", strict)
            continue
        if not isinstance(queries, list):
            summary.skip("non-list field 'queries'", f"{where} (user {uid!r})", strict)
            continue
        declared[uid] = (where, len(prof) + len(queries))
        for k, item in enumerate(prof):
            row = _profile_item(task, item, uid, author, k, summary, strict)
            if row is not None:
                rows.append(row)
        for k, q in enumerate(queries):
            row = _query_item(task, q, uid, author, k, len(prof) + k, summary, strict)
            if row is not None:
                rows.append(row)
    return _items_frame(rows, summary, strict, path, declared)


def load_huffpost_users(
    path: str | os.PathLike = HUFFPOST_PATH, *, strict: bool = False
) -> pd.DataFrame:
    """The reconstructed LaMP-4-style HuffPost set (see ``shared/data/README.md``).

    Equivalent to ``load_jsonl_users(path, "lamp4")``.
    """
    return load_jsonl_users(path, "lamp4", strict=strict)


def _query_parts(rec: dict, inp: str | None, out: str | None, where: str,
                 summary: LoadSummary, strict: bool, *, no_output: str) -> list | None:
    """The record's profile list when its input, output and profile are usable; otherwise
    the named skip is recorded (an error with ``strict``) and None is returned."""
    if inp is None:
        summary.skip("missing or empty field 'input'", where, strict)
        return None
    if out is None:
        summary.skip(no_output, where, strict)
        return None
    prof = rec.get("profile")
    if not isinstance(prof, list):
        summary.skip("missing or non-list field 'profile'", where, strict)
        return None
    return prof


def load_lamp(
    questions: str | os.PathLike,
    outputs: str | os.PathLike | None = None,
    task: str | TaskSpec = "lamp4",
    *,
    strict: bool = False,
) -> pd.DataFrame:
    """Read a LaMP questions file (and its outputs file) into per-user items.

    Each question is one user; its profile items and the question itself (gold from the
    outputs file, or an ``output`` field of the question) are the user's items. Profile
    items without a ``date`` keep file order and come before the question.

    Parameters
    ----------
    questions : path
        ``*_questions.json``: a list of ``{"id", "input", "profile": [...]}``.
    outputs : path, optional
        ``*_outputs.json``: ``{"task": ..., "golds": [{"id", "output"}, ...]}``.
    task : str or TaskSpec
        ``"lamp4"`` (profile ``text``/``title``) or ``"lamp5"`` (``abstract``/``title``).
    strict : bool
        Raise on the first malformed record.

    Examples
    --------
    >>> import json, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> q, o = os.path.join(d, "dev_questions.json"), os.path.join(d, "dev_outputs.json")
    >>> with open(q, "w") as fh:
    ...     json.dump([{"id": "100", "input": "Generate a title for the following abstract "
    ...                 "of a paper: We study X.", "profile": [{"id": "p1",
    ...                 "abstract": "Old abstract", "title": "Old title"}]}], fh)
    >>> with open(o, "w") as fh:
    ...     json.dump({"task": "LaMP_5", "golds": [{"id": "100", "output": "X"}]}, fh)
    >>> items = load_lamp(q, o, "lamp5")
    >>> list(items["source"]), list(items["output"])
    (['profile', 'query'], ['Old title', 'X'])
    """
    task = get_task(task)
    qpath = Path(questions)
    recs = _read_json_records(qpath)
    if not isinstance(recs, list):
        raise DataError(
            f"{qpath.name}: expected a JSON list of questions, got {_json_type(recs)}"
        )
    golds: dict[str, Any] = {}
    if outputs is not None:
        opath = Path(outputs)
        od = _read_json_records(opath)
        glist = od.get("golds") if isinstance(od, dict) else od
        if not isinstance(glist, list):
            raise DataError(
                f"{opath.name}: expected {{'golds': [...]}} with a list of {{'id', 'output'}}"
            )
        for g in glist:
            if isinstance(g, dict) and isinstance(g.get("id"), (str, int)):
                golds[str(g["id"]).strip()] = g.get("output")
    summary = LoadSummary()
    rows: list[dict] = []
    for k, rec in enumerate(recs):
        summary.n_records += 1
        where = f"{qpath.name} record {k}"
        if not isinstance(rec, dict):
            summary.skip(f"record is a JSON {_json_type(rec)}, not an object", where, strict)
            continue
        try:
            qid = _field(rec, "id")
            if qid is None:
                summary.skip("missing field 'id'", where, strict)
                continue
            where = f"{qpath.name} question {qid!r}"
            inp = _field(rec, "input")
            out = _field({"output": golds.get(qid, rec.get("output"))}, "output")
            uid = _field(rec, "user_id") or qid
            date = _field(rec, "date")
        except _FieldError as exc:
            summary.skip(str(exc), where, strict, exc.detail)
            continue
        prof = _query_parts(rec, inp, out, where, summary, strict,
                            no_output="no gold output (not in the outputs file, or empty)")
        if prof is None:
            continue
        for j, item in enumerate(prof):
            row = _profile_item(task, item, uid, None, j, summary, strict)
            if row is not None:
                rows.append(row)
        rows.append(
            {
                "user_id": uid,
                "author": None,
                "item_id": qid,
                "date": date,
                "order": len(prof),
                "source": "query",
                "input": inp,
                "body": task.strip_prefix(inp),
                "output": out,
            }
        )
    return _items_frame(rows, summary, strict, qpath)


def load_longlamp(
    path: str | os.PathLike,
    task: str | TaskSpec,
    *,
    strict: bool = False,
) -> pd.DataFrame:
    """Read a LongLaMP task exported from the hub as JSON or JSON Lines.

    Each row is one user (``name``/``reviewerId``/``author``/``user_id`` names the user,
    else the row index) with ``input``, ``output`` and ``profile``. Profile fields:

    * abstract generation: ``title`` -> ``abstract``
    * product review writing: ``overall``, ``description``, ``summary`` -> ``reviewText``
    * topic writing: ``summary`` -> ``content``

    Rows of the same user are merged (their queries become extra items).

    Examples
    --------
    >>> import json, os, tempfile
    >>> prof = [{"overall": 5.0, "summary": "Great", "description": "A book",
    ...          "reviewText": "Loved it"}]
    >>> row = {"reviewerId": "r1", "input": "Generate the review text for ...",
    ...        "output": "Meh.", "profile": prof}
    >>> path = os.path.join(tempfile.mkdtemp(), "product_review_temporal_val.jsonl")
    >>> with open(path, "w") as fh:
    ...     print(json.dumps(row), file=fh)
    >>> items = load_longlamp(path, "longlamp_review")
    >>> list(items["source"]), list(items["output"])
    (['profile', 'query'], ['Loved it', 'Meh.'])
    """
    task = get_task(task)
    if not task.name.startswith("longlamp"):
        raise ConfigError(f"load_longlamp reads LongLaMP tasks; got {task.name!r} (use load_lamp)")
    p = Path(path)
    recs = _read_json_records(p)
    if isinstance(recs, dict):
        recs = [recs]
    summary = LoadSummary()
    rows: list[dict] = []
    seen_items: set[tuple[str, str]] = set()
    for k, rec in enumerate(recs):
        summary.n_records += 1
        where = f"{p.name} row {k}"
        if not isinstance(rec, dict):
            summary.skip(f"record is a JSON {_json_type(rec)}, not an object", where, strict)
            continue
        try:
            uid = next(
                (v for v in (_field(rec, f) for f in ("user_id", "name", "reviewerId", "author"))
                 if v),
                None,
            )
            uid = uid or f"row{k}"
            inp, out = _field(rec, "input"), _field(rec, "output")
            qid = _field(rec, "id") or f"{uid}_q{k}"
            date = _field(rec, "date")
        except _FieldError as exc:
            summary.skip(str(exc), where, strict, exc.detail)
            continue
        prof = _query_parts(rec, inp, out, where, summary, strict,
                            no_output="missing or empty field 'output'")
        if prof is None:
            continue
        for j, item in enumerate(prof):
            row = _profile_item(task, item, uid, None, j, summary, strict)
            if row is None:
                continue
            key = (uid, row["body"] + "\x00" + row["output"])
            if key in seen_items:  # the same profile is repeated on every row of a user
                continue
            seen_items.add(key)
            row["order"] = k * 100000 + j
            rows.append(row)
        rows.append(
            {
                "user_id": uid,
                "author": None,
                "item_id": qid,
                "date": date,
                "order": k * 100000 + 99999,
                "source": "query",
                "input": inp,
                "body": task.strip_prefix(inp),
                "output": out,
            }
        )
    return _items_frame(rows, summary, strict, p)
