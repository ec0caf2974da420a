"""One pass of the exact engine over a Parquet file or dataset too large for memory.

Batches of rows are read in file order (``ParquetFile.iter_batches``; one file after another for
a directory). The last query of a batch may continue in the next one, so its rows are carried
over; every other query of the batch is complete and goes through the engine as one
:class:`~ttp_diag.table.ScoreTable`. Per-user sums and query counts add up across batches. Memory
is bounded by the batch (plus the per-user sums and the list of finished query ids, used at the
end to confirm that no query was split across batches, i.e. that the file kept each query's rows
together). If one was, the batches' sums are wrong, so the file is processed again in chunks of
whole users (several reads, but exact), with a warning.

Value checks that need the whole column run across batches: the sane-range reference (median
and spread) comes from the first batch, and the "constant score column" check from the running
minimum and maximum.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

from ._bon_engine import query_utilities, user_sums
from ._table_checks import numeric_values, range_reference
from .bon import bon_curve
from .table import SPECIAL_SELECTORS, ScoreTable, ScoreTableError


def _open(source):
    import pyarrow.dataset as ds

    if isinstance(source, ds.Dataset):
        return source
    import pyarrow as pa

    from .exceptions import InputFileError

    paths = [str(p) for p in source] if isinstance(source, (list, tuple)) else [str(source)]
    for p in paths:
        if not Path(p).exists():
            raise InputFileError(f"Parquet source {p!r} does not exist; check the path.")
    try:
        return ds.dataset(paths if isinstance(source, (list, tuple)) else paths[0],
                          format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(
            f"{', '.join(map(repr, paths))[:200]} is not a Parquet file or a folder of only "
            f"Parquet files ({' '.join(str(exc).split())[:200]}); give .parquet files or a "
            f"folder holding nothing else, or read other formats with ttp_diag.io.read_table "
            f"and call bon_curve.") from exc


def _batches(dataset, columns: list[str], rows: int):
    """Record batches in file order, at most ``rows`` rows each, one row group read at a time."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format,
                                                                ds.ParquetFileFormat):
        for path in dataset.files:
            with dataset.filesystem.open_input_file(path) as fh:
                yield from pq.ParquetFile(fh).iter_batches(batch_size=rows, columns=columns)
    else:  # other datasets: the scanner, without read-ahead so memory stays one batch
        yield from dataset.to_batches(columns=columns, batch_size=rows, batch_readahead=0,
                                      fragment_readahead=0, use_threads=False)


