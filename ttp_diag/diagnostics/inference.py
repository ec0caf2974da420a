"""What the diagnostics are worth: estimates from query statistics, bootstrap, null model.

Everything here works on per-query statistics (rho_q, pool size, the query's exact Best-of-N
utilities), never on rows, so a bootstrap replicate costs a few array operations.

* :func:`estimate` computes every scalar of :func:`ttp_diag.diagnose` from a list of queries and
  their (pseudo-)users. The point estimate and each bootstrap replicate call the same code.
* :func:`two_level_indices` draws one replicate of the data's two-level structure: users with
  replacement, then each drawn user's queries with replacement.
* :func:`two_component` is the noise correction: the observed rho_q of a query is its true
  correlation plus sampling noise whose size is known from the pool (Fisher z, standard error
  ``1/sqrt(m - 3)``). A two-component mixture with those known errors, one component below the
  cut (hacked: true rho < 0; collapsed: true user correlation < threshold) and one above,
  estimates the share of *true* failures, where the paper's count also includes queries whose
  sample correlation fell below 0 by chance.
* :func:`null_model` simulates the same pools under "one shared correlation, no hacking" (and
  "one shared correlation, no collapse") and reports the expected counts and a Monte Carlo
  p-value of the observed ones.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special

_Z_CLIP = 0.9999  # |r| = 1 has an infinite Fisher z; cap it (it only arises in tiny pools)


@dataclass(frozen=True)
class QueryStats:
    """Per-query inputs of :func:`estimate` (arrays of length n_queries)."""

    rho: np.ndarray  # within-query Pearson correlation (0 where undefined)
    undefined: np.ndarray  # constant scores or rewards in the query
    pool: np.ndarray  # candidates per query
    user: np.ndarray  # user code of each query
    n_users: int
    util: np.ndarray | None = None  # (n_queries, 3, len(ns)): random, oracle, selector
    g: np.ndarray | None = None  # curve shape g(N) at ns

    @property
    def se_z(self) -> np.ndarray:
        """Standard error of the Fisher z of each query's correlation."""
        return 1.0 / np.sqrt(np.maximum(self.pool - 3.0, 1.0))


def fisher_z(r: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(r, -_Z_CLIP, _Z_CLIP))


def two_component(x: np.ndarray, se: np.ndarray, w: np.ndarray, split: float,
                  init: tuple | None = None, n_iter: int = 200,
                  tol: float = 1e-6) -> tuple[float, float, float]:
    """Two-component normal mixture with known per-observation errors, fitted by EM.

    Component "low" has mean <= ``split``, "high" mean >= ``split``; observation i is
    ``N(m_k, se_i^2)`` and carries weight ``w_i``. Returns (share of low, m_low, m_high).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(-0.3, 0.2, 300), rng.normal(0.7, 0.2, 700)]
    >>> p, lo, hi = two_component(x, np.full(1000, 0.2), np.ones(1000), 0.0)
    >>> round(p, 1), round(lo, 1), round(hi, 1)
    (0.3, -0.3, 0.7)
    """
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    inv_var = 1.0 / se**2
    below = x < split
    if init is None:
        p = float(np.clip(w[below].sum() / w.sum(), 0.02, 0.98))
        m_lo = float(np.average(x[below], weights=w[below])) if below.any() else split - 1.0
        m_hi = float(np.average(x[~below], weights=w[~below])) if (~below).any() else split + 1.0
    else:
        p, m_lo, m_hi = (float(v) for v in init)
        p = min(max(p, 0.02), 0.98)  # a share of exactly 0 or 1 never moves under EM
        m_lo = min(m_lo, split) if np.isfinite(m_lo) else split - 1.0
        m_hi = max(m_hi, split) if np.isfinite(m_hi) else split + 1.0
    wsum = float(w.sum())
    wiv = w * inv_var  # hoisted: the loop runs on small arrays, where call overhead dominates
    half_iv = 0.5 * inv_var
    wiv_sum, wiv_x = float(wiv.sum()), float(np.dot(wiv, x))
    for _ in range(n_iter):
        # log-odds of "low" for every observation; expit keeps far tails finite
        # ((x - hi)^2 - (x - lo)^2 = 2x(lo - hi) + hi^2 - lo^2)
        logit = (math.log(p) - math.log1p(-p)) + half_iv * (2.0 * (m_lo - m_hi) * x
                                                           + (m_hi * m_hi - m_lo * m_lo))
        resp = special.expit(logit)
        p_new = min(max(float(np.dot(w, resp)) / wsum, 1e-12), 1 - 1e-12)
        a_lo = wiv * resp
        s_lo = float(a_lo.sum())
        s_hi = wiv_sum - s_lo
        sx_lo = float(np.dot(a_lo, x))
        sx_hi = wiv_x - sx_lo
        lo_new = min(sx_lo / s_lo, split) if s_lo > 0 else m_lo
        hi_new = max(sx_hi / s_hi, split) if s_hi > 0 else m_hi
        done = abs(p_new - p) < tol and abs(lo_new - m_lo) < tol and abs(hi_new - m_hi) < tol
        p, m_lo, m_hi = p_new, lo_new, hi_new
        if done:
            break
    # EM approaches a boundary share only slowly and never reaches it; a share worth less than
    # half an observation is indistinguishable from none (without this, a percentile interval
    # of a rate whose truth is 0 could never contain 0)
    n_eff = wsum / float(w.max())
    if p * n_eff < 0.5:
        p = 0.0
    elif (1.0 - p) * n_eff < 0.5:
        p = 1.0
    return p, m_lo, m_hi


