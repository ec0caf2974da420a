"""The embedded demo score table.

``demo_huffpost`` is a real Best-of-N score table built on a CPU with the package's own
generation pipeline (``scripts/build_demo_data.py``): SmolLM2-135M-Instruct RAG candidates
for HuffPost headlines of the authors with the longest histories, their ROUGE rewards,
and the scores of the Global, Deterministic user and Probabilistic user reward models.
Source: the News Category Dataset by Rishabh Misra (CC BY 4.0 per Kaggle), reconstructed
in LaMP-4 form; see ``ttp_diag/data/DEMO_DATA.md`` and :func:`demo_provenance`.

Only pandas and pyarrow are needed.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd

from ttp_diag.exceptions import ConfigError

__all__ = ["DEMO_COLUMNS", "load_demo", "demo_provenance", "demo_path"]

#: Columns of the embedded demo table, in order (the score-table contract plus the RM scores).
DEMO_COLUMNS = (
    "user_id", "query_id", "cand_id", "split", "reward",
    "score_global", "score_det", "score_prob", "var_prob", "text",
)

_TABLE = "demo_huffpost.parquet"
_PROV = "demo_huffpost_provenance.json"


def _data_file(name: str) -> Path:
    path = Path(str(resources.files("ttp_diag") / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(
            f"the demo file {name} is missing from {path.parent}; reinstall ttp-diag "
            "(it ships inside the package) or rebuild it with `python scripts/build_demo_data.py`"
        )
    return path


def demo_path() -> Path:
    """Path of the embedded demo Parquet file."""
    return _data_file(_TABLE)


def load_demo(split: str | None = None) -> pd.DataFrame:
    """The embedded demo score table (one row per candidate).

    Parameters
    ----------
    split : {"train", "val"}, optional
        Keep only this split. The analysis layers use ``val`` by default anyway.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``query_id``, ``cand_id``, ``split``, ``reward``,
        ``score_global``, ``score_det``, ``score_prob``, ``var_prob``, ``text``.

    Raises
    ------
    FileNotFoundError
        If the Parquet file is not inside the installed package.

    Examples
    --------
    >>> import ttp_diag.datasets as ds
    >>> t = ds.load_demo()
    >>> {"user_id", "query_id", "cand_id", "split", "reward", "score_prob"} <= set(t.columns)
    True
    >>> sorted(t["split"].unique())
    ['train', 'val']
    """
    table = pd.read_parquet(demo_path())
    if split is not None:
        if split not in ("train", "val"):
            raise ConfigError(f"split must be 'train', 'val' or None, got {split!r}")
        table = table[table["split"] == split].reset_index(drop=True)
    return table


def demo_provenance() -> dict:
    """Provenance of the demo table: attribution, user slice, settings, versions, timings.

    Examples
    --------
    >>> from ttp_diag.datasets import demo_provenance
    >>> demo_provenance()["attribution"]["license"].startswith("CC BY 4.0")
    True
    """
    return json.loads(_data_file(_PROV).read_text(encoding="utf-8"))


def demo_or_table(path: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """The table to analyse and a line saying where it came from.

    With a path: that score table (:func:`ttp_diag.io.read_table`). Without: the embedded demo
    table, or, when the package was installed without it, a simulated table (and the line
    says so).

    Examples
    --------
    >>> t, source = demo_or_table()
    >>> source.startswith("embedded demo table")
    True
    """
    if path is not None:
        from ttp_diag.io import read_table

        return read_table(path), f"score table {path}"
    try:
        return load_demo(), f"embedded demo table (ttp_diag/data/{_TABLE})"
    except (ImportError, FileNotFoundError) as exc:
        import warnings

        from ttp_diag.simulate import simulate_score_table

        warnings.warn(f"the embedded demo table is not available ({exc}); using a simulated "
                      f"score table instead (ttp_diag.simulate_score_table, seed 0).",
                      stacklevel=2)
        table = simulate_score_table(n_users=40, n_queries=10, n_candidates=16, seed=0,
                                     collapsed_sigma_ratio=0.5, clip=True)
        return table, ("simulated score table (simulate_score_table(40 users, 10 queries, "
                       "16 candidates, collapsed_sigma_ratio=0.5, clip=True, seed=0))")
