"""Paired comparison of two selectors on the same queries, exactly.

The paper compares reward models by repeating Best-of-N sampling 10 times. The exact engine gives
each query's *expected* Best-of-N utility, so there is no sampling noise left within a query:
the only uncertainty is which users and queries were sampled. :func:`compare_selectors` takes the
per-query difference of the exact utilities, averages it per user (as the curve does), and gives

* a percentile bootstrap interval of the mean difference, resampling users;
* a two-sided p-value of a paired sign-flip randomisation test on the user means (under "no
  difference" each user's mean difference is as likely to have either sign), exact by
  enumeration for up to 12 users, Monte Carlo with ``n_boot`` flips otherwise.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from ..bon import bon_per_query
from ..table import validate_score_table

MIN_USERS = 5


#: users up to which the sign-flip test enumerates every sign pattern (2^12 = 4096)
EXACT_FLIP_USERS = 12


def sign_flip_pvalues(d: np.ndarray, *, n_flip: int = 2000,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Two-sided paired sign-flip p-values of the mean of each column of ``d``.

    ``d`` is (users, tests): one user-mean difference per row, one independent test per column
    (values of N in :func:`compare_selectors`, simulated experiments in the planner). Under "no
    difference" each user's mean difference is as likely to have either sign. Exact by
    enumeration up to :data:`EXACT_FLIP_USERS` users; otherwise ``n_flip`` random sign patterns
    (shared by the columns) with the +1 correction of a Monte Carlo test. A column that is 0 for
    every user is no evidence at all: p = 1.

    Examples
    --------
    >>> d = np.array([[0.1, 0.0], [0.2, 0.0], [0.3, 0.0], [0.4, 0.0], [0.5, 0.0]])
    >>> sign_flip_pvalues(d).tolist()  # all 5 positive: 2 of 32 patterns are as extreme
    [0.0625, 1.0]
    """
    d = np.asarray(d, dtype=float)
    nu = d.shape[0]
    obs = np.abs(d.mean(axis=0))
    if nu <= EXACT_FLIP_USERS:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=nu)))
        stat = np.abs(signs @ d / nu)
        p = (stat >= obs - 1e-15).mean(axis=0)
    else:
        rng = np.random.default_rng() if rng is None else rng
        signs = rng.choice((-1.0, 1.0), size=(int(n_flip), nu))
        stat = np.abs(signs @ d / nu)
        p = (1 + (stat >= obs - 1e-15).sum(axis=0)) / (1 + int(n_flip))
    return np.where(np.all(d == 0, axis=0), 1.0, p)


def compare_selectors(table: pd.DataFrame, a: str, b: str, ns, *, ci: float | None = 0.95,
                      n_boot: int = 2000, seed: int | None = 0, split: str | None = "val",
                      pool: str | None = None, validate: bool = True) -> pd.DataFrame:
    """Paired exact comparison of selectors ``a`` and ``b``: is ``a - b`` real?

    Parameters
    ----------
    table : pandas.DataFrame
        A score table.
    a, b : str
        Score columns, ``"oracle"`` or ``"random"``.
    ns : sequence of int
        Candidate counts N.
    ci : float or None, default 0.95
        Level of the bootstrap interval over users.
    n_boot : int, default 2000
        Bootstrap draws (and sign flips when the test is not enumerated).
    seed : int or None, default 0
    split : str or None, default "val"
    pool : {"error", "clip"}, optional
        Default "clip" when some pool is smaller than max(ns).
    validate : bool, default True

    Returns
    -------
    pandas.DataFrame
        One row per N: ``n``, ``utility_a``, ``utility_b``, ``diff``, ``ci_low``, ``ci_high``,
        ``p_value``, ``n_users``, ``n_queries``.

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=20, n_queries=6, n_candidates=8, seed=0)
    >>> res = td.compare_selectors(t, "score_prob", "score_det", [1, 8], n_boot=200)
    >>> abs(float(res["diff"].iloc[0])) < 1e-15, bool(res["p_value"].iloc[1] < 0.05)
    (True, True)
    """
    if ci is not None and not (isinstance(ci, (int, float)) and 0 < ci < 1):
        raise ValueError(f"ci must be a confidence level in (0, 1), e.g. 0.95, or None; "
                         f"got {ci!r}.")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number >= 1; got {n_boot!r}.")
    if validate:
        table = validate_score_table(table, scores=[c for c in (a, b)
                                                    if c not in ("oracle", "random")],
                                     split=split)
    ns = [int(n) for n in ns]
    if pool is None:
        pool = "clip" if max(ns) > int(table.groupby("query_id").size().min()) else "error"
    ua = bon_per_query(table, a, ns, split=None, pool=pool, validate=False)
    ub = bon_per_query(table, b, ns, split=None, pool=pool, validate=False)
    nn = len(ns)
    users, u_codes = np.unique(ua["user_id"].to_numpy()[::nn], return_inverse=True)
    nu, nq = len(users), len(u_codes)
    cnt = np.bincount(u_codes, minlength=nu).astype(float)

    def user_means(values: np.ndarray) -> np.ndarray:
        v = values.reshape(nq, nn)
        return np.stack([np.bincount(u_codes, weights=v[:, j], minlength=nu) for j in range(nn)],
                        axis=1) / cnt[:, None]

    ma, mb = user_means(ua["utility"].to_numpy()), user_means(ub["utility"].to_numpy())
    d = ma - mb
    out = pd.DataFrame({"n": ns, "utility_a": ma.mean(axis=0), "utility_b": mb.mean(axis=0),
                        "diff": d.mean(axis=0)})
    rng = np.random.default_rng(seed)
    if nu < MIN_USERS:
        warnings.warn(f"only {nu} user(s): no honest interval or p-value over users; NaN "
                      f"returned (need >= {MIN_USERS}).", RuntimeWarning, stacklevel=2)
        out["ci_low"] = out["ci_high"] = out["p_value"] = np.nan
    else:
        if ci is not None:
            draws = rng.multinomial(nu, np.full(nu, 1.0 / nu), size=int(n_boot)) @ d / nu
            tail = (1.0 - ci) / 2.0
            out["ci_low"] = np.quantile(draws, tail, axis=0)
            out["ci_high"] = np.quantile(draws, 1.0 - tail, axis=0)
        else:
            out["ci_low"] = out["ci_high"] = np.nan
        out["p_value"] = sign_flip_pvalues(d, n_flip=int(n_boot), rng=rng)
    out["n_users"] = nu
    out["n_queries"] = nq
    return out
