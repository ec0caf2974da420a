"""Tidy results of reward-model sweeps and policy comparisons, read from run folders.

Files only: a sweep folder (``sweep.json`` and one run folder with ``scores.parquet`` per
point, written by ``ttp-diag sweep``) or any score tables. Every curve is the exact
Best-of-N utility of :class:`ttp_diag.BestOfN` with its bootstrap interval over users, and
every reward model carries its diagnostics (alpha, beta, rho_eff).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.bestofn import BestOfN
from ttp_diag.exceptions import CorruptFileError, InputFileError
from ttp_diag.table import score_columns

__all__ = ["SWEEP_COLUMNS", "curve_table", "read_manifest", "sweep_table"]

#: Columns of :func:`sweep_table` (and of ``sweep_results.csv``).
SWEEP_COLUMNS = ["param", "value", "is_default", "rm", "n", "utility", "ci_low", "ci_high",
                 "alpha", "beta", "rho_eff", "n_users", "n_queries"]


def curve_table(table: pd.DataFrame, scores: Sequence[str] | None = None, *,
                ns: Sequence[int] | None = None, split: str | None = "val",
                ci: float | None = 0.95, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Best-of-N curves of Random, Oracle and each reward model of one score table, tidy.

    Parameters
    ----------
    table : pandas.DataFrame
        A score table.
    scores : sequence of str, optional
        Score columns (default: every ``score_*`` column).
    ns, split, ci, n_boot, seed
        See :class:`ttp_diag.BestOfN`; ``ci=None`` leaves the interval out (NaN).

    Returns
    -------
    pandas.DataFrame
        ``rm`` (``random``, ``oracle`` or the score column), ``n``, ``utility``, ``ci_low``,
        ``ci_high``, ``alpha``, ``beta``, ``rho_eff`` (NaN for random and oracle),
        ``n_users``, ``n_queries``.

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=4, seed=0)
    >>> c = curve_table(t, ["score_prob"], n_boot=50)
    >>> sorted(c["rm"].unique()), int(c["n"].max())
    (['oracle', 'random', 'score_prob'], 4)
    """
    cols = list(scores) if scores is not None else score_columns(table)
    fit = BestOfN(ns, split=split, ci=ci, n_boot=n_boot, seed=seed).fit(table, cols)
    t = table if split is None or "split" not in table.columns else table[
        table["split"] == split]
    frames = []
    for sel in ["random", "oracle", *cols]:
        c = fit.curve(sel).rename(columns={"selector": "rm"})
        c["rm"] = sel
        for q in ("ci_low", "ci_high"):
            if q not in c.columns:
                c[q] = np.nan
        d = fit.diagnostics_.get(sel)
        for q in ("alpha", "beta", "rho_eff"):
            c[q] = float(getattr(d, q)) if d is not None else np.nan
        frames.append(c)
    out = pd.concat(frames, ignore_index=True)
    out["n_users"] = int(t["user_id"].nunique())
    out["n_queries"] = int(t["query_id"].nunique())
    return out[["rm", "n", "utility", "ci_low", "ci_high", "alpha", "beta", "rho_eff",
                "n_users", "n_queries"]]


def read_manifest(sweep_dir: str | os.PathLike) -> dict:
    """The ``sweep.json`` of a sweep folder (``parent`` and ``points``)."""
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise InputFileError(f"{path} not found; is {sweep_dir} a `ttp-diag sweep --out` "
                             "folder?")
    try:
        man = json.loads(path.read_text())
    except ValueError as exc:
        raise CorruptFileError(f"{path} is not valid JSON ({exc}); run the sweep again to "
                               "rewrite it") from None
    if not isinstance(man, Mapping) or not isinstance(man.get("points"), list):
        raise CorruptFileError(f"{path} has no 'points' list; run the sweep again to rewrite it")
    return dict(man)


def sweep_table(sweep_dir: str | os.PathLike, *, ns: Sequence[int] | None = None,
                split: str | None = "val", ci: float | None = 0.95, n_boot: int = 1000,
                seed: int = 0) -> pd.DataFrame:
    """One tidy table of every finished sweep point: curves with intervals and diagnostics.

    Points without ``scores.parquet`` (not run yet) are left out and listed in
    ``attrs["missing"]``.

    Parameters
    ----------
    sweep_dir : path
        A ``ttp-diag sweep --out`` folder.
    ns, split, ci, n_boot, seed
        See :func:`curve_table`.

    Returns
    -------
    pandas.DataFrame
        :data:`SWEEP_COLUMNS`: ``param``, ``value`` (as text), ``is_default`` (the parent's
        own setting: the full model), ``rm`` (``random``, ``oracle`` or a score column),
        ``n``, ``utility``, ``ci_low``, ``ci_high``, ``alpha``, ``beta``, ``rho_eff``,
        ``n_users``, ``n_queries``.
    """
    from ttp_diag.io import read_table

    sweep_dir = Path(sweep_dir)
    man = read_manifest(sweep_dir)
    frames, missing = [], []
    for p in man["points"]:
        f = sweep_dir / p["dir"] / "scores.parquet"
        if not f.is_file():
            missing.append(p["dir"])
            continue
        table = read_table(f, what="sweep point score table")
        cols = [c for c in (f"score_{k}" for k in p.get("rm_kinds", [])) if c in table.columns]
        c = curve_table(table, cols or None, ns=ns, split=split, ci=ci, n_boot=n_boot,
                        seed=seed)
        c.insert(0, "is_default", bool(p.get("is_default", False)))
        c.insert(0, "value", str(p["dir"]).split("=", 1)[-1])  # "10" for 10.0, "true"
        c.insert(0, "param", p["param"])
        frames.append(c)
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=SWEEP_COLUMNS))
    out = out[SWEEP_COLUMNS]
    out.attrs["missing"] = missing
    return out
