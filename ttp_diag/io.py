"""Reading and writing score tables (Parquet or CSV), with atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd


def read_table(path) -> pd.DataFrame:
    """Read a score table from ``.parquet`` (or ``.pq``) or ``.csv``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For an unknown file extension.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"score table {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq") or path.is_dir():
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"cannot read {str(path)!r}: use a .parquet or .csv score table.")


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically.

    A crash leaves either the old file or none, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_table(table: pd.DataFrame, path) -> Path:
    """Write a score table to Parquet or CSV (by extension), atomically."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return atomic_write(path, lambda p: table.to_csv(p, index=False))
    return atomic_write(path, lambda p: table.to_parquet(p, index=False))