def estimate(qs: QueryStats, idx: np.ndarray, slot: np.ndarray, n_slots: int, *,
             threshold: float, weights: str, corrected: bool = True,
             init: dict | None = None, n_iter: int = 200) -> dict:
    """Every scalar diagnostic from the queries ``idx`` of the pseudo-users ``slot``."""
    r = qs.rho[idx]
    n_u = np.bincount(slot, minlength=n_slots).astype(float)
    user_mean = np.bincount(slot, weights=r, minlength=n_slots) / n_u
    collapsed = user_mean < threshold
    alpha = float(collapsed.mean())
    w = 1.0 / n_u[slot] if weights == "user" else np.ones(len(idx))
    active = ~collapsed[slot]
    hacked = active & (r < 0)
    pos = active & ~hacked
    w_act = w[active].sum()
    out = {"alpha": alpha}
    if w_act > 0:
        beta = float(w[hacked].sum() / w_act)
        rho_plus = float((w * r)[pos].sum() / w[pos].sum()) if pos.any() else 0.0
        rho_minus = float((w * r)[hacked].sum() / w[hacked].sum()) if hacked.any() else 0.0
    else:
        beta = rho_plus = rho_minus = 0.0
    rho_eff = (1.0 - beta) * rho_plus + beta * min(rho_minus, 0.0)
    rho_coll = float(user_mean[collapsed].mean()) if collapsed.any() else 0.0
    out.update(beta=beta, rho_plus=rho_plus, rho_minus=rho_minus, rho_eff=rho_eff,
               rho_collapsed=rho_coll, rho_total=(1.0 - alpha) * rho_eff + alpha * rho_coll)
    if corrected:
        init = init or {}
        # hacking: Fisher z of the active, defined queries; cut at true rho = 0
        keep = active & ~qs.undefined[idx]
        if keep.any():
            b, z_lo, z_hi = two_component(fisher_z(r[keep]), qs.se_z[idx][keep], w[keep], 0.0,
                                          init=init.get("beta_mix"), n_iter=n_iter)
        else:
            b, z_lo, z_hi = 0.0, float("nan"), float("nan")
        out.update(beta_corrected=b, beta_mix=(b, z_lo, z_hi))
        # collapse: user means with their standard errors; cut at the threshold
        var_q = (1.0 - r**2) ** 2 / np.maximum(qs.pool[idx] - 3.0, 1.0)
        noise = np.bincount(slot, weights=var_q, minlength=n_slots) / n_u**2
        dev = np.bincount(slot, weights=(r - user_mean[slot]) ** 2, minlength=n_slots)
        spread = dev / np.maximum(n_u - 1.0, 1.0) / n_u
        se_u = np.sqrt(np.maximum(np.where(n_u >= 3, spread, noise), noise)) + 1e-9
        a, u_lo, u_hi = two_component(user_mean, se_u, np.ones(n_slots), threshold,
                                      init=init.get("alpha_mix"), n_iter=n_iter)
        out.update(alpha_corrected=a, alpha_mix=(a, u_lo, u_hi))
    if qs.util is not None:
        u = qs.util[idx].reshape(len(idx), -1)
        if np.all(np.diff(slot) >= 0) and np.all(n_u > 0):
            # slots are sorted (bootstrap draws): one reduceat instead of a bincount per column
            starts = np.concatenate(([0], np.cumsum(n_u[:-1]).astype(np.int64)))
            sums = np.add.reduceat(u, starts, axis=0)
        else:
            sums = np.stack([np.bincount(slot, weights=u[:, j], minlength=n_slots)
                             for j in range(u.shape[1])], axis=1)
        curves = (sums / n_u[:, None]).mean(axis=0).reshape(3, qs.util.shape[2])
        rnd, orc, sel = curves
        gap = float((orc - rnd).sum())
        out["capture"] = float((sel - rnd).sum() / gap) if gap > 0 else float("nan")
        g = qs.g
        mu = float(rnd[0])
        c_sigma = float(g @ (orc - mu) / (g @ g)) if g @ g > 0 else 0.0
        out.update(curve_random=rnd, curve_oracle=orc, curve_observed=sel, c_sigma=c_sigma,
                   curve_predicted=mu + out["rho_total"] * c_sigma * g)
    return out


