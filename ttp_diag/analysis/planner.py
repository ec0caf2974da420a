"""Compute planner: how many candidates a reward model needs, and what they cost.

The unified law predicts a reward model's gain over random as ``rho_total * c_sigma * g(N)``
and the oracle's as ``c_sigma * g(N)``. Closing a share ``s`` of the oracle's gap at a
reference budget ``n_ref`` therefore needs the smallest N with
``rho_total * g(N) >= s * g(n_ref)`` (:func:`ttp_diag.n_to_close_gap`); a model with
``rho_total <= 0`` never gets there. Generation dominates the cost (the paper: ~1.5 s to
generate a candidate, 2.3 ms to score it), so the cost is linear in N.

Examples
--------
>>> import ttp_diag as td
>>> t = td.simulate_score_table(n_users=20, n_queries=8, n_candidates=16, seed=0)
>>> ns = [1, 2, 4, 8, 16]
>>> cal = td.calibrate(ns, td.bon_curve(t, "oracle", ns)["utility"])
>>> plan = plan_compute({"score_prob": td.diagnose(t, "score_prob")}, cal,
...                     cost_per_candidate=1.5, shares=[0.5], n_ref=16)
>>> list(plan.columns[:4])
['selector', 'share', 'rho_total', 'n_needed']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ttp_diag.diagnostics import Diagnostics
    from ttp_diag.theory import Calibration

__all__ = ["plan_compute"]


def plan_compute(
    diagnostics: Diagnostics | Mapping[str, Diagnostics] | Sequence[Diagnostics],
    calibration: Calibration,
    *,
    cost_per_candidate: float,
    shares: Sequence[float] = (0.25, 0.5, 0.75, 0.9),
    n_ref: int = 30,
    n_queries: int = 1,
    scoring_cost: float = 0.0,
    refined: bool = True,
    include_oracle: bool = True,
    n_max: int = 10**7,
) -> pd.DataFrame:
    """N that closes each share of the oracle gap, and its cost, for one or more reward models.

    Parameters
    ----------
    diagnostics : Diagnostics or dict of str -> Diagnostics or list of Diagnostics
        :func:`ttp_diag.diagnose` results of the reward models to plan for.
    calibration : Calibration
        :func:`ttp_diag.calibrate` result of the task's oracle curve (``mu``, ``c_sigma``,
        ``shape``).
    cost_per_candidate : float
        Cost of generating one candidate (any unit: seconds, GPU-hours, dollars).
    shares : sequence of float, default (0.25, 0.5, 0.75, 0.9)
        Target shares of the oracle's gain over random at ``n_ref``, in (0, 1].
    n_ref : int, default 30
        Reference budget defining the oracle gap (the paper's N = 30).
    n_queries : int, default 1
        Queries served; ``total_cost`` = ``cost_per_query`` x ``n_queries``.
    scoring_cost : float, default 0
        Cost of scoring one candidate with the reward model (same unit).
    refined : bool, default True
        Use ``rho_total`` with the collapsed users' own correlation (Eq. 30); ``False`` uses
        Proposition 4.4's ``(1 - alpha) rho_eff``.
    include_oracle : bool, default True
        Add rows for the oracle (correlation 1) as the best case.
    n_max : int
        Largest N searched; beyond it a share counts as unreachable.

    Returns
    -------
    pandas.DataFrame
        ``selector, share, rho_total, n_needed`` (``inf`` when unreachable), ``reachable``,
        ``cost_per_query``, ``total_cost``, ``target_utility`` (``mu + share * oracle gap``),
        ``predicted_utility`` (at ``n_needed``; NaN when unreachable), ``oracle_utility_ref``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> d = NS(score="score_x", rho_total=0.8, alpha=0.0, beta=0.0, rho_plus=0.8,
    ...        rho_minus=0.0, rho_collapsed=0.0)
    >>> cal = NS(mu=0.1, c_sigma=0.05, shape="sqrt_log",
    ...          predict=lambda n: 0.1 + 0.05 * np.sqrt(np.log(n)))
    >>> plan_compute(d, cal, cost_per_candidate=2.0, shares=[0.5], include_oracle=False)[
    ...     ["n_needed", "cost_per_query"]].values.tolist()
    [[4.0, 8.0]]
    """
    from ttp_diag.theory import curve_shape, n_to_close_gap, total_correlation

    if not np.isfinite(cost_per_candidate) or cost_per_candidate < 0:
        raise ConfigError(f"cost_per_candidate must be a finite number >= 0; got "
                          f"{cost_per_candidate}")
    if not np.isfinite(scoring_cost) or scoring_cost < 0:
        raise ConfigError(f"scoring_cost must be a finite number >= 0; got {scoring_cost}")
    if int(n_ref) < 2:
        raise ConfigError(f"n_ref must be >= 2 (at N = 1 there is no oracle gap); got {n_ref}")
    shares = np.atleast_1d(np.asarray(shares, dtype=float))
    if np.any(~np.isfinite(shares)) or np.any(shares <= 0) or np.any(shares > 1):
        raise ConfigError(f"shares must lie in (0, 1]; got {shares.tolist()}")
    if isinstance(diagnostics, dict):
        items = list(diagnostics.items())
    elif isinstance(diagnostics, (list, tuple)):
        items = [(d.score, d) for d in diagnostics]
    else:
        items = [(diagnostics.score, diagnostics)]

    shape = calibration.shape
    mu, c_sigma = float(calibration.mu), float(calibration.c_sigma)
    oracle_ref = mu + c_sigma * float(curve_shape(int(n_ref), shape))
    entries = []
    for name, d in items:
        if refined:
            rho = float(d.rho_total)
        else:
            rho = total_correlation(d.alpha, d.beta, d.rho_plus, d.rho_minus, 0.0)
        entries.append((name, rho))
    if include_oracle:
        entries.append(("oracle", 1.0))

    rows = []
    unit = float(cost_per_candidate) + float(scoring_cost)
    for name, rho in entries:
        ns = np.atleast_1d(n_to_close_gap(shares, rho_total=rho, shape=shape, n_ref=int(n_ref),
                                          n_max=n_max))
        for share, n in zip(shares, ns, strict=True):
            reachable = bool(np.isfinite(n))
            pred = mu + rho * c_sigma * float(curve_shape(n, shape)) if reachable else np.nan
            rows.append({
                "selector": name,
                "share": float(share),
                "rho_total": rho,
                "n_needed": float(n),
                "reachable": reachable,
                "cost_per_query": float(n) * unit if reachable else np.inf,
                "total_cost": float(n) * unit * int(n_queries) if reachable else np.inf,
                "target_utility": mu + float(share) * (oracle_ref - mu),
                "predicted_utility": pred,
                "oracle_utility_ref": oracle_ref,
            })
    return pd.DataFrame(rows)
