"""Bring your own table: map a Best-of-N or reranking dump onto the long score table.

Candidates from real pipelines usually arrive one row per prompt, with lists (the responses,
a gold reward per response, one score list per reward model) under their own column names,
in JSONL, Parquet or a Hugging Face ``datasets.Dataset``. :func:`map_columns` turns such a
table into the score table the package analyses (one row per candidate: ``user_id``,
``query_id``, ``cand_id``, ``reward``, ``score_<rm>``, optional ``split``, ``var_<rm>``,
``text``), exploding list columns into rows. :func:`ttp_diag.io.read_table` takes the same
mapping (``columns=``) and the command line takes it as ``--map``.

The user can be a column, a constant (``"const:NAME"``: one user, e.g. a single-persona
benchmark) or derived from another column (``"prefix:COL:SEP"``: the part of ``COL`` before
the first ``SEP``, e.g. ``prefix:prompt_id:/`` for ids like ``alice/0042``), or any callable
taking the table and returning one value per row.

Errors name the field, the column and the row: a mapped column that does not exist, lists of
different lengths in one row (ragged), a list column whose row holds a scalar, no reward.

Examples
--------
>>> import pandas as pd
>>> raw = pd.DataFrame({"author": ["a", "b"], "prompt_id": [1, 2],
...                     "responses": [["x", "y"], ["z", "w"]],
...                     "gold": [[0.1, 0.5], [0.3, 0.2]], "rm": [[1.0, 2.0], [0.0, -1.0]]})
>>> t = map_columns(raw, user="author", query="prompt_id", candidate="responses",
...                 reward="gold", scores={"mine": "rm"})
>>> print(t[["user_id", "query_id", "cand_id", "reward", "score_mine", "text"]])
  user_id  query_id  cand_id  reward  score_mine text
0       a         1        0     0.1         1.0    x
1       a         1        1     0.5         2.0    y
2       b         2        0     0.3         0.0    z
3       b         2        1     0.2        -1.0    w
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import ScoreTableError

__all__ = ["FIELDS", "map_columns", "parse_map"]

#: The fields a mapping may name (``scores`` and ``var`` take ``{name: column}``).
FIELDS = ("user", "query", "candidate", "reward", "scores", "var", "split", "text")

UserSpec = str | Callable[[pd.DataFrame], Any] | None


def _is_list(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


def _as_frame(table: Any) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas"):  # a Hugging Face datasets.Dataset (or pyarrow Table)
        return table.to_pandas()
    raise ScoreTableError(f"expected a pandas DataFrame, a datasets.Dataset or a pyarrow Table; "
                          f"got {type(table).__name__}.")


def _need(df: pd.DataFrame, field: str, col: str) -> pd.Series:
    if col not in df.columns:
        raise ScoreTableError(
            f"the mapping's {field}={col!r} is not a column of the table (columns: "
            f"{', '.join(map(str, df.columns))}); name an existing column "
            f"(--map {field}=COLUMN on the command line).")
    return df[col]


def _user(df: pd.DataFrame, user: UserSpec) -> pd.Series:
    if user is None:
        if "user_id" in df.columns:
            return df["user_id"]
        raise ScoreTableError(
            "no user: the table has no user_id column and the mapping names none; pass "
            "user=COLUMN, user='const:NAME' (one user) or user='prefix:COLUMN:SEP' (--map "
            "user=... on the command line).")
    if callable(user):
        return pd.Series(np.asarray(user(df)), index=df.index)
    if user.startswith("const:"):
        return pd.Series(user[len("const:"):], index=df.index)
    if user.startswith("prefix:"):
        parts = user.split(":", 2)
        if len(parts) != 3 or not parts[2]:
            raise ScoreTableError(f"user={user!r}: write prefix:COLUMN:SEP, e.g. "
                                  f"prefix:prompt_id:/ (the part of prompt_id before the first "
                                  f"'/').")
        col = _need(df, "user", parts[1]).astype(str)
        return col.str.split(parts[2], n=1).str[0]
    return _need(df, "user", user)


def map_columns(table: Any, *, user: UserSpec = None, query: str | None = None,
                candidate: str | None = None, reward: str | None = None,
                scores: Mapping[str, str] | None = None, var: Mapping[str, str] | None = None,
                split: str | None = None, text: str | None = None) -> pd.DataFrame:
    """The long score table of a table in any layout (see the module).

    Parameters
    ----------
    table : pandas.DataFrame, datasets.Dataset or pyarrow.Table
        One row per candidate, or one row per prompt with list columns.
    user : str or callable, optional
        Column of the user; ``"const:NAME"``; ``"prefix:COLUMN:SEP"``; or a callable of the
        table returning one value per row. Default: the ``user_id`` column.
    query : str, optional
        Column of the prompt/query id; default ``query_id``, else the row number (one row per
        prompt).
    candidate : str, optional
        Column of the candidates. A list column gives one row per element (its text becomes
        ``text``, its position ``cand_id``); a scalar column is the ``cand_id``. Default
        ``cand_id``, else the position in the lists.
    reward : str, optional
        Column of the true reward (scalar or list); default ``reward``.
    scores : dict of str -> str, optional
        Reward-model name -> column (scalar or list); written as ``score_<name>``. Default:
        the ``score_*`` columns as they are.
    var : dict of str -> str, optional
        Reward-model name -> column of its predicted variance, written as ``var_<name>``.
    split : str, optional
        Column of the split (``train``/``val``); default ``split`` when present.
    text : str, optional
        Column of the candidate text (when ``candidate`` is not already the texts).

    Returns
    -------
    pandas.DataFrame
        The score table (not yet validated: every analysis validates it once).

    Raises
    ------
    ScoreTableError
        A mapped column that does not exist, ragged lists (the row, the columns and their
        lengths), a row that holds a scalar where its column holds lists, no reward, no user.
    """
    df = _as_frame(table).reset_index(drop=True)
    users = _user(df, user)
    fields: dict[str, pd.Series] = {}
    fields["reward"] = _need(df, "reward", reward or "reward")
    if scores is None:
        scores = {c[len("score_"):]: c for c in df.columns if str(c).startswith("score_")}
    for name, col in scores.items():
        fields[f"score_{name.removeprefix('score_')}"] = _need(df, f"scores[{name}]", col)
    for name, col in (var or {}).items():
        fields[f"var_{name.removeprefix('var_')}"] = _need(df, f"var[{name}]", col)
    cand = None
    if candidate is not None:
        cand = _need(df, "candidate", candidate)
    elif "cand_id" in df.columns:
        cand = df["cand_id"]
    if text is not None:
        fields["text"] = _need(df, "text", text)
    elif "text" in df.columns:
        fields["text"] = df["text"]
    listy = {k: s for k, s in fields.items() if len(s) and _is_list(s.iloc[0])}
    cand_is_list = cand is not None and len(cand) and _is_list(cand.iloc[0])
    if cand_is_list:
        listy = {"candidate": cand, **listy}
        if text is None:
            fields["text"] = cand
            listy["text"] = cand
    if query is not None:
        qid = _need(df, "query", query)
    elif "query_id" in df.columns:
        qid = df["query_id"]
    else:
        qid = pd.Series(np.arange(len(df)), index=df.index)
    split_col = (_need(df, "split", split) if split is not None
                 else df["split"] if "split" in df.columns else None)

    if not listy:  # already long: rename only
        out = pd.DataFrame({"user_id": users.to_numpy(), "query_id": qid.to_numpy()})
        out["cand_id"] = (cand.to_numpy() if cand is not None
                          else out.groupby("query_id").cumcount().to_numpy())
        if split_col is not None:
            out["split"] = split_col.to_numpy()
        for k, s in fields.items():
            out[k] = s.to_numpy()
        return out

    lengths = {}
    for k, s in listy.items():
        bad = ~s.map(_is_list)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ScoreTableError(
                f"column for {k!r} holds lists, but row {i} holds {s.iloc[i]!r}; give every "
                f"row a list (one value per candidate), or map a scalar column instead.")
        lengths[k] = s.map(len).to_numpy()
    ref_key = next(iter(lengths))
    ref = lengths[ref_key]
    for k, n in lengths.items():
        diff = np.flatnonzero(n != ref)
        if diff.size:
            i = int(diff[0])
            raise ScoreTableError(
                f"ragged lists in row {i} (query {qid.iloc[i]!r}): {ref_key} has {int(ref[i])} "
                f"values but {k} has {int(n[i])} ({diff.size} row(s) differ); every list of a "
                f"row must have one value per candidate.")
    scalars = {k: s for k, s in fields.items() if k not in listy}
    rows = np.repeat(np.arange(len(df)), ref)
    out = pd.DataFrame({"user_id": users.to_numpy()[rows], "query_id": qid.to_numpy()[rows]})
    pos = np.concatenate([np.arange(n) for n in ref]) if len(ref) else np.zeros(0, int)
    out["cand_id"] = pos
    if split_col is not None:
        out["split"] = split_col.to_numpy()[rows]
    for k, s in fields.items():
        if k in listy:
            vals = np.concatenate([np.asarray(v, dtype=object) for v in s.to_numpy()]) \
                if len(s) else np.zeros(0)
            out[k] = pd.Series(vals).infer_objects().to_numpy() if k == "text" else \
                pd.to_numeric(pd.Series(vals), errors="coerce").to_numpy(dtype=float)
        else:
            out[k] = scalars[k].to_numpy()[rows]
    return out


def parse_map(items: list[str] | None) -> dict[str, Any]:
    """``--map`` arguments (``FIELD=COLUMN``; ``scores.NAME=COLUMN``; ``var.NAME=COLUMN``)
    as keyword arguments of :func:`map_columns`.

    Examples
    --------
    >>> parse_map(["user=const:me", "candidate=responses", "scores.prob=rm_prob"])
    {'user': 'const:me', 'candidate': 'responses', 'scores': {'prob': 'rm_prob'}}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        for part in item.split(","):
            key, sep, val = part.partition("=")
            key, val = key.strip(), val.strip()
            field, _, name = key.partition(".")
            if not sep or not val or field not in FIELDS or (
                    field in ("scores", "var")) != bool(name):
                raise ScoreTableError(
                    f"--map {part!r}: write FIELD=COLUMN with FIELD one of user, query, "
                    f"candidate, reward, split, text, or scores.NAME=COLUMN / var.NAME=COLUMN "
                    f"(e.g. --map user=author candidate=responses reward=gold "
                    f"scores.prob=rm_scores).")
            if name:
                out.setdefault(field, {})[name] = val
            else:
                out[field] = val
    return out
