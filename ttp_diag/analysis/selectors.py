"""Variance-based selection rules as score columns for :func:`ttp_diag.bon_curve` (Table A10).

A probabilistic reward model predicts a mean ``mu`` and a variance ``sigma**2`` per
candidate. Each rule below is a new score column, so the exact Best-of-N engine evaluates it
like any reward model:

=================  ==========================================================================
rule               score of a candidate
=================  ==========================================================================
mean               ``mu`` (the baseline; the existing column)
LCB-beta           ``mu - beta * sigma``  (prefer confident candidates)
UCB-beta           ``mu + beta * sigma``  (prefer uncertain candidates)
Var-Filter-p       ``mu`` for candidates outside the top ``p`` % variance of their query; the
                   filtered ones are shifted below every kept candidate, keeping their order,
                   so a random N-subset holding only filtered candidates still picks by mean
SNR                ``mu / sigma``
=================  ==========================================================================

Examples
--------
>>> from ttp_diag import simulate_score_table
>>> t = simulate_score_table(n_users=6, n_queries=4, n_candidates=10, seed=0)
>>> t2, cols = add_selector_columns(t, "score_prob", "var_prob", lcb_betas=[1], ucb_betas=[],
...                                var_filter_ps=[20])
>>> cols
['score_prob', 'score_prob_lcb1', 'score_prob_varfilter20', 'score_prob_snr']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttp_diag.analysis.failure_modes import _check_variance
from ttp_diag.exceptions import ConfigError
from ttp_diag.table import ScoreTableError, validate_score_table

__all__ = ["add_selector_columns", "selector_table"]


def _fmt(x: float) -> str:
    return f"{x:g}".replace("-", "m")


def _filtered_mask(query_codes: np.ndarray, var: np.ndarray, p: float) -> np.ndarray:
    """True for the ``floor(p/100 * M)`` highest-variance candidates of each query.

    Ties in variance are broken by row order (the earlier row is dropped first), so the
    number dropped per query is exactly ``floor(p/100 * M)``.
    """
    n = var.size
    order = np.lexsort((np.arange(n), -var, query_codes))  # by query, variance desc, row
    sizes = np.bincount(query_codes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[query_codes[order]]
    k = np.floor(p / 100.0 * sizes + 1e-9).astype(np.int64)  # 1e-9: 10% of 30 is 3, not 2.999
    return rank < k[query_codes]


def add_selector_columns(
    table: pd.DataFrame,
    score: str,
    var: str,
    *,
    lcb_betas: Sequence[float] = (0.5, 1.0, 2.0),
    ucb_betas: Sequence[float] = (0.5, 1.0, 2.0),
    var_filter_ps: Sequence[float] = (10, 20, 30),
    snr: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Add variance-based selector columns to a copy of a score table.

    Parameters
    ----------
    table : pandas.DataFrame
        Score table with the predicted mean ``score`` and variance ``var`` (all splits kept).
    score, var : str
        Predicted mean (a probabilistic reward model's score column) and variance columns.
    lcb_betas, ucb_betas : sequence of float
        ``beta`` values of ``mu -+ beta * sigma`` (columns ``<score>_lcb<beta>``,
        ``<score>_ucb<beta>``).
    var_filter_ps : sequence of float
        Percentages ``p`` in [0, 100): drop the top ``p`` % variance of each query (columns
        ``<score>_varfilter<p>``). ``floor(p/100 * M)`` candidates are dropped from a pool of M.
    snr : bool, default True
        Add ``<score>_snr`` = ``mu / sigma`` (needs a positive variance everywhere).

    Returns
    -------
    (pandas.DataFrame, list of str)
        The new table and the selector column names, the mean column first.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"user_id": "u", "query_id": "q", "cand_id": [0, 1, 2],
    ...                   "reward": [0.1, 0.2, 0.3], "score_prob": [0.5, 0.4, 0.3],
    ...                   "var_prob": [0.04, 0.01, 0.01]})
    >>> t2, cols = add_selector_columns(t, "score_prob", "var_prob", lcb_betas=[1],
    ...                                ucb_betas=[], var_filter_ps=[], snr=False)
    >>> t2["score_prob_lcb1"].round(2).tolist()
    [0.3, 0.3, 0.2]
    """
    if score not in table.columns:
        raise ScoreTableError(f"score column {score!r} not found; score columns: "
                              f"{[c for c in table.columns if str(c).startswith('score_')]}")
    validate_score_table(table, scores=[score], split=None)
    v = _check_variance(table, var)
    mu = table[score].to_numpy(float)
    sigma = np.sqrt(v)
    out = table.copy()
    cols = [score]
    for b in lcb_betas:
        name = f"{score}_lcb{_fmt(b)}"
        out[name] = mu - float(b) * sigma
        cols.append(name)
    for b in ucb_betas:
        name = f"{score}_ucb{_fmt(b)}"
        out[name] = mu + float(b) * sigma
        cols.append(name)
    if len(var_filter_ps):
        q_codes, _ = pd.factorize(table["query_id"], sort=False)
        # shift filtered candidates below every kept one of any query, keeping their order
        shift = float(np.ptp(mu)) + 1.0
        for p in var_filter_ps:
            if not 0 <= p < 100:
                raise ConfigError(f"var_filter_ps must be percentages in [0, 100); got {p}")
            name = f"{score}_varfilter{_fmt(p)}"
            out[name] = np.where(_filtered_mask(q_codes, v, float(p)), mu - shift, mu)
            cols.append(name)
    if snr:
        if np.any(v <= 0):
            raise ScoreTableError(
                f"SNR selection divides by sqrt({var}) but {int((v <= 0).sum())} row(s) have a "
                f"variance of 0; pass snr=False or floor the variance (e.g. clip at 1e-12)."
            )
        name = f"{score}_snr"
        out[name] = mu / sigma
        cols.append(name)
    return out, cols