def two_level_indices(user: np.ndarray, n_users: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One two-level bootstrap draw: (query indices, pseudo-user slot of each)."""
    order = np.argsort(user, kind="stable")
    counts = np.bincount(user, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    drawn = rng.integers(0, n_users, n_users)
    c = counts[drawn]
    slot = np.repeat(np.arange(n_users), c)
    within = np.floor(rng.random(slot.size) * c[slot]).astype(np.int64)
    return order[starts[drawn][slot] + within], slot


def bootstrap(qs: QueryStats, point: dict, *, threshold: float, weights: str, n_boot: int,
              seed: int | None, progress: bool = False) -> dict:
    """Replicates of every scalar (and curve) of :func:`estimate`: name -> array (n_boot, ...)."""
    rng = np.random.default_rng(seed)
    init = {k: point[k] for k in ("beta_mix", "alpha_mix") if k in point}
    reps: dict[str, list] = {}
    for b in range(n_boot):
        idx, slot = two_level_indices(qs.user, qs.n_users, rng)
        # warm-started EM converges in a few steps; fewer iterations keep 1000 draws cheap
        est = estimate(qs, idx, slot, qs.n_users, threshold=threshold, weights=weights,
                       init=init, n_iter=40)
        for k, v in est.items():
            if not k.endswith("_mix"):
                reps.setdefault(k, []).append(v)
        if progress and (b + 1) % max(n_boot // 10, 1) == 0:
            print(f"  bootstrap {b + 1}/{n_boot}", flush=True)
    return {k: np.asarray(v, dtype=float) for k, v in reps.items()}


def percentile_ci(reps: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - ci) / 2.0
    with warnings.catch_warnings():
        # an all-NaN quantity (e.g. capture with no reward signal) has a NaN interval
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanquantile(reps, tail, axis=0), np.nanquantile(reps, 1.0 - tail, axis=0))


def null_model(qs: QueryStats, user_collapsed: np.ndarray, observed: dict, *, threshold: float,
               weights: str, n_null: int, seed: int | None) -> dict:
    """Expected collapse and hacking rates, and p-values, under one shared correlation.

    Collapse null: every query's true correlation is rho0 (the weighted mean Fisher z of all
    defined queries). Hacking null: every query of a non-collapsed user has that user's own
    correlation (the mean Fisher z of its queries), so a negative rho_q arises only from
    sampling noise; differences between users are not hacking. ``rho0_hacking`` reports their
    weighted mean. Each query's sample
    correlation is drawn as ``tanh(N(atanh rho0, 1/(m - 3)))`` with its own pool size m; queries
    with undefined correlations stay at 0, as observed. p = P(null rate >= observed rate), with
    the usual +1 correction of a Monte Carlo test.
    """
    rng = np.random.default_rng(seed)
    nq, nu = qs.rho.size, qs.n_users
    n_u = np.bincount(qs.user, minlength=nu).astype(float)
    w = 1.0 / n_u[qs.user] if weights == "user" else np.ones(nq)
    defined = ~qs.undefined
    se = qs.se_z
    out: dict[str, float] = {}

    def draws(mask: np.ndarray, z0, size: int) -> np.ndarray:
        r = np.zeros((size, nq))
        z0 = np.broadcast_to(np.asarray(z0, dtype=float), (nq,))[mask]
        r[:, mask] = np.tanh(z0 + se[mask] * rng.standard_normal((size, int(mask.sum()))))
        return r

    z_all = float(np.average(fisher_z(qs.rho[defined]), weights=w[defined])) if defined.any() \
        else 0.0
    active = ~user_collapsed[qs.user]
    act_def = active & defined
    # hacking null: each non-collapsed user keeps its own correlation (users differ; that is not
    # hacking), and no query of the user is shifted below it
    zq = np.where(act_def, fisher_z(qs.rho), 0.0)
    n_def = np.bincount(qs.user, weights=act_def, minlength=nu)
    z_user = np.bincount(qs.user, weights=zq, minlength=nu) / np.maximum(n_def, 1.0)
    z_act = z_user[qs.user]
    alphas, betas = [], []
    chunk = max(1, min(n_null, 2_000_000 // max(nq, 1)))
    done = 0
    while done < n_null:
        size = min(chunk, n_null - done)
        r = draws(defined, z_all, size)
        user_mean = np.stack([np.bincount(qs.user, weights=row, minlength=nu) for row in r]) / n_u
        alphas.append((user_mean < threshold).mean(axis=1))
        if act_def.any():
            r = draws(act_def, z_act, size)[:, active]
            wa = w[active]
            betas.append(((r < 0) * wa).sum(axis=1) / wa.sum())
        done += size
    a = np.concatenate(alphas)
    out.update(rho0_collapse=float(np.tanh(z_all)), alpha_null=float(a.mean()),
               alpha_p=float((1 + (a >= observed["alpha"] - 1e-12).sum()) / (1 + n_null)))
    if betas:
        b = np.concatenate(betas)
        rho0 = float(np.tanh(np.average(z_act[act_def], weights=w[act_def])))
        out.update(rho0_hacking=rho0, beta_null=float(b.mean()),
                   beta_p=float((1 + (b >= observed["beta"] - 1e-12).sum()) / (1 + n_null)))
    else:
        out.update(rho0_hacking=float("nan"), beta_null=float("nan"), beta_p=float("nan"))
    return out
