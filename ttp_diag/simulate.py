"""Simulated score tables with known collapse and hacking, for tests, demos and planning.

The generative model follows the assumptions of the paper's theory, so the truth is known:

* user u has a mean reward ``mu_u ~ N(mu, user_mu_sd^2)`` and a within-query spread ``sigma_u``
  (``sigma`` for every user unless ``collapsed_sigma_ratio`` < 1, which gives the users that
  collapse first a smaller spread, as the paper observes for deterministic reward models);
* each query has ``n_candidates`` candidates with true reward ``r = mu_u + sigma_u z``,
  ``z ~ N(0, 1)`` i.i.d.;
* a reward model scores a candidate ``s = mu_u + b_u (rho_q z + sqrt(1 - rho_q^2) e)`` with fresh
  ``e ~ N(0, 1)``, so the population correlation within the query is exactly ``rho_q``;
* per reward model, the ``round(alpha * n_users)`` users with the highest latent difficulty are
  collapsed: their scores are near-constant (``b_u = sigma_u / 100`` instead of ``sigma_u``) with
  correlation ``rho_collapsed``; among the other users, ``round(beta * q)`` of each user's ``q``
  queries per split are hacked (``rho_q = rho_minus``) and the rest have ``rho_q = rho_plus``;
* a probabilistic model gets a ``var_<rm>`` column that grows with its absolute error.

Known-truth settings beyond the paper's assumptions (issue 8): ``query_mu_sd`` gives each query
its own mean reward (difficulty), which every model's score follows and which a
``collapse="difficulty"`` model's collapsed users follow *only*; ``zero_rate`` sets the rewards
of the worst candidates (latent z below that quantile) to 0, like ROUGE on failed outputs;
``n_queries`` may give each user its own number of validation queries.

Under these assumptions the exact Best-of-N curve is
``mu + [(1-alpha)((1-beta) rho_plus + beta rho_minus) + alpha rho_collapsed] sigma E[max_N]``
(up to the finite-sample noise of the pools), which is what the tests check the package
recovers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError


@dataclass(frozen=True)
class SimulatedRM:
    """Known failure rates and correlations of one simulated reward model."""

    alpha: float = 0.0
    beta: float = 0.0
    rho_plus: float = 0.6
    rho_minus: float = -0.3
    rho_collapsed: float = 0.0
    with_variance: bool = False
    #: "flat": a collapsed user's scores are near-constant; "difficulty": they follow the query's
    #: mean reward (the model scores the query, not the candidate), which gives a high pooled
    #: rho_u although the within-query correlation is ``rho_collapsed`` (needs query_mu_sd > 0)
    collapse: str = "flat"

    def __post_init__(self) -> None:
        from ._checks import check_real

        for name in ("alpha", "beta"):
            check_real(getattr(self, name), f"SimulatedRM.{name}", low=0, high=1,
                       what="a rate")
        for name in ("rho_plus", "rho_minus", "rho_collapsed"):
            check_real(getattr(self, name), f"SimulatedRM.{name}", low=-1, high=1,
                       what="a correlation")

    @property
    def rho_total(self) -> float:
        rho_eff = (1 - self.beta) * self.rho_plus + self.beta * self.rho_minus
        return (1 - self.alpha) * rho_eff + self.alpha * self.rho_collapsed


#: The default trio mimics the paper's qualitative findings: the global model is stable but
#: weakly personal, the deterministic user model collapses and hacks, the probabilistic one
#: does neither.
DEFAULT_MODELS = {
    "global": SimulatedRM(alpha=0.0, beta=0.3, rho_plus=0.4, rho_minus=-0.2),
    "det": SimulatedRM(alpha=0.25, beta=0.3, rho_plus=0.6, rho_minus=-0.3, rho_collapsed=-0.03),
    "prob": SimulatedRM(alpha=0.0, beta=0.1, rho_plus=0.6, rho_minus=-0.15, with_variance=True),
}


def simulate_score_table(n_users: int = 40, n_queries: int = 10, n_candidates: int = 30, *,
                         n_train_queries: int | None = None, models: dict | None = None,
                         mu: float = 0.15, sigma: float = 0.05, user_mu_sd: float = 0.02,
                         collapsed_sigma_ratio: float = 1.0, clip: bool = False,
                         query_mu_sd: float = 0.0, zero_rate: float = 0.0,
                         seed: int = 0) -> pd.DataFrame:
    """A score table drawn from the theory's own assumptions, with known truth.

    Parameters
    ----------
    n_users : int
        Users.
    n_queries : int or sequence of int
        Validation queries per user (``split == "val"``); a sequence gives each user its own
        count (length ``n_users``).
    n_candidates : int
        Candidates per query (the pool size).
    n_train_queries : int, optional
        Training queries per user (``split == "train"``); default ``n_queries``.
    models : dict of str -> SimulatedRM, optional
        Reward models to simulate; column ``score_<name>`` (and ``var_<name>`` when
        ``with_variance``). Default :data:`DEFAULT_MODELS` (global, det, prob).
    mu, sigma : float
        Mean reward and within-query standard deviation.
    user_mu_sd : float
        Spread of the user means.
    collapsed_sigma_ratio : float, default 1.0
        Spread of the hardest user relative to the easiest, in (0, 1]; below 1 the users that
        collapse (the hardest) get lower label variance. Keep 1 for exact-theory checks.
    clip : bool, default False
        Clip rewards to [0, 1] like ROUGE (breaks exact normality near 0).
    query_mu_sd : float, default 0
        Spread of per-query mean rewards (query difficulty), followed by every model's scores.
    zero_rate : float, default 0
        Share of candidates (the lowest latent quality) whose reward is set to 0.
    seed : int

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``query_id``, ``cand_id``, ``split``, ``reward``, ``score_<rm>``,
        ``var_<rm>``, plus ``difficulty`` (latent, per user) for reference.

    Examples
    --------
    >>> t = simulate_score_table(n_users=3, n_queries=2, n_candidates=4, seed=0)
    >>> t.shape[0], sorted(c for c in t.columns if c.startswith("score_"))
    (48, ['score_det', 'score_global', 'score_prob'])
    """
    from ._checks import check_int, check_real, check_seed

    n_users = check_int(n_users, "n_users", what="a number of users")
    n_candidates = check_int(n_candidates, "n_candidates", minimum=2,
                             what="a number of candidates per query")
    n_train_queries = check_int(n_train_queries, "n_train_queries", minimum=0,
                                what="a number of train queries", allow_none=True)
    if np.ndim(n_queries) == 0:
        n_queries = check_int(n_queries, "n_queries", what="a number of queries per user")
    for name, v in (("mu", mu), ("sigma", sigma), ("user_mu_sd", user_mu_sd),
                    ("query_mu_sd", query_mu_sd)):
        check_real(v, name, low=None if name == "mu" else 0,
                   low_open=name == "sigma", what="a number")
    seed = check_seed(seed)
    n_val = np.broadcast_to(np.asarray(n_queries, dtype=int), (n_users,)).copy() \
        if np.ndim(n_queries) == 0 else np.asarray(n_queries, dtype=int)
    if n_users < 1 or n_val.shape != (n_users,) or np.any(n_val < 1) or n_candidates < 2:
        raise ConfigError("need n_users >= 1, n_queries >= 1 (one per user when a sequence) and "
                         "n_candidates >= 2.")
    if not 0 < collapsed_sigma_ratio <= 1:
        raise ConfigError(f"collapsed_sigma_ratio must be in (0, 1]; got {collapsed_sigma_ratio}.")
    if not 0 <= zero_rate < 1 or query_mu_sd < 0:
        raise ConfigError(f"need 0 <= zero_rate < 1 and query_mu_sd >= 0; got {zero_rate}, "
                         f"{query_mu_sd}.")
    models = DEFAULT_MODELS if models is None else models
    n_tr = n_val.copy() if n_train_queries is None else np.full(n_users, int(n_train_queries))
    rng = np.random.default_rng(seed)

    difficulty = rng.permutation(n_users) / max(n_users - 1, 1)  # 0 easiest .. 1 hardest
    mu_u = mu + user_mu_sd * rng.standard_normal(n_users)
    sigma_u = sigma * (1.0 - (1.0 - collapsed_sigma_ratio) * difficulty)

    q_per_user = n_tr + n_val
    splits_u = [np.array(["train"] * int(a) + ["val"] * int(b))
                for a, b in zip(n_tr, n_val, strict=True)]
    rows_per_user = q_per_user * n_candidates
    n_rows = int(rows_per_user.sum())
    user_idx = np.repeat(np.arange(n_users), rows_per_user)
    q_local = np.concatenate([np.repeat(np.arange(k), n_candidates) for k in q_per_user])
    z = rng.standard_normal(n_rows)
    q_offset = np.concatenate(([0], np.cumsum(q_per_user)[:-1]))
    q_global = q_offset[user_idx] + q_local
    d_q = (query_mu_sd * rng.standard_normal(int(q_per_user.sum())) if query_mu_sd > 0
           else np.zeros(int(q_per_user.sum())))
    reward = mu_u[user_idx] + d_q[q_global] + sigma_u[user_idx] * z
    if zero_rate > 0:
        from scipy import special
        reward = np.where(z < special.ndtri(zero_rate), 0.0, reward)
    if clip:
        reward = np.clip(reward, 0.0, 1.0)
    table = pd.DataFrame({
        "user_id": np.char.add("user_", np.char.zfill(user_idx.astype(str), 3)),
        "query_id": np.char.add(
            np.char.add("user_", np.char.zfill(user_idx.astype(str), 3)),
            np.char.add("/q", np.char.zfill(q_local.astype(str), 3))),
        "cand_id": np.tile(np.arange(n_candidates), int(q_per_user.sum())),
        "split": np.repeat(np.concatenate(splits_u), n_candidates),
        "reward": reward,
    })
    order = np.argsort(-difficulty, kind="stable")  # hardest first
    for name, rm in models.items():
        collapsed = np.zeros(n_users, dtype=bool)
        collapsed[order[: int(round(rm.alpha * n_users))]] = True
        rho_q = np.empty(int(q_per_user.sum()))
        for u in range(n_users):
            sl = slice(q_offset[u], q_offset[u] + q_per_user[u])
            if collapsed[u]:
                rho_q[sl] = rm.rho_collapsed
                continue
            block = np.empty(q_per_user[u])
            for split_name in ("train", "val"):
                idx = np.flatnonzero(splits_u[u] == split_name)
                n_hack = int(round(rm.beta * idx.size))
                hacked = rng.choice(idx, size=n_hack, replace=False)
                block[idx] = rm.rho_plus
                block[hacked] = rm.rho_minus
            rho_q[sl] = block
        rho_rows = rho_q[q_global]
        e = rng.standard_normal(n_rows)
        latent = rho_rows * z + np.sqrt(1.0 - rho_rows ** 2) * e
        # scores live on the reward scale, as a regression reward model's do; a collapsed
        # user's are squeezed to 1/100 of the spread (near-constant predictions)
        b_u = np.where(collapsed[user_idx], 0.01, 1.0) * sigma_u[user_idx]
        if rm.collapse not in ("flat", "difficulty"):
            raise ConfigError(f"collapse must be 'flat' or 'difficulty'; got {rm.collapse!r}.")
        # every model follows the query's difficulty, except a flat-collapsed user's
        track = ~collapsed[user_idx] | (rm.collapse == "difficulty")
        score = mu_u[user_idx] + track * d_q[q_global] + b_u * latent
        table[f"score_{name}"] = score
        if rm.with_variance:
            # predicted variance grows with the model's own error, as a learned variance head's does
            err = np.abs(score - reward)
            table[f"var_{name}"] = 1e-4 + 0.5 * err**2 + 0.8 * sigma**2 * rng.random(n_rows)
    table["difficulty"] = difficulty[user_idx]
    return table


# --------------------------------------------------------------------------------------------
# Heterogeneous pools (issue 21): candidates from several systems per query
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeteroProxy:
    """A proxy score of a heterogeneous pool, with its own correlation between and within systems.

    ``rho_between``: correlation of the proxy's per-(query, system) part with the system's true
    quality in that query; ``rho_within``: correlation of its per-candidate part with the
    candidate's deviation from its system. ``between_sd`` and ``within_sd`` scale the two parts.
    """

    rho_between: float = 0.0
    rho_within: float = 0.0
    between_sd: float = 1.0
    within_sd: float = 1.0


#: "between" tells good systems from bad (and its system part dominates the score) but not the
#: best candidates apart; "within" the reverse; "both" is informative at both levels
DEFAULT_HETERO_PROXIES = {
    "between": HeteroProxy(rho_between=0.9, rho_within=0.0, between_sd=2.0),
    "within": HeteroProxy(rho_between=0.0, rho_within=0.8, between_sd=0.5),
    "both": HeteroProxy(rho_between=0.6, rho_within=0.6),
}


def simulate_heterogeneous_table(n_users: int = 40, n_queries: int = 10, *,
                                 offsets: tuple[float, ...] = (-0.08, -0.04, 0.0, 0.03),
                                 spreads: tuple[float, ...] = (0.02, 0.03, 0.04, 0.05),
                                 per_system: int = 4, system_sd: float = 0.02,
                                 proxies: dict | None = None, mu: float = 0.15,
                                 user_mu_sd: float = 0.02, seed: int = 0) -> pd.DataFrame:
    """A score table whose pools mix K systems, with known between/within-system correlations.

    Generative model (K = ``len(offsets)`` systems, each contributing ``per_system``
    candidates to every query, so pools hold ``K * per_system`` candidates):

    * user u has a mean reward ``mu_u ~ N(mu, user_mu_sd^2)``;
    * in query q, system k has quality ``m_qk = offsets[k] + system_sd * xi_qk`` (the systems'
      order changes from query to query when ``system_sd`` is comparable to the offsets' gaps);
    * candidate j of system k has true reward ``r = mu_u + m_qk + spreads[k] * z``,
      ``z ~ N(0, 1)`` i.i.d.;
    * a proxy ``p`` (:class:`HeteroProxy`) scores it
      ``s = between_sd (rho_between m~_qk + sqrt(1 - rho_between^2) eta_qk)
      + within_sd (rho_within z + sqrt(1 - rho_within^2) e)`` with ``m~_qk`` the standardized
      system quality ``(m_qk - mean(offsets)) / sqrt(var(offsets) + system_sd^2)`` and fresh
      ``eta_qk, e ~ N(0, 1)``.

    With one system (``offsets=(0,)``) this is the i.i.d. Gaussian model of the paper's theory
    with ``rho = rho_within``; with several, the reward is a mixture and the proxy's top
    candidates are not those a single correlation implies, which is where the paper's law
    fails and :func:`ttp_diag.fit_concomitant` does not.

    Parameters
    ----------
    n_users, n_queries : int
        Users and validation queries per user.
    offsets, spreads : sequence of float
        Per-system mean quality offset and within-system reward SD (same length K).
    per_system : int
        Candidates per system and query.
    system_sd : float
        SD of a system's quality from query to query.
    proxies : dict of str -> HeteroProxy, optional
        Default :data:`DEFAULT_HETERO_PROXIES` (``between``, ``within``, ``both``).
    mu, user_mu_sd : float
    seed : int

    Returns
    -------
    pandas.DataFrame
        ``user_id, query_id, cand_id, system, split ("val"), reward, score_<name>``.

    Examples
    --------
    >>> t = simulate_heterogeneous_table(n_users=2, n_queries=3, seed=0)
    >>> t.shape, sorted(t["system"].unique().tolist())
    ((96, 9), [0, 1, 2, 3])
    """
    off = np.asarray(offsets, dtype=float)
    sp = np.asarray(spreads, dtype=float)
    k = off.size
    if k < 1 or sp.shape != off.shape or np.any(sp <= 0):
        raise ConfigError(f"offsets and spreads must have the same length K >= 1 and spreads "
                          f"must be > 0; got offsets={list(offsets)}, spreads={list(spreads)}.")
    if n_users < 1 or n_queries < 1 or per_system < 1 or k * per_system < 2:
        raise ConfigError(f"need n_users, n_queries, per_system >= 1 and at least 2 candidates "
                          f"per query; got {n_users}, {n_queries}, {per_system} (K={k}).")
    if system_sd < 0:
        raise ConfigError(f"system_sd must be >= 0; got {system_sd}.")
    proxies = DEFAULT_HETERO_PROXIES if proxies is None else proxies
    for name, p in proxies.items():
        if not (-1 <= p.rho_between <= 1 and -1 <= p.rho_within <= 1):
            raise ConfigError(f"proxy {name!r}: correlations must lie in [-1, 1]; got "
                              f"rho_between={p.rho_between}, rho_within={p.rho_within}.")
    rng = np.random.default_rng(seed)
    n_q = n_users * n_queries
    m = k * per_system
    mu_u = mu + user_mu_sd * rng.standard_normal(n_users)
    quality = off[None, :] + system_sd * rng.standard_normal((n_q, k))  # (query, system)
    scale = np.sqrt(off.var() + system_sd ** 2)
    std_quality = (quality - off.mean()) / scale if scale > 0 else np.zeros_like(quality)
    system = np.tile(np.repeat(np.arange(k), per_system), n_q)
    q_idx = np.repeat(np.arange(n_q), m)
    u_idx = q_idx // n_queries
    z = rng.standard_normal(n_q * m)
    reward = mu_u[u_idx] + quality[q_idx, system] + sp[system] * z
    uid = np.char.add("user_", np.char.zfill(u_idx.astype(str), 3))
    table = pd.DataFrame({
        "user_id": uid,
        "query_id": np.char.add(np.char.add(uid, "/q"),
                                np.char.zfill((q_idx % n_queries).astype(str), 3)),
        "cand_id": np.tile(np.arange(m), n_q), "system": system, "split": "val",
        "reward": reward})
    for name, p in proxies.items():
        eta = rng.standard_normal((n_q, k))
        e = rng.standard_normal(n_q * m)
        between = p.rho_between * std_quality + np.sqrt(1 - p.rho_between ** 2) * eta
        within = p.rho_within * z + np.sqrt(1 - p.rho_within ** 2) * e
        table[f"score_{name}"] = p.between_sd * between[q_idx, system] + p.within_sd * within
    return table
