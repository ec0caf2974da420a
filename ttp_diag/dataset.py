"""Best-of-N curves of Parquet files too large for memory: :func:`bon_curve_dataset`.

``engine="local"`` streams the files through one pass of the exact engine
(:func:`ttp_diag._bon_stream.stream_curve`); ``engine="ray"`` lands in :func:`curve_by_file`,
where every file goes through the same one-pass engine
(:func:`ttp_diag._bon_stream.accumulate`: the per-user sums of the file's queries, plus what the
checks need) in a Ray task of its own, and the driver adds the per-user sums
(:func:`ttp_diag._bon_stream.finish`). A user may span files; a *query* may not (its pool would
be cut in two): that is checked over all files and refused with a
:class:`~ttp_diag.exceptions.ScoreTableError` naming the query, its files and the fix.

Ray is imported only when ``engine="ray"`` is asked for (the ``ray`` extra; without it an
:class:`~ttp_diag.exceptions.EngineError` names ``pip install 'ttp-diag[ray]'``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ._bon_stream import accumulate, check_stream_args, finish, stream_curve
from .bon import _as_int_ns, bon_curve  # noqa: F401  (bon_curve: the doctest's reference)
from .exceptions import ConfigError, InputFileError, TtpDiagError

__all__ = ["bon_curve_dataset", "dataset_files", "curve_by_file"]


def dataset_files(source) -> list[str]:
    """The Parquet files of ``source``: a file, a directory (recursively), a list, a dataset.

    Examples
    --------
    >>> import tempfile, os, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> for i in (1, 0):
    ...     pd.DataFrame({"a": [i]}).to_parquet(os.path.join(d, f"part-{i}.parquet"))
    >>> [os.path.basename(f) for f in dataset_files(d)]
    ['part-0.parquet', 'part-1.parquet']
    """
    import pyarrow.dataset as ds

    if isinstance(source, ds.FileSystemDataset):
        return list(source.files)
    if isinstance(source, (list, tuple)):
        files = [str(p) for p in source]
    elif Path(source).is_dir():
        files = sorted(ds.dataset(str(source), format="parquet").files)
    else:
        files = [str(source)]
    missing = [f for f in files if not Path(f).is_file()]
    if missing or not files:
        raise InputFileError(
            f"no Parquet file at {missing[0] if missing else source!r}; pass a Parquet file, "
            "a directory of Parquet files or a list of their paths")
    return files


def _file_partial(path: str, score: str, ns: np.ndarray, split, rows_per_batch: int,
                  pool: str):
    """One file's exact partial sums (a query scattered inside the file: regrouped in memory)."""
    acc = accumulate(path, score, ns, split=split, rows_per_batch=rows_per_batch, pool=pool,
                     progress=False)
    if acc is None:  # one file: sort its rows by query (stable) and pass again, from memory
        import pyarrow as pa
        import pyarrow.dataset as ds

        table = pd.read_parquet(path)
        table = table.iloc[np.argsort(pd.factorize(table["query_id"])[0], kind="stable")]
        acc = accumulate(ds.dataset(pa.Table.from_pandas(table, preserve_index=False)), score, ns,
                         split=split, rows_per_batch=max(rows_per_batch, len(table) + 1),
                         pool=pool, progress=False)
    return acc.shrink()


def curve_by_file(source, score: str, ns: np.ndarray, *, split, rows_per_batch: int, pool: str,
                  progress: bool, workers: int | None = None,
                  address: str | None = None) -> pd.DataFrame:
    """Population curve from per-file exact partial sums on Ray (see ``bon_curve_dataset``)."""
    from ._ray import RaySession

    check_stream_args(rows_per_batch, pool)
    files = dataset_files(source)
    t0 = time.perf_counter()

    with RaySession(address, workers=workers) as session:
        ray = session.ray
        task = ray.remote(num_cpus=1, max_retries=3)(_file_partial)
        ns_ref = ray.put(ns)
        pending, index = [], {}
        partials: list = [None] * len(files)
        nxt = 0
        while nxt < len(files) or pending:
            while nxt < len(files) and len(pending) < session.workers:
                ref = task.remote(files[nxt], score, ns_ref, split, rows_per_batch, pool)
                index[ref] = nxt
                pending.append(ref)
                nxt += 1
            (ref,), pending = ray.wait(pending, num_returns=1)
            try:
                partials[index[ref]] = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, TtpDiagError):  # the file's own error, as locally
                    raise exc.cause from None
                raise
            if progress:
                done = sum(p is not None for p in partials)
                print(f"file {done}/{len(files)} done on Ray "
                      f"({time.perf_counter() - t0:.1f} s, {session.workers} workers)")
    return finish(partials, score, ns, split=split, pool=pool,
                  names=[os.path.basename(f) for f in files])


def bon_curve_dataset(source, score: str, ns, *, split: str | None = "val",
                      rows_per_batch: int = 1_000_000, pool: str = "error",
                      progress: bool = False, engine: str = "local", workers: int | None = None,
                      address: str | None = None) -> pd.DataFrame:
    """:func:`bon_curve` for a Parquet file or dataset too large for memory, in one pass.

    Reads the file once in batches of ``rows_per_batch`` rows (``iter_batches``), holds back the
    last, possibly incomplete query of each batch for the next one, runs the exact engine on the
    complete queries and adds the per-user sums. Memory is bounded by the batch size, not the
    file. The rows of a query must be contiguous in the file (as every writer in this package
    leaves them); if they are not, the file is read again in chunks of whole users, with a
    warning. The result equals ``bon_curve(pd.read_parquet(source), ...)``.

    Parameters
    ----------
    source : str, path, list of paths or pyarrow.dataset.Dataset
        A Parquet file, a directory of Parquet files, a list of files, or a dataset.
    score, ns, split, pool
        As in :func:`bon_curve`.
    rows_per_batch : int, default 1_000_000
        Rows read at once; memory grows with it (about 100 MB per million rows).
    progress : bool
        Print one line per batch.
    engine : {"local", "ray"}, default "local"
        ``"ray"``: each file's exact partial sums in a Ray task of its own (``workers`` at
        once), added up in this process (:mod:`ttp_diag.dataset`); equal to ``"local"`` up to
        float rounding (1e-12). Each query's rows must sit in one file (checked: a
        ``ScoreTableError`` names the query and its files). Needs the ``ray`` extra.
    workers : int, optional
        Ray tasks at once (default: the cluster's CPUs).
    address : str, optional
        A running Ray cluster (default: the Ray of this process, else a local one for the
        call).

    Returns
    -------
    pandas.DataFrame
        Columns ``selector``, ``n``, ``utility``.

    Examples
    --------
    >>> import tempfile, os, ttp_diag as td
    >>> t = td.simulate_score_table(n_users=5, n_queries=3, n_candidates=6, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> t.to_parquet(path)
    >>> got = bon_curve_dataset(path, "score_det", [1, 3], rows_per_batch=40)
    >>> want = bon_curve(t, "score_det", [1, 3])
    >>> bool(np.allclose(got["utility"], want["utility"], rtol=1e-12))
    True
    """
    if engine == "ray":
        return curve_by_file(source, score, _as_int_ns(ns), split=split,
                             rows_per_batch=rows_per_batch, pool=pool, progress=progress,
                             workers=workers, address=address)
    if engine != "local":
        raise ConfigError(f"engine must be 'local' or 'ray'; got {engine!r}.")
    return stream_curve(source, score, _as_int_ns(ns), split=split,
                        rows_per_batch=rows_per_batch, pool=pool, progress=progress)
