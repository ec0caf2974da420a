"""The score-table contract, validated once at the boundary.

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

:func:`validate_score_table` checks it and raises :class:`ScoreTableError` with a message that
names the column, how many rows are affected, a few examples and the fix. The analysis functions
call it themselves, so errors surface once, at the boundary, never as a silent NaN later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("user_id", "query_id", "cand_id", "reward")
SPECIAL_SELECTORS = ("oracle", "random")


from ttp_diag.exceptions import ScoreTableError  # noqa: E402  (one class, re-exported here)


def score_columns(table: pd.DataFrame) -> list[str]:
    """Names of the reward-model score columns (``score_*``) of a table, in column order.

    Examples
    --------
    >>> import pandas as pd
    >>> score_columns(pd.DataFrame(columns=["user_id", "reward", "score_det", "var_prob"]))
    ['score_det']
    """
    return [c for c in table.columns if isinstance(c, str) and c.startswith("score_")]


def _examples(values, k: int = 3) -> str:
    vals = list(pd.unique(pd.Series(list(values))))[:k]
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in vals)


def _check_numeric(table: pd.DataFrame, col: str) -> np.ndarray:
    series = table[col]
    if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
        raise ScoreTableError(
            f"column {col!r} must be numeric, found dtype {series.dtype}; convert it with "
            f"pd.to_numeric(table[{col!r}])."
        )
    values = series.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        qids = table["query_id"].to_numpy()[bad] if "query_id" in table else []
        kinds = []
        if np.isnan(values).any():
            kinds.append(f"{int(np.isnan(values).sum())} NaN")
        if np.isinf(values).any():
            kinds.append(f"{int(np.isinf(values).sum())} inf")
        raise ScoreTableError(
            f"column {col!r} has {int(bad.sum())} non-finite value(s) ({', '.join(kinds)}) in "
            f"{len(pd.unique(qids))} query(ies), e.g. query_id {_examples(qids)}; drop "
            f"or "
            f"re-score those rows (e.g. table = table[np.isfinite(table[{col!r}])]) "
            f"before analysis."
        )
    return values


def validate_score_table(
    table: pd.DataFrame,
    *,
    scores=None,
    split: str | None = "val",
    min_candidates: int = 2,
) -> pd.DataFrame:
    """Check a score table against the contract and return the rows to analyse.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per candidate with at least ``user_id``, ``query_id``, ``cand_id``, ``reward``.
    scores : str or list of str, optional
        Score columns that must be present, numeric, finite and not constant. ``"oracle"`` and
        ``"random"`` are accepted and need no column. Default: every ``score_*`` column.
    split : str or None, default "val"
        Keep only rows of this split when the table has a ``split`` column. ``None`` keeps all rows.
    min_candidates : int, default 2
        Smallest allowed pool per query (Best-of-N and correlations need at least two).

    Returns
    -------
    pandas.DataFrame
        The rows of the requested split (a new frame; the input is not modified).

    Raises
    ------
    ScoreTableError
        Missing columns, NaN/inf rewards or scores, duplicate (query_id, cand_id), a query_id
        shared by two users, queries with fewer than ``min_candidates`` candidates, a constant
        score column, or an empty selection. The message names the column, the rows and the fix.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"user_id": ["u"] * 2, "query_id": ["q"] * 2, "cand_id": [0, 1],
    ...                   "reward": [0.1, 0.3], "score_det": [0.2, 0.9]})
    >>> len(validate_score_table(t))
    2
    """
    if not isinstance(table, pd.DataFrame):
        raise ScoreTableError(
            f"a score table must be a pandas DataFrame, got {type(table).__name__}; load Parquet "
            f"with pd.read_parquet(path)."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ScoreTableError(
            f"score table is missing required column(s) {missing}; it has {list(table.columns)}. "
            f"Rename your columns (table.rename(columns={{...}})) to user_id, query_id, cand_id, "
            f"reward."
        )
    if scores is None:
        scores = score_columns(table)
    elif isinstance(scores, str):
        scores = [scores]
    scores = list(scores)
    for s in scores:
        if s in SPECIAL_SELECTORS:
            continue
        if s not in table.columns:
            hint = f" Did you mean 'score_{s}'?" if f"score_{s}" in table.columns else ""
            raise ScoreTableError(
                f"score column {s!r} not found; score columns in the table: "
                f"{score_columns(table)}.{hint}"
            )

    if split is not None and "split" in table.columns:
        mask = (table["split"] == split).to_numpy()
        if not mask.any():
            present = sorted(map(str, pd.unique(table["split"].dropna())))
            raise ScoreTableError(
                f"no rows with split == {split!r}; the 'split' column holds {present}. Pass "
                f"split=None to use every row, or split=<one of those>."
            )
        table = table.loc[mask]
    table = table.copy()
    if len(table) == 0:
        raise ScoreTableError("score table has no rows; nothing to analyse.")

    for col in ("user_id", "query_id", "cand_id"):
        n_missing = int(table[col].isna().sum())
        if n_missing:
            raise ScoreTableError(
                f"column {col!r} has {n_missing} missing value(s); every candidate needs a "
                f"{col}. Drop those rows or fill them."
            )

    _check_numeric(table, "reward")
    for s in scores:
        if s in SPECIAL_SELECTORS:
            continue
        values = _check_numeric(table, s)
        if np.ptp(values) == 0:
            raise ScoreTableError(
                f"score column {s!r} is constant ({values[0]!r}) over all {len(values)} rows, so "
                f"it cannot rank candidates; check that the reward model was scored, or drop "
                f"the column."
            )

    dup = table.duplicated(subset=["query_id", "cand_id"], keep=False).to_numpy()
    if dup.any():
        qids = table["query_id"].to_numpy()[dup]
        raise ScoreTableError(
            f"{int(dup.sum())} rows share a (query_id, cand_id) pair, e.g. query_id "
            f"{_examples(qids)}; each candidate must appear once. De-duplicate with "
            f"table.drop_duplicates(['query_id', 'cand_id'])."
        )

    q_codes, q_uniques = pd.factorize(table["query_id"], sort=False)
    u_codes, _ = pd.factorize(table["user_id"], sort=False)
    # A query belongs to one user: the min and max user code per query must agree.
    n_q = len(q_uniques)
    umin = np.full(n_q, np.iinfo(np.int64).max)
    umax = np.full(n_q, -1)
    np.minimum.at(umin, q_codes, u_codes)
    np.maximum.at(umax, q_codes, u_codes)
    shared = np.flatnonzero(umin != umax)
    if shared.size:
        raise ScoreTableError(
            f"{shared.size} query_id(s) are shared by more than one user, e.g. "
            f"{_examples(q_uniques[shared])}; query_id must be unique within the table. Make it "
            f"unique, e.g. table['query_id'] = table['user_id'].astype(str) + '/' + "
            f"table['query_id'].astype(str)."
        )

    sizes = np.bincount(q_codes, minlength=n_q)
    small = np.flatnonzero(sizes < min_candidates)
    if small.size:
        raise ScoreTableError(
            f"{small.size} query(ies) have fewer than {min_candidates} candidates (smallest pool: "
            f"{int(sizes.min())}), e.g. query_id {_examples(q_uniques[small])}; Best-of-N needs a "
            f"pool to choose from. Drop them, e.g. table = table[table.groupby('query_id')"
            f"['cand_id'].transform('size') >= {min_candidates}]."
        )
    return table


@dataclass(frozen=True)
class Prepared:
    """Integer-coded arrays of a validated table, shared by the Best-of-N engine and diagnostics."""

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


def prepare(table: pd.DataFrame) -> Prepared:
    """Factorize a validated table into the integer codes the vectorised engines work on."""
    q_codes, query_ids = pd.factorize(table["query_id"], sort=True)
    q_codes = q_codes.astype(np.int64, copy=False)
    users = table["user_id"].to_numpy()
    first_row = np.zeros(len(query_ids), dtype=np.int64)
    # index of one row per query (the last write wins; all rows of a query share the user)
    first_row[q_codes] = np.arange(len(q_codes))
    u_codes_q, user_ids = pd.factorize(pd.Series(users[first_row]), sort=True)
    return Prepared(
        q_codes=q_codes,
        query_ids=np.asarray(query_ids),
        user_of_query=u_codes_q.astype(np.int64, copy=False),
        user_ids=np.asarray(user_ids),
        reward=table["reward"].to_numpy(dtype=float),
        pool_sizes=np.bincount(q_codes, minlength=len(query_ids)),
    )