class _Totals:
    """Running per-user sums over batches (one small frame per batch, folded now and then)."""

    def __init__(self, n_ns: int):
        self.n_ns = n_ns
        self.parts: list[pd.DataFrame] = []
        self.rows = 0

    def add(self, user_ids: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> None:
        frame = pd.DataFrame(sums, columns=range(self.n_ns))
        frame["count"] = counts
        frame.index = pd.Index(user_ids, name="user_id")
        self.parts.append(frame)
        self.rows += len(frame)
        if len(self.parts) > 64:
            self.parts = [self.total()]

    def total(self) -> pd.DataFrame:
        return pd.concat(self.parts).groupby(level=0, sort=False).sum()


class _Partial:
    """What one pass over a source leaves: per-user sums, the query ids seen, check data."""

    def __init__(self, n_ns: int):
        self.totals = _Totals(n_ns)
        self.finished: list[np.ndarray] = []
        self.splits_seen: set = set()
        self.lo, self.hi = np.inf, -np.inf
        self.small: list = [np.iinfo(np.int64).max, None]  # smallest pool and one of its queries
        self.hist: list[np.ndarray] = []  # pool-size histograms
        self.n_rows = 0

    def query_ids(self) -> np.ndarray:
        return np.concatenate(self.finished) if self.finished else np.array([], dtype=object)

    def shrink(self) -> _Partial:
        """Fold the running parts (before sending the partial to another process)."""
        if self.totals.parts:
            self.totals.parts = [self.totals.total()]
        if self.hist:
            counts = np.zeros(max(len(h) for h in self.hist), dtype=np.int64)
            for h in self.hist:
                counts[:len(h)] += h
            self.hist = [counts]
        self.finished = [self.query_ids()]
        return self


def _columns(dataset, score: str, split) -> tuple[list[str], bool]:
    names = set(dataset.schema.names)
    columns = ["user_id", "query_id", "cand_id", "reward"]
    if score not in SPECIAL_SELECTORS:
        columns.append(score)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ScoreTableError(f"dataset is missing column(s) {missing}; it has "
                              f"{sorted(names)}.")
    return columns, split is not None and "split" in names


def check_stream_args(rows_per_batch, pool: str) -> None:
    if not isinstance(rows_per_batch, (int, np.integer)) or rows_per_batch < 1:
        raise ConfigError(f"rows_per_batch must be a whole number >= 1; got {rows_per_batch!r}.")
    if pool not in ("error", "clip"):
        raise ConfigError(f"pool must be 'error' or 'clip'; got {pool!r}.")


def accumulate(source, score: str, ns: np.ndarray, *, split, rows_per_batch: int, pool: str,
               progress: bool) -> _Partial | None:
    """One pass over ``source``: exact per-user sums of its queries (``None``: a query's rows
    were not contiguous, so the sums are wrong and the caller must regroup)."""
    dataset = _open(source)
    columns, use_split = _columns(dataset, score, split)
    value_cols = ["reward"] + ([score] if score not in SPECIAL_SELECTORS else [])
    refs: dict[str, tuple[float, float]] = {}
    acc = _Partial(len(ns))
    carry = None

    def run(part: pd.DataFrame) -> None:
        for col in value_cols:
            if col not in refs:
                refs[col] = range_reference(numeric_values(part, col, check_range=False))
            values = numeric_values(part, col, reference=refs[col])
            if col != "reward":
                acc.lo, acc.hi = min(acc.lo, float(values.min())), max(acc.hi,
                                                                        float(values.max()))
        # Pool-size checks wait for the end: a query scattered over batches looks small here.
        st = ScoreTable(part, scores=[], split=None, check_range=False, min_candidates=1)
        if score not in SPECIAL_SELECTORS:
            st._values[score] = part[score].to_numpy(dtype=float)  # checked above, batch-wise
        smallest = int(np.argmin(st.pool_sizes))
        if st.pool_sizes[smallest] < acc.small[0]:
            acc.small[:] = [int(st.pool_sizes[smallest]), st.query_ids[smallest]]
        acc.hist.append(np.bincount(st.pool_sizes))
        sums, counts = user_sums(st, query_utilities(st, score, ns, pool))
        acc.totals.add(st.user_ids, sums, counts)
        acc.finished.append(st.query_ids)

    for i, batch in enumerate(_batches(dataset, columns + (["split"] if use_split else []),
                                       rows_per_batch)):
        if use_split:
            batch = _keep_split(batch, split, acc.splits_seen)
        if batch.num_rows == 0:
            continue
        frame = batch.to_pandas()
        runs = _run_starts(frame["query_id"])
        head = runs[1] if len(runs) > 1 else len(frame)  # end of the batch's first query
        if carry is not None:
            if frame["query_id"].iloc[0] == carry["query_id"].iloc[-1]:
                # the carried query goes on here: join it to its rest (a small frame)
                carry = pd.concat([carry, frame.iloc[:head]], ignore_index=True)
                if head == len(frame):
                    continue  # the whole batch is that one query
                frame, runs = frame.iloc[head:], runs[1:] - head
            run(carry)
            acc.n_rows += len(carry)
        # only the last query can continue in the next batch; hold it back
        tail = int(runs[-1])
        carry = frame.iloc[tail:]
        if tail:
            run(frame.iloc[:tail])
        acc.n_rows += tail
        if progress:
            print(f"batch {i + 1}: {acc.n_rows:,} rows done, {acc.totals.rows:,} user parts")
    if carry is not None and len(carry):
        run(carry)
    all_ids = acc.query_ids()
    if len(pd.unique(all_ids)) != len(all_ids):
        return None
    return acc


def finish(partials: list[_Partial], score: str, ns: np.ndarray, *, split, pool: str,
           names: list[str] | None = None) -> pd.DataFrame:
    """Checks over all partials, then the population curve from their added per-user sums.

    ``names`` (one per partial, e.g. file names) turns a query seen in two partials into a
    :class:`ScoreTableError` naming both; without it the partials must not share queries.
    """
    if not any(len(p.query_ids()) for p in partials):
        seen = set().union(*(p.splits_seen for p in partials))
        present = sorted(map(str, (v for v in seen if v is not None)))
        raise ScoreTableError(f"no rows with split == {split!r} in the dataset; the 'split' "
                              f"column holds {present}. Pass split=None to use every row.")
    lo = min(p.lo for p in partials)
    hi = max(p.hi for p in partials)
    if score not in SPECIAL_SELECTORS and lo == hi:
        raise ScoreTableError(
            f"score column {score!r} is constant ({lo!r}) over the whole dataset, so it cannot "
            f"rank candidates; check that the reward model was scored, or drop the column.")
    if len(partials) > 1:
        ids = [p.query_ids() for p in partials]
        owner = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
        flat = pd.Series(np.concatenate(ids))
        twice = flat.duplicated(keep=False).to_numpy()
        if twice.any():
            q = flat[twice].iloc[0]
            where = sorted({int(o) for o in owner[twice & (flat == q).to_numpy()]})
            files = [names[i] if names else f"part {i}" for i in where]
            raise ScoreTableError(
                f"{int(flat[twice].nunique())} query(ies) have rows in more than one file, e.g. "
                f"query_id {q!r} in {files}; per-file sums need each query's rows in one file. "
                "Rewrite the dataset partitioned by user_id (e.g. pyarrow.dataset.write_dataset("
                "..., partitioning=['user_id']) or one file per group of users), or use "
                "engine='local', which streams the files in order.")
    small = min((p.small for p in partials), key=lambda s: s[0])
    _check_pools(ns, pool, small, [h for p in partials for h in p.hist])
    total = pd.concat([p.totals.total() for p in partials if p.totals.parts]).groupby(
        level=0, sort=False).sum()
    sums = total[list(range(len(ns)))].to_numpy()
    means = sums / total["count"].to_numpy()[:, None]
    return pd.DataFrame({"selector": score, "n": ns, "utility": means.mean(axis=0)})


def stream_curve(source, score: str, ns: np.ndarray, *, split, rows_per_batch: int, pool: str,
                 progress: bool) -> pd.DataFrame:
    """Population Best-of-N curve of ``score`` over a Parquet dataset (see bon_curve_dataset)."""
    check_stream_args(rows_per_batch, pool)
    acc = accumulate(source, score, ns, split=split, rows_per_batch=rows_per_batch, pool=pool,
                     progress=progress)
    if acc is None:
        warnings.warn(
            "the rows of some queries are not contiguous in the dataset, so one pass cannot see "
            "each query whole; reading it again in chunks of whole users (exact, but slower). "
            "Sort the file by query_id to stream it in one pass.", RuntimeWarning, stacklevel=3)
        dataset = _open(source)
        columns, use_split = _columns(dataset, score, split)
        return _by_user_chunks(dataset, columns, score, ns, split=split if use_split else None,
                               rows_per_batch=rows_per_batch, pool=pool)
    return finish([acc], score, ns, split=split, pool=pool)


def _check_pools(ns: np.ndarray, pool: str, small: list, hist: list[np.ndarray]) -> None:
    """The min-candidates and N-above-pool checks of ScoreTable/bon_curve, over all batches."""
    smallest, example = small
    counts = np.zeros(max(len(h) for h in hist), dtype=np.int64)
    for h in hist:
        counts[:len(h)] += h
    if smallest < 2:
        raise ScoreTableError(
            f"{int(counts[:2].sum())} query(ies) have fewer than 2 candidates (smallest pool: "
            f"{smallest}), e.g. query_id {example!r}; Best-of-N needs a pool to choose from. "
            f"Drop them before writing the dataset.")
    if pool == "error" and np.any(ns > smallest):
        n = int(ns[ns > smallest].min())
        raise ScoreTableError(
            f"N={n} is larger than the candidate pool of {int(counts[:n].sum())} query(ies) "
            f"(smallest pool: {smallest} candidates, query_id {example!r}). Use ns <= "
            f"{smallest}, or pass pool='clip' to use the whole pool when N exceeds it.")


def _run_starts(query_ids: pd.Series) -> np.ndarray:
    """Row positions where a new run of equal query_ids begins (always includes 0)."""
    values = query_ids.to_numpy() if query_ids.dtype.kind in "iu" else \
        pd.factorize(query_ids, sort=False)[0]
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


def _keep_split(batch, split: str, seen: set):
    """Rows of one split; dictionary-encoded columns are compared through their dictionary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = batch.column("split")
    if pa.types.is_dictionary(col.type):  # categoricals: compare small integer indices
        words = col.dictionary.to_pylist()
        seen.update(words)
        hits = [i for i, w in enumerate(words) if w == split]
        mask = np.isin(np.asarray(col.indices.fill_null(-1)), hits)
    else:
        seen.update(pc.unique(col).to_pylist())
        mask = pc.fill_null(pc.equal(col, split), False)
    return batch.filter(mask).drop_columns(["split"])


def _by_user_chunks(dataset, columns, score, ns, *, split, rows_per_batch, pool):
    """Fallback for files whose queries are scattered: whole users per chunk, several reads."""
    import pyarrow.compute as pc

    read = columns + (["split"] if split is not None else [])
    users = dataset.to_table(columns=["user_id"]).column("user_id")
    counts = pc.value_counts(users)
    ids = counts.field("values").to_pylist()
    sizes = np.asarray(counts.field("counts"))
    chunk_of = np.cumsum(sizes) // max(1, rows_per_batch)
    means = []
    for c in np.unique(chunk_of):
        chunk_users = [ids[i] for i in np.flatnonzero(chunk_of == c)]
        part = dataset.to_table(columns=read,
                                filter=pc.field("user_id").isin(chunk_users)).to_pandas()
        if split is not None:
            part = part[part["split"] == split]
        if len(part):
            means.append(bon_curve(part, score, ns, split=None, per_user=True, pool=pool)
                         .pivot(index="user_id", columns="n", values="utility")[list(ns)])
    users_curves = pd.concat(means)
    return pd.DataFrame({"selector": score, "n": ns,
                         "utility": users_curves.to_numpy().mean(axis=0)})
