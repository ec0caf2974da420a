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

import warnings

import numpy as np
import pandas as pd

from ..bon import bon_per_query
from ..stats import MIN_USERS_FOR_CI as MIN_USERS
from ..stats import paired_difference
from ..table import validate_score_table


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
    from .._checks import check_boot_memory, check_ci, check_n_boot, check_ns, check_seed

    ci = check_ci(ci)
    n_boot = check_n_boot(n_boot, ci=ci)
    seed = check_seed(seed)
    ns = check_ns(ns)
    # draws and sign flips, n_boot x (users + N values), of the largest table a user could
    # pass: checked again with the real number of users below
    check_boot_memory(n_boot, 2 * len(ns))
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
    if nu < MIN_USERS:
        warnings.warn(f"only {nu} user(s): no honest interval or p-value over users; NaN "
                      f"returned (need >= {MIN_USERS}).", RuntimeWarning, stacklevel=2)
        out["ci_low"] = out["ci_high"] = out["p_value"] = np.nan
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # warned above
            res = paired_difference(ma, mb, ci=ci, n_boot=n_boot, seed=seed)
        out["ci_low"], out["ci_high"], out["p_value"] = res["ci_low"], res["ci_high"], \
            res["p_value"]
        out.attrs["p_draws"] = res["p_draws"]
    out["n_users"] = nu
    out["n_queries"] = nq
    return out
