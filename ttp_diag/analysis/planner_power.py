"""Simulation engine of the sample-size planner (:func:`ttp_diag.plan_sample`).

One simulated experiment is a design (users, queries per user, candidates per query) drawn
from a *source* of candidate pools, analysed with the package's own tests. Everything is
vectorised over the simulated experiments: pools are arrays of shape
``(sims, users * queries, candidates)``.

Sources
-------
* :class:`PilotPools` resamples a pilot score table: users with replacement, then each drawn
  user's queries with replacement (the two-level bootstrap of :mod:`ttp_diag.diagnostics`),
  then, when the design has fewer candidates than a pool, a random subset of the pool without
  replacement. The bootstrap world's truth is the pilot itself.
* :class:`LawPools` draws from the unified law's generative model: reward ``sigma x`` and score
  ``rho_q x + sqrt(1 - rho_q^2) e`` with standard normal ``x, e``; each user is collapsed with
  probability ``collapse`` (every query at ``rho_collapsed``), otherwise each query's
  correlation is drawn from a mixture (hacked at ``rho_minus`` with probability ``beta``, else
  ``rho_plus``, or the components of the pilot's fitted hierarchical mixture).

Analysis of one simulated experiment
------------------------------------
* Best-of-N utilities are exact (the weights ``C(m-1-k, N-1) / C(m, N)`` of rank ``k`` in a pool
  of ``m``; ties in the score averaged), as in :func:`ttp_diag.bon_curve`; ``N`` above a pool
  uses the whole pool (``pool="clip"``).
* Gains and differences: per-user mean over queries, tested by the paired sign-flip test of
  :func:`ttp_diag.compare_selectors` (:func:`ttp_diag.stats.sign_flip_test`).
* Collapse and hacking: the null model of :func:`ttp_diag.diagnose`
  (:func:`ttp_diag.diagnostics.inference.null_model`) on the simulated queries' correlations.
* The law's prediction of the gain, ``rho_total * (oracle - random)`` at N with ``rho_total`` the
  mean over users of each user's mean within-query correlation (the package's default
  ``rho_total``, see :func:`ttp_diag.diagnose`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ttp_diag.diagnostics import inference as inf
from ttp_diag.stats import sign_flip_test

__all__ = ["LawPools", "Mixture", "PilotPools", "bon_weights", "exact_bon", "row_corr",
           "simulate_design"]

#: elements of one (sims, queries, candidates) block; larger designs are simulated in chunks
CHUNK_ELEMENTS = 4_000_000


def bon_weights(m_max: int, n: int) -> np.ndarray:
    """Exact Best-of-``n`` weights by pool size: ``W[m, k]`` is the chance that rank ``k``
    (0 = best) of a pool of ``m`` is chosen; ``n > m`` uses the whole pool (weight 1 on rank 0).

    Examples
    --------
    >>> bon_weights(4, 2)[4].round(4).tolist()  # C(3-k, 1) / C(4, 2)
    [0.5, 0.3333, 0.1667, 0.0]
    """
    w = np.zeros((m_max + 1, m_max))
    k = np.arange(m_max)
    for m in range(1, m_max + 1):
        if n >= m:
            w[m, 0] = 1.0
        else:
            w[m, :m] = special.comb(m - 1 - k[:m], n - 1) / special.comb(m, n)
    return w


def exact_bon(reward: np.ndarray, score: np.ndarray, valid: np.ndarray, m_eff: np.ndarray,
              weights: np.ndarray) -> np.ndarray:
    """Exact expected Best-of-N reward of each pool (last axis), ties in the score averaged.

    ``valid`` marks the pool's candidates (the others are padding), ``m_eff`` the pool sizes,
    ``weights`` the table of :func:`bon_weights`.
    """
    shape = reward.shape
    m = shape[-1]
    key = np.where(valid, score, -np.inf)
    order = np.argsort(-key, axis=-1, kind="stable")
    s = np.take_along_axis(key, order, axis=-1).reshape(-1, m)
    r = np.take_along_axis(np.where(valid, reward, 0.0), order, axis=-1).reshape(-1, m)
    new = np.ones_like(s, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    if not new.all():  # average the reward over each group of tied scores
        gid = (np.cumsum(new, axis=1) - 1) + (np.arange(s.shape[0]) * m)[:, None]
        sums = np.bincount(gid.ravel(), weights=r.ravel(), minlength=s.size)
        cnt = np.bincount(gid.ravel(), minlength=s.size)
        r = (sums / np.maximum(cnt, 1))[gid]
    w = weights[m_eff.reshape(-1), :m]
    return (w * r).sum(axis=1).reshape(shape[:-1])


def row_corr(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation over the valid entries of the last axis; (rho, undefined), with
    rho = 0 where a pool's scores or rewards are constant (as :func:`ttp_diag.diagnose`)."""
    v = valid.astype(float)
    cnt = np.maximum(v.sum(axis=-1, keepdims=True), 1.0)
    dx = (x - (x * v).sum(axis=-1, keepdims=True) / cnt) * v
    dy = (y - (y * v).sum(axis=-1, keepdims=True) / cnt) * v
    sxx, syy, sxy = (dx * dx).sum(-1), (dy * dy).sum(-1), (dx * dy).sum(-1)
    scale_x = ((x * v) ** 2).sum(-1) + 1e-300
    scale_y = ((y * v) ** 2).sum(-1) + 1e-300
    undefined = (sxx <= 1e-24 * scale_x) | (syy <= 1e-24 * scale_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(undefined, 0.0, sxy / np.sqrt(sxx * syy))
    return np.clip(rho, -1.0, 1.0), undefined


@dataclass(frozen=True)
class Mixture:
    """Correlations of one reward model under the law: users collapsed with probability
    ``collapse`` (every query at ``rho_collapsed``); an active user's query takes correlation
    ``rhos[k]`` with probability ``shares[k]`` (component 0: the hacked one when < 0)."""

    collapse: float
    rho_collapsed: float
    shares: tuple[float, ...]
    rhos: tuple[float, ...]

    @classmethod
    def from_rm(cls, rm) -> Mixture:
        """From a :class:`ttp_diag.SimulatedRM` (alpha, beta, rho_plus, rho_minus, ...)."""
        return cls(float(rm.alpha), float(rm.rho_collapsed), (float(rm.beta), 1.0 - rm.beta),
                   (float(rm.rho_minus), float(rm.rho_plus)))

    @classmethod
    def from_fit(cls, fit: dict, alpha: float, beta: float, *,
                 fitted_collapse: bool = True) -> Mixture:
        """From :func:`ttp_diag.diagnostics.inference.joint_mixture`'s fit, with its snapped
        shares ``alpha`` (collapse) and ``beta`` (hacking). Without a fitted collapsed
        component (``fitted_collapse=False``) collapsed users get correlation 0."""
        p = np.asarray(fit["p"], dtype=float).copy()
        if beta == 0.0:
            p[0] = 0.0
        elif beta == 1.0:
            p[:] = 0.0
            p[0] = 1.0
        p /= p.sum()
        rho_c = float(np.tanh(fit["m_c"])) if fitted_collapse else 0.0
        return cls(float(alpha), rho_c, tuple(p.tolist()),
                   tuple(np.tanh(np.asarray(fit["m"], dtype=float)).tolist()))

    @property
    def alpha(self) -> float:
        return self.collapse

    @property
    def beta(self) -> float:
        return float(self.shares[0]) if self.rhos[0] < 0 else 0.0

    @property
    def rho_total(self) -> float:
        active = float(np.dot(self.shares, self.rhos))
        return (1.0 - self.collapse) * active + self.collapse * self.rho_collapsed

    def draw_rho(self, rng: np.random.Generator, sims: int, n_users: int,
                 n_queries: int) -> np.ndarray:
        """True correlation of every query, (sims, n_users * n_queries)."""
        collapsed = rng.random((sims, n_users)) < self.collapse
        comp = np.searchsorted(np.cumsum(self.shares)[:-1],
                               rng.random((sims, n_users * n_queries)), side="right")
        rho = np.asarray(self.rhos)[comp]
        return np.where(np.repeat(collapsed, n_queries, axis=1), self.rho_collapsed, rho)


class LawPools:
    """Candidate pools drawn from the law (see the module docstring)."""

    kind = "law"

    def __init__(self, mixtures: dict[str, Mixture], sigma: float = 1.0):
        self.mixtures = dict(mixtures)
        self.sigma = float(sigma)

    def draw(self, rng: np.random.Generator, sims: int, n_users: int, n_queries: int,
             n_cand: int, selectors) -> dict:
        k = n_users * n_queries
        x = rng.standard_normal((sims, k, n_cand))
        out = {"reward": self.sigma * x, "valid": np.ones(x.shape, dtype=bool),
               "m_eff": np.full((sims, k), n_cand), "scores": {}}
        for name in selectors:
            rho = self.mixtures[name].draw_rho(rng, sims, n_users, n_queries)[..., None]
            e = rng.standard_normal(x.shape)
            out["scores"][name] = rho * x + np.sqrt(1.0 - rho**2) * e
        return out


class PilotPools:
    """Candidate pools resampled from a pilot score table (see the module docstring)."""

    kind = "pilot"

    def __init__(self, table, selectors):
        from ttp_diag.table import as_score_table

        st = as_score_table(table, scores=list(selectors), split=None, validate=False)
        prep = st.prepared
        q = prep.q_codes
        nq = prep.n_queries
        pool = np.bincount(q, minlength=nq)
        pos = np.arange(q.size) - np.concatenate(([0], np.cumsum(pool)[:-1]))[q] \
            if np.all(np.diff(q) >= 0) else _rank_within(q)
        width = int(pool.max())
        self.reward = np.zeros((nq, width))
        self.reward[q, pos] = prep.reward
        self.scores = {}
        for name in selectors:
            arr = np.zeros((nq, width))
            arr[q, pos] = st.values(name)
            self.scores[name] = arr
        self.valid = np.zeros((nq, width), dtype=bool)
        self.valid[q, pos] = True
        self.pool = pool
        uq = prep.user_of_query
        self.n_users = prep.n_users
        order = np.argsort(uq, kind="stable")
        self.user_queries = order
        self.user_count = np.bincount(uq, minlength=self.n_users)
        self.user_start = np.concatenate(([0], np.cumsum(self.user_count)[:-1]))
        self.user_of_query = uq
        self._cache: dict = {}

    def per_query(self, n: int, selectors) -> dict:
        """Each pilot query's exact utilities (random, oracle, the selectors) at Best-of-``n``
        and correlations on its whole pool: cached, since a design whose candidates cover
        every pool only resamples queries."""
        key = (n, tuple(selectors))
        if key not in self._cache:
            w = bon_weights(self.reward.shape[1], n)
            rew, valid, m = self.reward, self.valid, self.pool
            out = {"random": np.where(valid, rew, 0.0).sum(1) / m,
                   "oracle": exact_bon(rew, rew, valid, m, w), "util": {}, "rho": {}}
            for s in selectors:
                out["util"][s] = exact_bon(rew, self.scores[s], valid, m, w)
                out["rho"][s] = row_corr(self.scores[s], rew, valid)
            self._cache[key] = out
        return self._cache[key]

    def draw(self, rng: np.random.Generator, sims: int, n_users: int, n_queries: int,
             n_cand: int, selectors) -> dict:
        users = rng.integers(0, self.n_users, (sims, n_users))
        u = np.repeat(users, n_queries, axis=1)
        within = np.floor(rng.random(u.shape) * self.user_count[u]).astype(np.int64)
        qidx = self.user_queries[self.user_start[u] + within]  # (sims, K)
        width = self.reward.shape[1]
        m_eff = np.minimum(self.pool[qidx], n_cand)
        if n_cand >= width:  # whole pools: the per-query values are read from the cache
            return {"qidx": qidx, "m_eff": m_eff}
        # a random subset of n_cand of each pool (padding sorts last)
        keys = np.where(self.valid[qidx], rng.random(qidx.shape + (width,)), 2.0)
        take = np.argsort(keys, axis=-1)[..., :n_cand]
        q3 = qidx[..., None]
        return {"reward": self.reward[q3, take], "valid": self.valid[q3, take], "m_eff": m_eff,
                "scores": {name: self.scores[name][q3, take] for name in selectors}}


def _rank_within(codes: np.ndarray) -> np.ndarray:
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.empty(codes.size, dtype=np.int64)
    pos[order] = np.arange(codes.size) - np.repeat(starts, counts)
    return pos


def _user_means(values: np.ndarray, n_users: int, n_queries: int) -> np.ndarray:
    """(sims, users * queries) -> (sims, users): each user's mean over their queries."""
    return values.reshape(values.shape[0], n_users, n_queries).mean(axis=2)


def simulate_design(source, *, n_users: int, n_queries: int, n_cand: int, n: int,
                    questions: dict, sims: int, level: float = 0.05, share: float = 0.25,
                    threshold: float = 0.1, n_null: int = 39, n_flip: int = 1000,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Simulate ``sims`` experiments of one design; per question, one success flag per sim.

    ``questions`` maps a key to its spec: ``("gain", a, "random")``, ``("difference", a, b)``
    (either with a 4th element: a shift added to every query's difference, which moves the
    simulated world's mean difference to a planned value),
    ``("prediction", a, truth)`` (``truth``: the predicted gain the estimate should hit),
    ``("collapse", a)`` or ``("hacking", a)`` (``a`` must be a selector of ``source``).
    Success is a rejection at ``level`` (p <= level) for the tests and
    ``|estimate - truth| <= share * |truth|`` for the prediction.
    """
    sels = sorted({s for spec in questions.values()
                   for s in (spec[1:3] if spec[0] == "difference" else spec[1:2])})
    k = n_users * n_queries
    per_sim = max(1, CHUNK_ELEMENTS // max(k * n_cand, 1))
    weights = bon_weights(max(n_cand, 2), n)
    user = np.repeat(np.arange(n_users), n_queries)
    out: dict = {name: [] for name in questions}
    done = 0
    while done < sims:
        size = min(per_sim, sims - done)
        pools = source.draw(rng, size, n_users, n_queries, n_cand, sels)
        m_eff = pools["m_eff"]
        if "qidx" in pools:  # whole pools of a pilot: gather the cached per-query values
            qidx = pools["qidx"]
            cache = source.per_query(n, sels)
            random_u, oracle = cache["random"][qidx], cache["oracle"][qidx]
            util = {s: cache["util"][s][qidx] for s in sels}
            rho = {s: (cache["rho"][s][0][qidx], cache["rho"][s][1][qidx]) for s in sels}
        else:
            rew, valid = pools["reward"], pools["valid"]
            random_u = np.where(valid, rew, 0.0).sum(-1) / np.maximum(valid.sum(-1), 1)
            oracle = (exact_bon(rew, rew, valid, m_eff, weights)
                      if any(v[0] == "prediction" for v in questions.values()) else None)
            util = {s: exact_bon(rew, pools["scores"][s], valid, m_eff, weights) for s in sels
                    if any(v[0] in ("gain", "difference") and s in v[1:3]
                           for v in questions.values())}
            rho = {s: row_corr(pools["scores"][s], rew, valid) for s in sels
                   if any(v[0] not in ("gain", "difference") and v[1] == s
                          for v in questions.values())}
        nulls: dict = {}
        for name, spec in questions.items():
            kind, a = spec[0], spec[1]
            if kind in ("gain", "difference"):
                base = util[spec[2]] if kind == "difference" else random_u
                shift = float(spec[3]) if len(spec) > 3 else 0.0
                d = _user_means(util[a] - base + shift, n_users, n_queries)
                p = sign_flip_test(d.T, n_flips=n_flip, seed=rng)[0]
                out[name].append(p <= level + 1e-12)
            elif kind == "prediction":
                rho_total = _user_means(rho[a][0], n_users, n_queries).mean(axis=1)
                gain = _user_means(oracle - random_u, n_users, n_queries).mean(axis=1)
                truth = float(spec[2])
                out[name].append(np.abs(rho_total * gain - truth) <= share * abs(truth))
            elif kind in ("collapse", "hacking"):
                if a not in nulls:  # one null-model call gives both p-values
                    need_hacking = ("hacking", a) in {v[:2] for v in questions.values()}
                    nulls[a] = _null_pvalues(rho[a], m_eff, user, n_users, n_queries,
                                             threshold, n_null, rng, need_hacking)
                p = nulls[a][0 if kind == "collapse" else 1]
                out[name].append(np.isfinite(p) & (p <= level + 1e-12))
            else:  # pragma: no cover - specs are built by plan_sample
                raise ValueError(f"unknown planner question kind {kind!r}")  # internal
        done += size
    return {name: np.concatenate(v) for name, v in out.items()}


def _null_pvalues(rho, m_eff, user, n_users, n_queries, threshold, n_null, rng,
                  hacking=True):
    """Collapse and hacking p-values of :func:`inference.null_model`, one per simulation."""
    r, undef = rho
    pa, pb = np.empty(r.shape[0]), np.empty(r.shape[0])
    for i in range(r.shape[0]):
        qs = inf.QueryStats(rho=r[i], undefined=undef[i], pool=m_eff[i].astype(float),
                            user=user, n_users=n_users)
        collapsed = np.bincount(user, weights=r[i], minlength=n_users) / n_queries < threshold
        null = inf.null_model(qs, collapsed, {}, threshold=threshold, weights="user",
                              n_null=n_null, seed=int(rng.integers(2**31)), hacking=hacking)
        pa[i], pb[i] = null["alpha_p"], null["beta_p"]
    return pa, pb