def _rule_label(col: str, score: str) -> str:
    if col == score:
        return "Mean only"
    rule = col[len(score) + 1:]
    for prefix, label in (("lcb", "LCB"), ("ucb", "UCB"), ("varfilter", "Var-Filter")):
        if rule.startswith(prefix):
            val = rule[len(prefix):].replace("m", "-")
            return f"{label}-{val}" + ("%" if prefix == "varfilter" else "")
    return "SNR" if rule == "snr" else rule


def selector_table(
    table: pd.DataFrame,
    score: str,
    var: str,
    ns: Sequence[int] = (1, 5, 10, 15, 20, 30),
    *,
    split: str | None = "val",
    pool: str = "clip",
    **selector_kwargs: Any,
) -> pd.DataFrame:
    """Table A10: exact Best-of-N utility of each variance-based selection rule.

    Parameters
    ----------
    table : pandas.DataFrame
        Score table with ``score`` and ``var`` columns.
    score, var : str
        Predicted mean and variance columns.
    ns : sequence of int, default (1, 5, 10, 15, 20, 30)
    split : str or None, default "val"
    pool : {"clip", "error"}, default "clip"
        N larger than a pool uses the whole pool (``"error"`` raises instead).
    **selector_kwargs
        Passed to :func:`add_selector_columns` (``lcb_betas``, ``ucb_betas``,
        ``var_filter_ps``, ``snr``).

    Returns
    -------
    pandas.DataFrame
        One row per rule: ``strategy``, ``column``, one column ``N=<n>`` per N, and
        ``delta_vs_mean`` (utility at the largest N minus the mean-only rule's).

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=6, n_queries=4, n_candidates=10, seed=0)
    >>> selector_table(t, "score_prob", "var_prob", ns=[1, 5]).loc[0, "strategy"]
    'Mean only'
    """
    from ttp_diag.bon import bon_curve

    t = validate_score_table(table, scores=[score], split=split)
    t, cols = add_selector_columns(t, score, var, **selector_kwargs)
    rows = []
    for col in cols:
        curve = bon_curve(t, col, ns, split=None, pool=pool)
        row = {"strategy": _rule_label(col, score), "column": col}
        row.update({f"N={int(n)}": float(u)
                    for n, u in zip(curve["n"], curve["utility"], strict=True)})
        rows.append(row)
    out = pd.DataFrame(rows)
    last = f"N={int(max(ns))}"
    out["delta_vs_mean"] = out[last] - out.loc[0, last]
    return out
