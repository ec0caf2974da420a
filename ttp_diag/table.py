"""The score-table contract, validated once at the boundary, and its prepared form.

A score table is a long-format :class:`pandas.DataFrame`, one row per candidate:

==============  ==========================================================================
column          meaning
==============  ==========================================================================
``user_id``     user
``query_id``    query, unique within the table (a query belongs to exactly one user)
``cand_id``     candidate within its query
``split``       optional, ``"train"`` / ``"val"``; analysis uses ``"val"`` unless told otherwise
``reward``      ground-truth reward (e.g. (ROUGE-1 F + ROUGE-L F) / 2)
``score_<rm>``  a reward model's prediction, one column per reward model
``var_<rm>``    optional predicted variance of a probabilistic reward model
``text``        optional candidate text
==============  ==========================================================================

:class:`ScoreTable` checks a frame once and keeps what every analysis needs: the rows of the
split, the integer layout of queries and users, the rewards and the checked score columns (like
scikit-learn's ``check_array``, but kept). Public functions accept a DataFrame or a ScoreTable;
pass a ScoreTable to analyse one table many times without validating it again.
:func:`validate_score_table` is the older, frame-returning form of the same checks.

Errors are :class:`ScoreTableError` with a message that names the column, how many rows are
affected, a few examples and the fix.

Design: every check is O(n). Rows are grouped by query without a global sort: real tables keep a
query's candidates together, which one comparison of neighbouring ``query_id`` values confirms;
only otherwise is a stable argsort of query codes taken. Duplicate candidates are then found by
one comparison of neighbouring ``cand_id`` values (sorted integers, the usual case) or a hash of
one combined integer key; a query shared by two users by neighbouring ``user_id`` values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._table_checks import (
    MAX_ABS,
    RANGE_FACTOR,
    REQUIRED_COLUMNS,
    ScoreTableError,
    check_frame,
    examples,
    numeric_values,
)

SPECIAL_SELECTORS = ("oracle", "random")
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or bool(
    getattr(pd.options.mode, "copy_on_write", False))

__all__ = ["MAX_ABS", "RANGE_FACTOR", "REQUIRED_COLUMNS", "SPECIAL_SELECTORS", "Prepared",
           "ScoreTable", "ScoreTableError", "as_score_table", "prepare", "score_columns",
           "validate_score_table"]


def score_columns(table) -> list[str]:
    """Names of the reward-model score columns (``score_*``) of a table, in column order.

    Examples
    --------
    >>> import pandas as pd
    >>> score_columns(pd.DataFrame(columns=["user_id", "reward", "score_det", "var_prob"]))
    ['score_det']
    """
    if not hasattr(table, "columns"):
        raise ScoreTableError(f"score_columns needs a table (a pandas DataFrame); got "
                              f"{type(table).__name__}.")
    return [c for c in table.columns if isinstance(c, str) and c.startswith("score_")]


@dataclass(frozen=True)
class Prepared:
    """Integer-coded arrays of a validated table, shared by the Best-of-N engine and diagnostics.

    Queries are numbered in sorted ``query_id`` order, users in sorted ``user_id`` order.
    """

    q_codes: np.ndarray  # query index of each row, 0..n_queries-1
    query_ids: np.ndarray  # query_id of each query index
    user_of_query: np.ndarray  # user index of each query, 0..n_users-1
    user_ids: np.ndarray  # user_id of each user index
    reward: np.ndarray  # float64 reward of each row
    pool_sizes: np.ndarray  # candidates per query

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


def _equality_codes(series: pd.Series) -> np.ndarray:
    """Integers that are equal exactly where the values are (raw integers need no hashing)."""
    if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(series.dtype,
                                                                       pd.CategoricalDtype):
        values = series.to_numpy()
        if values.dtype.kind in "iu":
            return values
    return pd.factorize(series, sort=False, use_na_sentinel=True)[0]


def _group_order(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """A stable permutation that groups rows by code: a counting sort, O(n)."""
    try:  # pandas' own groupby indexer; a stable argsort (O(n log n)) where it is missing
        from pandas._libs.algos import groupsort_indexer

        return np.asarray(groupsort_indexer(codes.astype(np.intp, copy=False), n_groups)[0],
                          dtype=np.int64)
    except (ImportError, TypeError, ValueError):
        return np.argsort(codes, kind="stable")


def _check_split(table: pd.DataFrame, split: str | None) -> pd.DataFrame:
    if split is None or "split" not in table.columns:
        return table
    mask = (table["split"] == split).to_numpy(dtype=bool, na_value=False)
    if not mask.any():
        present = sorted(map(str, pd.unique(table["split"].dropna())))
        raise ScoreTableError(
            f"no rows with split == {split!r}; the 'split' column holds {present}. Pass "
            f"split=None to use every row, or split=<one of those>."
        )
    return table if mask.all() else table.loc[mask]


def _check_score_names(table: pd.DataFrame, scores) -> list[str]:
    if scores is None:
        scores = score_columns(table)
    elif isinstance(scores, str):
        scores = [scores]
    scores = list(scores)
    twice = [s for i, s in enumerate(scores) if s in scores[:i]]
    if twice:
        raise ScoreTableError(f"scores names {', '.join(map(repr, dict.fromkeys(twice)))} "
                              f"twice; give each score column once.")
    for s in scores:
        if s in SPECIAL_SELECTORS:
            continue
        if not isinstance(s, str) or s not in table.columns:
            hint = f" Did you mean 'score_{s}'?" if f"score_{s}" in table.columns else ""
            raise ScoreTableError(
                f"score column {s!r} not found; score columns in the table: "
                f"{score_columns(table)}.{hint}"
            )
    return [s for s in scores if s not in SPECIAL_SELECTORS]


class ScoreTable:
    """A validated score table and its prepared integer layout, built once and passed around.

    Parameters
    ----------
    table : pandas.DataFrame or ScoreTable
        One row per candidate with at least ``user_id``, ``query_id``, ``cand_id``, ``reward``.
    scores : str or list of str, optional
        Score columns to check now (numeric, finite, sane range, not constant). Default: every
        ``score_*`` column. Others are checked the first time they are used.
    split : str or None, default "val"
        Keep only rows of this split when the table has a ``split`` column; ``None`` keeps all.
    min_candidates : int, default 2
        Smallest allowed pool per query (Best-of-N and correlations need at least two).
    check_range : bool, default True
        Refuse values more than ``RANGE_FACTOR`` (1e12) times a column's central 90% range away
        from its median (corrupted data). Magnitudes above ``MAX_ABS`` (1e100, whose squares
        overflow) are refused regardless.
    validate : bool, default True
        ``False`` skips the value checks (for tables checked already); the layout is still built.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows analysed (the input itself when no split filter applies; treat as read-only).
    query_ids, user_ids : numpy.ndarray
        Sorted distinct ids; query ``i`` belongs to user ``user_of_query[i]``.
    pool_sizes : numpy.ndarray
        Candidates per query.
    reward : numpy.ndarray
        float64 reward of each row of ``frame``.

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=4, n_queries=3, n_candidates=8, seed=1)
    >>> st = td.ScoreTable(t)
    >>> st.n_users, st.n_queries, len(st)
    (4, 12, 96)
    >>> td.bon_curve(st, "oracle", [1, 8]).equals(td.bon_curve(t, "oracle", [1, 8]))
    True
    """

    def __init__(self, table, *, scores=None, split: str | None = "val",
                 min_candidates: int = 2, check_range: bool = True, validate: bool = True):
        if isinstance(table, ScoreTable):
            table = table.frame
        check_frame(table)
        names = _check_score_names(table, scores)
        table = _check_split(table, split)
        if len(table) == 0:
            raise ScoreTableError("score table has no rows; nothing to analyse.")
        self.frame = table
        self.split = split
        self.min_candidates = int(min_candidates)
        self.check_range = bool(check_range)
        self.validated = bool(validate)
        self._values: dict[str, np.ndarray] = {}
        self._splits: dict[str, ScoreTable] = {}
        self._q_codes = None
        if validate:
            for col in ("user_id", "query_id", "cand_id"):
                n_missing = int(table[col].isna().sum())
                if n_missing:
                    raise ScoreTableError(
                        f"column {col!r} has {n_missing} missing value(s); every candidate needs "
                        f"a {col}. Drop those rows or fill them."
                    )
            self.reward = numeric_values(table, "reward", check_range=check_range)
            for s in names:
                self._values[s] = numeric_values(table, s, check_range=check_range,
                                                 constant_ok=False)
        else:
            self.reward = table["reward"].to_numpy(dtype=float)
        self._layout(validate)

    # -- layout -------------------------------------------------------------------------------
    def _layout(self, validate: bool) -> None:
        """Group rows by query (blocks), number queries/users in sorted id order, check rows."""
        t = self.frame
        n = len(t)
        q = _equality_codes(t["query_id"])
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(q[1:], q[:-1], out=change[1:])
        starts = np.flatnonzero(change)
        order = None
        if len(pd.unique(q[starts])) != len(starts):  # some query's rows are not contiguous
            codes = pd.factorize(q, sort=False)[0]  # appearance order, 0..k-1
            sizes = np.bincount(codes)
            order = _group_order(codes, len(sizes))
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            change = np.zeros(n, dtype=bool)
            change[starts] = True
        sizes = np.diff(np.append(starts, n))
        first_row = starts if order is None else order[starts]
        rank, query_ids = pd.factorize(t["query_id"].iloc[first_row], sort=True)
        if len(query_ids) != len(starts):  # cannot happen unless ids compare inconsistently
            raise ScoreTableError("query_id values do not compare consistently; use str or int "
                                  "query ids.")
        u_rank, user_ids = pd.factorize(t["user_id"].iloc[first_row], sort=True)
        self._order = order
        self._starts = starts
        self._block_sizes = sizes
        self._block_rank = rank.astype(np.int64, copy=False)
        self.query_ids = np.asarray(query_ids)
        self.user_ids = np.asarray(user_ids)
        nq = len(starts)
        self.user_of_query = np.empty(nq, dtype=np.int64)
        self.user_of_query[rank] = u_rank
        self.pool_sizes = np.empty(nq, dtype=np.int64)
        self.pool_sizes[rank] = sizes
        if validate:
            self._check_rows(change)

    def _arranged(self, values: np.ndarray) -> np.ndarray:
        """Row values in block order (queries contiguous)."""
        return values if self._order is None else values[self._order]

    def _block_ids(self, blocks: np.ndarray) -> str:
        return examples(self.query_ids[self._block_rank[blocks]])

    def _check_rows(self, change: np.ndarray) -> None:
        t = self.frame
        inner = ~change[1:]  # neighbour pairs inside one query
        cand = t["cand_id"]
        ok = False
        if pd.api.types.is_integer_dtype(cand.dtype) and cand.to_numpy().dtype.kind in "iu":
            c = self._arranged(cand.to_numpy())
            ok = not np.any((c[1:] <= c[:-1]) & inner)  # strictly increasing within queries
        if not ok:
            c = self._arranged(_equality_codes(cand)).astype(np.int64, copy=False)
            c = c - c.min()
            block_of_row = np.repeat(np.arange(len(self._starts), dtype=np.int64),
                                     self._block_sizes)
            span = int(c.max()) + 1
            if len(self._starts) * span <= 4 * len(c) + 1024:  # dense keys: count them, O(n)
                key = block_of_row * span + c
                dup = np.bincount(key, minlength=len(self._starts) * span)[key] > 1
            elif len(self._starts) * span < 2**62:
                dup = pd.Series(block_of_row * span + c).duplicated(keep=False).to_numpy()
            else:
                dup = pd.DataFrame({"q": block_of_row, "c": c}).duplicated(keep=False).to_numpy()
            if dup.any():
                blocks = np.unique(block_of_row[dup])
                raise ScoreTableError(
                    f"{int(dup.sum())} rows share a (query_id, cand_id) pair, e.g. query_id "
                    f"{self._block_ids(blocks)}; each candidate must appear once. De-duplicate "
                    f"with table.drop_duplicates(['query_id', 'cand_id'])."
                )
        u = self._arranged(_equality_codes(t["user_id"]))
        shared = np.flatnonzero((u[1:] != u[:-1]) & inner)
        if shared.size:
            blocks = np.unique(np.searchsorted(self._starts, shared + 1, side="right") - 1)
            raise ScoreTableError(
                f"{blocks.size} query_id(s) are shared by more than one user, e.g. "
                f"{self._block_ids(blocks)}; query_id must be unique within the table. Make it "
                f"unique, e.g. table['query_id'] = table['user_id'].astype(str) + '/' + "
                f"table['query_id'].astype(str)."
            )
        small = np.flatnonzero(self._block_sizes < self.min_candidates)
        if small.size:
            raise ScoreTableError(
                f"{small.size} query(ies) have fewer than {self.min_candidates} candidates "
                f"(smallest pool: {int(self._block_sizes.min())}), e.g. query_id "
                f"{self._block_ids(small)}; Best-of-N needs a pool to choose from. Drop them, "
                f"e.g. table = table[table.groupby('query_id')['cand_id'].transform('size') "
                f">= {self.min_candidates}]."
            )

    # -- access -------------------------------------------------------------------------------
    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def columns(self) -> pd.Index:
        return self.frame.columns

    @property
    def scores(self) -> list[str]:
        """Score columns checked so far."""
        return list(self._values)

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, key):
        return self.frame[key]

    def __repr__(self) -> str:
        return (f"ScoreTable({len(self):,} rows, {self.n_queries:,} queries, {self.n_users:,} "
                f"users, split={self.split!r}, scores={self.scores})")

    def values(self, score: str) -> np.ndarray:
        """float64 values of a score column (checked on first use), or the reward for "oracle"."""
        if score == "oracle":
            return self.reward
        if score not in self._values:
            _check_score_names(self.frame, [score])
            if self.validated:
                self._values[score] = numeric_values(self.frame, score,
                                                     check_range=self.check_range,
                                                     constant_ok=False)
            else:
                self._values[score] = self.frame[score].to_numpy(dtype=float)
        return self._values[score]

    def require(self, scores) -> ScoreTable:
        """Check these score columns now (see :meth:`values`); returns self."""
        for s in _check_score_names(self.frame, scores):
            self.values(s)
        return self

    def for_split(self, split: str | None) -> ScoreTable:
        """This table restricted to a split, as a DataFrame would be (cached); None: unchanged."""
        if split is None or split == self.split:
            return self
        if split not in self._splits:
            self._splits[split] = ScoreTable(
                self.frame, scores=self.scores, split=split, min_candidates=self.min_candidates,
                check_range=self.check_range, validate=self.validated)
        return self._splits[split]

    @property
    def q_codes(self) -> np.ndarray:
        """Sorted-order query index of each row of ``frame``."""
        if self._q_codes is None:
            arranged = np.repeat(self._block_rank, self._block_sizes)
            if self._order is None:
                self._q_codes = arranged
            else:
                self._q_codes = np.empty_like(arranged)
                self._q_codes[self._order] = arranged
        return self._q_codes

    @property
    def prepared(self) -> Prepared:
        """The :class:`Prepared` arrays (for code written against :func:`prepare`)."""
        return Prepared(q_codes=self.q_codes, query_ids=self.query_ids,
                        user_of_query=self.user_of_query, user_ids=self.user_ids,
                        reward=self.reward, pool_sizes=self.pool_sizes)


def as_score_table(table, *, scores=None, split: str | None = "val", validate: bool = True,
                   min_candidates: int = 2) -> ScoreTable:
    """A :class:`ScoreTable` from a DataFrame (validated now) or a ScoreTable (reused).

    A ScoreTable is restricted to ``split`` as a DataFrame would be (``None`` keeps its rows),
    and the requested ``scores`` are checked if they were not yet.
    """
    if isinstance(table, ScoreTable):
        st = table.for_split(split)
        return st.require(scores) if validate and scores is not None else st
    return ScoreTable(table, scores=scores, split=split, validate=validate,
                      min_candidates=min_candidates)


def validate_score_table(
    table,
    *,
    scores=None,
    split: str | None = "val",
    min_candidates: int = 2,
) -> pd.DataFrame:
    """Check a score table against the contract and return the rows to analyse.

    Parameters
    ----------
    table : pandas.DataFrame or ScoreTable
        One row per candidate with at least ``user_id``, ``query_id``, ``cand_id``, ``reward``.
    scores : str or list of str, optional
        Score columns that must be present, numeric, finite, in a sane range and not constant.
        ``"oracle"`` and ``"random"`` are accepted and need no column. Default: every ``score_*``
        column.
    split : str or None, default "val"
        Keep only rows of this split when the table has a ``split`` column. ``None`` keeps all rows.
    min_candidates : int, default 2
        Smallest allowed pool per query (Best-of-N and correlations need at least two).

    Returns
    -------
    pandas.DataFrame
        The rows of the requested split (a new frame; the input is not modified). To keep the
        prepared layout as well, build a :class:`ScoreTable` instead.

    Raises
    ------
    ScoreTableError
        Missing, duplicated or MultiIndex columns, NaN/inf or out-of-range rewards or scores,
        duplicate (query_id, cand_id), a query_id shared by two users, queries with fewer than
        ``min_candidates`` candidates, a constant score column, or an empty selection. The
        message names the column, the rows and the fix.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"user_id": ["u"] * 2, "query_id": ["q"] * 2, "cand_id": [0, 1],
    ...                   "reward": [0.1, 0.3], "score_det": [0.2, 0.9]})
    >>> len(validate_score_table(t))
    2
    """
    if isinstance(table, ScoreTable):
        st = as_score_table(table, scores=scores, split=split)
    else:
        st = ScoreTable(table, scores=scores, split=split, min_candidates=min_candidates)
    # A new frame object; under copy-on-write (pandas >= 3) the data is shared until written.
    return st.frame.copy(deep=not _COPY_ON_WRITE)


def prepare(table) -> Prepared:
    """Integer codes of a (validated) table or ScoreTable for the vectorised engines."""
    if isinstance(table, ScoreTable):
        return table.prepared
    return ScoreTable(table, scores=[], split=None, validate=False).prepared
