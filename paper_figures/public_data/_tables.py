"""The public human-evaluation tables built by ``scripts/public_data.py`` (one reader for the
report, the extrapolation and the figure)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: where ``python scripts/public_data.py --out scripts/public_data`` writes the tables
DATA = Path(__file__).resolve().parents[2] / "scripts" / "public_data"


def load(name: str) -> pd.DataFrame:
    """``hanna`` or ``summeval`` as a score table."""
    return pd.read_csv(DATA / f"{name}.csv.gz")
