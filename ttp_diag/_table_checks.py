"""Column-level checks of a score table: frame shape, numeric values, sane ranges.

Each check costs a few vectorised passes (min, max, a 64k-row sample for quantiles) and builds
a detailed message only on failure, so validating a 10M-row table stays well under a second.
Row-structure checks (duplicate candidates, shared queries, pool sizes) live with the layout
in :mod:`ttp_diag.table`, because they fall out of the same pass that groups rows by query.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("user_id", "query_id", "cand_id", "reward")

#: Largest magnitude accepted in ``reward`` and score columns. A square of 1e100 is 1e200, so
#: variances and correlations over even 1e100 rows stay finite; beyond it they overflow to inf.
MAX_ABS = 1e100
#: A value further than this many times the column's central 90% range from its median is
#: refused as corrupted (a damaged Parquet page turned scores into 1e272); see ``check_range``.
RANGE_FACTOR = 1e12
_RANGE_SAMPLE = 65_536


from .exceptions import ScoreTableError  # noqa: E402  (one class for the whole package)


def examples(values, k: int = 3) -> str:
    """A few distinct values, repr'd, for error messages."""
    vals = list(pd.unique(pd.Series(list(values[:1000]))))[:k]
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in vals)


def check_frame(table) -> None:
    """Type, column index and required columns of a would-be score table."""
    if not isinstance(table, pd.DataFrame):
        raise ScoreTableError(
            f"a score table must be a pandas DataFrame, got {type(table).__name__}; load Parquet "
            f"with pd.read_parquet(path)."
        )
    cols = table.columns
    if isinstance(cols, pd.MultiIndex):
        raise ScoreTableError(
            f"score table has MultiIndex columns ({cols.nlevels} levels, e.g. {list(cols[:2])}); "
            f"a score table needs one flat name per column. Flatten them, e.g. table.columns = "
            f"['_'.join(map(str, c)).strip('_') for c in table.columns], or keep one level with "
            f"table.columns = table.columns.get_level_values(-1)."
        )
    if cols.has_duplicates:
        dups = sorted({str(c) for c in cols[cols.duplicated()]})
        raise ScoreTableError(
            f"score table has duplicated column name(s) {dups}; every column name must be unique, "
            f"or table[name] is ambiguous. Rename or drop the copies, e.g. "
            f"table = table.loc[:, ~table.columns.duplicated()]."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ScoreTableError(
            f"score table is missing required column(s) {missing}; it has {list(cols)}. "
            f"Rename your columns (table.rename(columns={{...}})) to user_id, query_id, cand_id, "
            f"reward."
        )


def numeric_values(table: pd.DataFrame, col: str, *, check_range: bool = True,
                   constant_ok: bool = True, reference: tuple[float, float] | None = None
                   ) -> np.ndarray:
    """The column as float64, checked: numeric, finite, in a sane range (and not constant).

    Returns the values (a view when the column is float64 already). ``reference`` is a
    ``(median, limit)`` from :func:`range_reference` to judge the range by (streaming uses the
    first batch's); by default it comes from the column itself.
    """
    series = table[col]
    if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
        raise ScoreTableError(
            f"column {col!r} must be numeric, found dtype {series.dtype}; convert it with "
            f"pd.to_numeric(table[{col!r}])."
        )
    values = series.to_numpy(dtype=float, na_value=np.nan)
    if len(values) == 0:
        return values
    vmin, vmax = float(values.min()), float(values.max())  # NaN propagates through min/max
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        _raise_non_finite(table, col, values)
    _check_range(table, col, values, vmin, vmax, reference if check_range else False)
    if not constant_ok and vmin == vmax:
        raise ScoreTableError(
            f"score column {col!r} is constant ({values[0]!r}) over all {len(values)} rows, so "
            f"it cannot rank candidates; check that the reward model was scored, or drop "
            f"the column."
        )
    return values


def _rows_message(table: pd.DataFrame, bad: np.ndarray) -> str:
    qids = table["query_id"].to_numpy()[bad] if "query_id" in table else np.array([])
    return f"in {len(pd.unique(qids))} query(ies), e.g. query_id {examples(qids)}"


def _raise_non_finite(table: pd.DataFrame, col: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    kinds = []
    if np.isnan(values).any():
        kinds.append(f"{int(np.isnan(values).sum())} NaN")
    if np.isinf(values).any():
        kinds.append(f"{int(np.isinf(values).sum())} inf")
    raise ScoreTableError(
        f"column {col!r} has {int(bad.sum())} non-finite value(s) ({', '.join(kinds)}) "
        f"{_rows_message(table, bad)}; drop or re-score those rows (e.g. table = "
        f"table[np.isfinite(table[{col!r}])]) before analysis."
    )


def range_reference(values: np.ndarray) -> tuple[float, float]:
    """(median, limit) of the sane-range check, from a strided sample of at most 64k values."""
    sample = values[:: max(1, len(values) // _RANGE_SAMPLE)]
    lo, med, hi = np.quantile(sample, [0.05, 0.5, 0.95])
    spread = hi - lo
    if not spread > 0:  # a column that is mostly one value (e.g. rewards that are mostly 0)
        spread = max(abs(med), 1.0)
    return float(med), float(RANGE_FACTOR * spread)


def _check_range(table, col, values, vmin, vmax, reference=None) -> None:
    big = max(abs(vmin), abs(vmax))
    if big > MAX_ABS:
        bad = np.abs(values) > MAX_ABS
        raise ScoreTableError(
            f"column {col!r} has {int(bad.sum())} value(s) of magnitude above {MAX_ABS:.0e} "
            f"(largest {big:.3g}) {_rows_message(table, bad)}; their squares overflow float64, "
            f"so variances and correlations would be inf or NaN. This is usually corrupted data "
            f"(check the file) or a unit error: drop those rows or rescale the column, e.g. "
            f"table[{col!r}] = table[{col!r}] / table[{col!r}].abs().max()."
        )
    if reference is False:  # check_range=False: only the overflow limit above applies
        return
    med, limit = range_reference(values) if reference is None else reference
    if vmax - med > limit or med - vmin > limit:
        bad = np.abs(values - med) > limit
        worst = values[bad][np.argmax(np.abs(values[bad] - med))]
        raise ScoreTableError(
            f"column {col!r} has {int(bad.sum())} value(s) more than {RANGE_FACTOR:.0e} times "
            f"the width of its central 90% away from its median {med:.4g} (e.g. {worst:.4g}) "
            f"{_rows_message(table, bad)}; values that far out are nearly always corrupted data "
            f"(a damaged Parquet file) or a unit error. Fix or drop those rows, or pass "
            f"check_range=False if the values are genuine."
        )
