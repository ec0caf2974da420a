"""The four diagnostic quantities of the unified scaling law, from a score table.

For a reward model's score column, :func:`diagnose` measures

* per-user correlation rho_u (Definition 4.1) and the collapse rate ``alpha`` = fraction of users
  with rho_u < ``collapse_threshold`` (0.1 in the paper);
* per-query correlation rho_q across a query's candidates and the hacking rate ``beta`` = fraction
  of the non-collapsed users' queries with rho_q < 0 (Assumption A.6: collapse absorbs hacking);
* ``rho_plus`` / ``rho_minus``: mean rho_q of non-hacked / hacked queries of non-collapsed users;
* ``rho_collapsed``: mean rho_u of collapsed users (the refinement of Eq. 30);
* ``mu`` (random-selection utility) and ``sigma`` (mean over users of the user's mean
  within-query standard deviation of the true reward).

A correlation is undefined when the scores or rewards it is computed from are constant. Such a
correlation is set to 0 (a reward model that cannot tell candidates apart gives no signal, so the
user counts as collapsed), and the number of times this happened is reported in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .table import prepare, validate_score_table
from .theory.laws import effective_correlation

RHO_U_METHODS = ("pooled", "mean_query")


def _group_corr(codes: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int):
    """Pearson correlation of x and y within each group; (rho, undefined mask)."""
    cnt = np.bincount(codes, minlength=n_groups).astype(float)
    mx = np.bincount(codes, weights=x, minlength=n_groups) / cnt
    my = np.bincount(codes, weights=y, minlength=n_groups) / cnt
    dx = x - mx[codes]
    dy = y - my[codes]
    sxx = np.bincount(codes, weights=dx * dx, minlength=n_groups)
    syy = np.bincount(codes, weights=dy * dy, minlength=n_groups)
    sxy = np.bincount(codes, weights=dx * dy, minlength=n_groups)
    # A spread at rounding level of the values counts as constant: their correlation is noise.
    scale_x = np.bincount(codes, weights=x * x, minlength=n_groups) + 1e-300
    scale_y = np.bincount(codes, weights=y * y, minlength=n_groups) + 1e-300
    undefined = (sxx <= 1e-24 * scale_x) | (syy <= 1e-24 * scale_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(undefined, 0.0, sxy / np.sqrt(sxx * syy))
    return np.clip(rho, -1.0, 1.0), undefined


def _group_std(codes: np.ndarray, x: np.ndarray, n_groups: int, ddof: int = 1) -> np.ndarray:
    cnt = np.bincount(codes, minlength=n_groups).astype(float)
    mean = np.bincount(codes, weights=x, minlength=n_groups) / cnt
    ss = np.bincount(codes, weights=(x - mean[codes]) ** 2, minlength=n_groups)
    return np.sqrt(ss / np.maximum(cnt - ddof, 1.0))


@dataclass
class Diagnostics:
    """Diagnostic quantities of one reward model (see :func:`diagnose`)."""

    score: str
    alpha: float
    beta: float
    rho_plus: float
    rho_minus: float
    rho_collapsed: float
    rho_eff: float
    rho_total: float
    mu: float
    sigma: float
    n_users: int
    n_queries: int
    n_undefined_users: int
    n_undefined_queries: int
    collapse_threshold: float
    rho_u_method: str
    per_user: pd.DataFrame = field(repr=False)
    per_query: pd.DataFrame = field(repr=False)
    notes: list = field(default_factory=list, repr=False)

    @property
    def n_collapsed(self) -> int:
        return int(self.per_user["collapsed"].sum())

    @property
    def n_hacked(self) -> int:
        return int(self.per_query["hacked"].sum())

    def to_dict(self) -> dict:
        """The scalar quantities as a plain dict (JSON-serialisable)."""
        keys = ("score", "alpha", "beta", "rho_plus", "rho_minus", "rho_collapsed", "rho_eff",
                "rho_total", "mu", "sigma", "n_users", "n_queries", "n_undefined_users",
                "n_undefined_queries", "collapse_threshold", "rho_u_method")
        out = {k: getattr(self, k) for k in keys}
        for k, v in out.items():
            if isinstance(v, (np.floating, np.integer)):
                out[k] = v.item()
        out["notes"] = list(self.notes)
        return out

    def summary(self) -> str:
        """A readable multi-line summary."""
        lines = [
            f"Diagnostics of {self.score}: {self.n_users} users, {self.n_queries} queries",
            f"  collapse rate alpha   = {self.alpha:.3f}  ({self.n_collapsed} users with rho_u < "
            f"{self.collapse_threshold:g}; rho_u {self.rho_u_method})",
            f"  hacking rate  beta    = {self.beta:.3f}  ({self.n_hacked} queries of "
            f"non-collapsed users with rho_q < 0)",
            f"  rho_plus              = {self.rho_plus:+.3f}",
            f"  rho_minus             = {self.rho_minus:+.3f}",
            f"  rho_collapsed         = {self.rho_collapsed:+.3f}",
            f"  rho_eff               = {self.rho_eff:+.3f}   (1-beta) rho_plus - beta|rho_minus|",
            f"  rho_total             = {self.rho_total:+.3f}   (1-alpha) rho_eff + alpha "
            f"rho_collapsed",
            f"  mu (random)           = {self.mu:.4f}",
            f"  sigma (within-query)  = {self.sigma:.4f}",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.summary()


def diagnose(table: pd.DataFrame, score: str, *, collapse_threshold: float = 0.1,
             rho_u: str = "pooled", split: str | None = "val",
             validate: bool = True) -> Diagnostics:
    """Measure collapse, hacking and the correlations of the unified scaling law.

    Parameters
    ----------
    table : pandas.DataFrame
        A score table (see :mod:`ttp_diag.table`).
    score : str
        The reward model's score column, or ``"oracle"``.
    collapse_threshold : float, default 0.1
        Users with rho_u below this are collapsed (the paper's tau_c).
    rho_u : {"pooled", "mean_query"}, default "pooled"
        ``"pooled"``: correlation over all of the user's candidates (Definition 4.1);
        ``"mean_query"``: the mean of the user's per-query correlations (the text's "averaged over
        queries" reading).
    split : str or None, default "val"
        Split to analyse when the table has a ``split`` column.
    validate : bool, default True
        Validate the table first.

    Returns
    -------
    Diagnostics
        Scalars ``alpha``, ``beta``, ``rho_plus``, ``rho_minus``, ``rho_collapsed``,
        ``rho_eff``, ``rho_total``, ``mu``, ``sigma``; tidy ``per_user`` and ``per_query``
        frames; ``summary()``.

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=20, n_queries=8, n_candidates=16, seed=0)
    >>> d = diagnose(t, "score_prob")
    >>> 0.0 <= d.alpha <= 1.0 and 0.0 <= d.beta <= 1.0
    True
    """
    if rho_u not in RHO_U_METHODS:
        raise ValueError(f"rho_u must be one of {RHO_U_METHODS}; got {rho_u!r}.")
    if not np.isfinite(collapse_threshold) or not -1.0 <= collapse_threshold <= 1.0:
        raise ValueError(f"collapse_threshold must be in [-1, 1]; got {collapse_threshold}.")
    if score == "random":
        raise ValueError("'random' has no scores to correlate; diagnose a score column or "
                         "'oracle'.")
    if validate:
        table = validate_score_table(table, scores=[score], split=split)
    prep = prepare(table)
    r = prep.reward
    s = r if score == "oracle" else table[score].to_numpy(dtype=float)
    q, nq, nu = prep.q_codes, prep.n_queries, prep.n_users
    u_rows = prep.user_of_query[q]

    rho_q, undef_q = _group_corr(q, s, r, nq)
    mu_q = np.bincount(q, weights=r, minlength=nq) / prep.pool_sizes
    sigma_q = _group_std(q, r, nq)
    q_per_user = np.bincount(prep.user_of_query, minlength=nu).astype(float)

    if rho_u == "pooled":
        rho_user, undef_u = _group_corr(u_rows, s, r, nu)
    else:
        rho_user = np.bincount(prep.user_of_query, weights=rho_q, minlength=nu) / q_per_user
        # undefined only when every one of the user's queries was undefined
        undef_u = np.bincount(prep.user_of_query, weights=undef_q, minlength=nu) == q_per_user
    collapsed = rho_user < collapse_threshold
    mu_u = np.bincount(prep.user_of_query, weights=mu_q, minlength=nu) / q_per_user
    sigma_u = np.bincount(prep.user_of_query, weights=sigma_q, minlength=nu) / q_per_user
    label_std = _group_std(u_rows, r, nu)

    user_collapsed_q = collapsed[prep.user_of_query]
    active = ~user_collapsed_q
    hacked = active & (rho_q < 0)
    notes = []
    n_active = int(active.sum())
    if n_active:
        beta = float(hacked.sum() / n_active)
        pos = active & ~hacked
        rho_plus = float(rho_q[pos].mean()) if pos.any() else 0.0
        rho_minus = float(rho_q[hacked].mean()) if hacked.any() else 0.0
    else:
        beta, rho_plus, rho_minus = 0.0, 0.0, 0.0
        notes.append("every user is collapsed: beta, rho_plus and rho_minus are set to 0 "
                     "(no non-collapsed queries to measure them on).")
    alpha = float(collapsed.mean())
    rho_collapsed = float(rho_user[collapsed].mean()) if collapsed.any() else 0.0
    rho_eff = effective_correlation(beta, rho_plus, rho_minus)
    rho_total = (1.0 - alpha) * rho_eff + alpha * rho_collapsed
    if undef_u.any():
        notes.append(f"{int(undef_u.sum())} of {nu} users had constant scores or rewards; their "
                     f"rho_u is undefined and was set to 0 (counted as collapsed when 0 < "
                     f"threshold).")
    if undef_q.any():
        notes.append(f"{int(undef_q.sum())} of {nq} queries had constant scores or rewards; their "
                     f"rho_q is undefined and was set to 0 (never counted as hacked).")

    per_user = pd.DataFrame({
        "user_id": prep.user_ids,
        "rho_u": rho_user,
        "collapsed": collapsed,
        "undefined": undef_u,
        "n_queries": q_per_user.astype(int),
        "n_candidates": np.bincount(u_rows, minlength=nu),
        "mu_u": mu_u,
        "sigma_u": sigma_u,
        "label_std": label_std,
    })
    per_query = pd.DataFrame({
        "user_id": prep.user_ids[prep.user_of_query],
        "query_id": prep.query_ids,
        "rho_q": rho_q,
        "hacked": hacked,
        "user_collapsed": user_collapsed_q,
        "undefined": undef_q,
        "n_candidates": prep.pool_sizes,
        "mu_q": mu_q,
        "sigma_q": sigma_q,
    })
    return Diagnostics(
        score=score, alpha=alpha, beta=beta, rho_plus=rho_plus, rho_minus=rho_minus,
        rho_collapsed=rho_collapsed, rho_eff=rho_eff, rho_total=float(rho_total),
        mu=float(mu_u.mean()), sigma=float(sigma_u.mean()), n_users=nu, n_queries=nq,
        n_undefined_users=int(undef_u.sum()), n_undefined_queries=int(undef_q.sum()),
        collapse_threshold=float(collapse_threshold), rho_u_method=rho_u,
        per_user=per_user, per_query=per_query, notes=notes,
    )
