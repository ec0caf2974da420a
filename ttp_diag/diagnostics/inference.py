"""What the diagnostics are worth: estimates from query statistics, bootstrap, null model.

Everything here works on per-query statistics (rho_q, pool size, the query's exact Best-of-N
utilities), never on rows, so a bootstrap replicate costs a few array operations.

* :func:`estimate` computes every scalar of :func:`ttp_diag.diagnose` from a list of queries and
  their (pseudo-)users. The point estimate and each bootstrap replicate call the same code.
* :func:`two_level_indices` draws one replicate of the data's two-level structure: users with
  replacement, then each drawn user's queries with replacement.
* :func:`mixture` is the noise correction: the observed rho_q of a query is its true
  correlation plus sampling noise whose size is known from the pool (Fisher z, standard error
  ``1/sqrt(m - 3)``). A normal mixture with those known errors, one component below the cut
  (hacked: true rho < 0; collapsed: true user correlation < threshold) and one or two above,
  estimates the share of *true* failures, where the paper's count also includes queries whose
  sample correlation fell below 0 by chance. The hacking mixture weighs each query by its
  user's posterior probability of being active under the collapse mixture.
* :func:`null_model` draws the same pools under "one shared correlation, no collapse" and
  "each user's own correlation, no hacking", conditional on the nuisance parameters'
  sufficient statistics, and reports the expected rates and Monte Carlo p-values of smoothed
  (continuous) counts, so the tests have their nominal size.
"""

from __future__ import annotations

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


#: high-side components of the noise-correcting mixtures. The hacking mixture needs two: a
#: non-collapsed user whose true correlation is near 0 (e.g. a collapsed user the threshold
#: missed) forms a cluster just above the cut that one high component centred on the healthy
#: queries cannot absorb, so the low component took it (beta_corrected covered its true value
#: in 0.68 of 50 seeds under difficulty-tracking collapse; 1.00 with two, see the benchmark).
N_HIGH_BETA, N_HIGH_ALPHA = 2, 1
#: prior weight (in queries) of the pooled between-query spread in a user's standard error
SHRINK = 5.0
#: EM iterations of a bootstrap replicate (warm-started at the point estimate's fit)
BOOT_ITER = 40


def mixture(x: np.ndarray, se: np.ndarray, w: np.ndarray, split: float, *, n_high: int = 1,
            init: tuple | None = None, n_iter: int = 200,
            tol: float = 1e-6) -> tuple[float, tuple[np.ndarray, np.ndarray] | None]:
    """Normal mixture with known per-observation errors, split at ``split``, fitted by EM.

    One "low" component has mean <= ``split`` and ``n_high`` components have means >=
    ``split``; observation i is ``N(m_k, se_i^2)`` under component k and carries weight
    ``w_i`` (a weighted likelihood). Returns the share of the low component and the fit
    ``(means, shares)``, which :func:`low_posterior` and a warm start (``init``) take.

    A share worth less than half an observation is set to 0 (and likewise to 1): EM approaches
    a boundary only slowly and never reaches it, and without this a percentile interval of a
    rate whose truth is 0 could never contain 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(-0.3, 0.2, 300), rng.normal(0.7, 0.2, 700)]
    >>> p, (m, shares) = mixture(x, np.full(1000, 0.2), np.ones(1000), 0.0)
    >>> round(p, 1), np.round(m, 1).tolist()
    (0.3, [-0.3, 0.7])
    """
    if x.size == 0:
        return float("nan"), None
    k = 1 + n_high
    high = np.arange(k) >= 1
    iv = 1.0 / se**2
    if init is None:
        below = x < split
        share_lo = float(np.clip(w[below].sum() / w.sum(), 0.02, 0.98))
        m = np.empty(k)
        m[0] = float(np.average(x[below], weights=w[below])) if below.any() else split - 1.0
        m[1:] = (np.quantile(x[~below], (np.arange(n_high) + 0.5) / n_high)
                 if (~below).any() else split + 1.0)
        p = np.r_[share_lo, np.full(n_high, (1.0 - share_lo) / n_high)]
    else:
        m, p = (np.array(v, dtype=float) for v in init)
        p = np.clip(p, 0.01, None)  # a share of exactly 0 never moves under EM
        p /= p.sum()
    m = np.where(high, np.maximum(m, split), np.minimum(m, split))
    wsum = float(w.sum())
    wiv = (w * iv)[:, None]
    for _ in range(n_iter):
        resp = _responsibilities(x, iv, m, p)
        p_new = np.maximum((w[:, None] * resp).sum(axis=0) / wsum, 1e-12)
        a = wiv * resp
        s = a.sum(axis=0)
        m_new = np.where(s > 0, (a * x[:, None]).sum(axis=0) / np.where(s > 0, s, 1.0), m)
        m_new = np.where(high, np.maximum(m_new, split), np.minimum(m_new, split))
        done = np.abs(p_new - p).max() < tol and np.abs(m_new - m).max() < tol
        p, m = p_new, m_new
        if done:
            break
    share = float(p[0])
    n_eff = wsum / float(w.max())
    if share * n_eff < 0.5:
        share = 0.0
    elif (1.0 - share) * n_eff < 0.5:
        share = 1.0
    return share, (m, p)


def _responsibilities(x: np.ndarray, iv: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    ll = np.log(np.maximum(p, 1e-300))[None, :] - 0.5 * iv[:, None] * (x[:, None] - m[None, :]) ** 2
    ll -= ll.max(axis=1, keepdims=True)
    r = np.exp(ll)
    return r / r.sum(axis=1, keepdims=True)


def low_posterior(x: np.ndarray, se: np.ndarray, fit: tuple[np.ndarray, np.ndarray]
                  ) -> np.ndarray:
    """Posterior probability that each observation belongs to the low component of a fit."""
    m, p = fit
    return _responsibilities(x, 1.0 / se**2, m, p)[:, 0]


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
        # collapse: user means with their standard errors; cut at the threshold
        var_q = (1.0 - r**2) ** 2 / np.maximum(qs.pool[idx] - 3.0, 1.0)
        noise = np.bincount(slot, weights=var_q, minlength=n_slots) / n_u**2
        dev = np.bincount(slot, weights=(r - user_mean[slot]) ** 2, minlength=n_slots)
        # between-query spread of a user's rho_q (hacked queries widen it): the user's own
        # estimate shrunk towards the pooled one, which stays usable with 1-2 queries
        pooled_var = dev.sum() / max(float((n_u - 1.0).clip(min=0).sum()), 1.0)
        var_u = (dev + SHRINK * pooled_var) / (np.maximum(n_u - 1.0, 0.0) + SHRINK)
        se_u = np.sqrt(np.maximum(var_u / n_u, noise)) + 1e-9
        a, amix = mixture(user_mean, se_u, np.ones(n_slots), threshold, n_high=N_HIGH_ALPHA,
                          init=init.get("alpha_mix"), n_iter=n_iter)
        out.update(alpha_corrected=a, alpha_mix=amix)
        # hacking: Fisher z of the defined queries, each weighted by its user's posterior
        # probability of being active (not collapsed) under the collapse mixture; cut at true
        # rho = 0. With the hard cut, the queries of collapsed users whose mean came out above
        # the threshold by chance counted as (partly) hacked.
        # A low component pinned at the cut (EM's boundary solution) means the mixture found no
        # group of users separated below the threshold: collapse is not identified, and every
        # user then counts as active (down-weighting the users nearest the cut instead removed
        # real hacked queries: beta_corrected's coverage fell from 0.94 to 0.78 with pools of 8)
        if amix is not None and amix[0][0] < threshold:
            p_active = 1.0 - low_posterior(user_mean, se_u, amix)
        else:
            p_active = np.ones(n_slots)
        wq = w * p_active[slot]
        keep = (wq > 1e-9) & ~qs.undefined[idx]
        if keep.any():
            b, mix = mixture(fisher_z(r[keep]), qs.se_z[idx][keep], wq[keep], 0.0,
                             n_high=N_HIGH_BETA, init=init.get("beta_mix"), n_iter=n_iter)
        else:
            b, mix = 0.0, None
        out.update(beta_corrected=b, beta_mix=mix)
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
    init = {k: point[k] for k in ("beta_mix", "alpha_mix") if point.get(k) is not None}
    reps: dict[str, list] = {}
    for b in range(n_boot):
        idx, slot = two_level_indices(qs.user, qs.n_users, rng)
        # warm-started EM converges in a few steps; fewer iterations keep 1000 draws cheap
        est = estimate(qs, idx, slot, qs.n_users, threshold=threshold, weights=weights,
                       init=init, n_iter=BOOT_ITER)
        for k, v in est.items():
            if not k.endswith("_mix"):
                reps.setdefault(k, []).append(v)
        if progress and (b + 1) % max(n_boot // 10, 1) == 0:
            print(f"  bootstrap {b + 1}/{n_boot}", flush=True)
    return {k: np.asarray(v, dtype=float) for k, v in reps.items()}


def bc_percentile_ci(reps: np.ndarray, point: float, ci: float) -> tuple[float, float]:
    """Bias-corrected percentile interval (Efron 1981) of a scalar.

    The plain percentile interval assumes the bootstrap distribution is centred on the point
    estimate. The noise-corrected rates are not: a two-level draw that repeats one of a user's
    few queries makes that user's mean more extreme, which moves the mixture's share in one
    direction, so their bootstrap median sits away from the estimate and the percentile
    interval can even exclude it. With ``z0 = Phi^-1(P*(rep < point) + P*(rep = point) / 2)``
    the interval is the ``Phi(2 z0 +- z)`` quantiles of the replicates.
    """
    v = reps[np.isfinite(reps)]
    if v.size == 0 or not np.isfinite(point):
        return float("nan"), float("nan")
    frac = (np.sum(v < point) + 0.5 * np.sum(v == point)) / v.size
    frac = min(max(frac, 0.5 / v.size), 1.0 - 0.5 / v.size)
    z0 = float(special.ndtri(frac))
    z = float(special.ndtri(0.5 + ci / 2.0))
    lo_q, hi_q = special.ndtr(2.0 * z0 - z), special.ndtr(2.0 * z0 + z)
    return float(np.quantile(v, lo_q)), float(np.quantile(v, hi_q))


def percentile_ci(reps: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - ci) / 2.0
    with warnings.catch_warnings():
        # an all-NaN quantity (e.g. capture with no reward signal) has a NaN interval
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanquantile(reps, tail, axis=0), np.nanquantile(reps, 1.0 - tail, axis=0))


def null_model(qs: QueryStats, user_collapsed: np.ndarray, observed: dict, *, threshold: float,
               weights: str, n_null: int, seed: int | None) -> dict:
    """Expected collapse and hacking rates, and p-values, under one shared correlation.

    Works on the Fisher z of each defined query's correlation, ``z_q ~ N(zeta_q, se_q^2)`` with
    ``se_q = 1/sqrt(m_q - 3)`` known from the pool size.

    * Collapse null: every query shares one correlation (``zeta_q = zeta``). Hacking null:
      every query of a non-collapsed user has that user's correlation (``zeta_q = zeta_u``);
      users may differ (that is not hacking).
    * The shared correlations are nuisance parameters. Plugging their estimates in makes a
      test conservative (the observed data fit their own estimate better than fresh draws
      do: the first version of this test rejected 0 of 50 true nulls). Instead the null draws
      are *conditional* on their sufficient statistics, the inverse-variance weighted mean z
      (overall, or per user): ``z* = zbar + e - ebar`` with ``e ~ N(0, se^2)``, which is exact
      for the Gaussian approximation (the residuals are independent of the mean).
    * The raw counts (alpha, beta) are discrete; where no unit is near the cut (a healthy
      model) every draw gives 0 and a count-based test can never reject. The p-values use
      the *smoothed counts* instead: each unit's probability of lying below the cut given its
      standard error, ``Phi((cut - z)/se)``, averaged with the estimator's weights. They are
      continuous, so the test has its nominal size, and they grow with the same evidence as
      the counts. ``alpha_null`` / ``beta_null`` are the expected *raw* rates under the null,
      comparable with the observed alpha and beta; ``*_stat`` / ``*_stat_null`` the observed
      and expected smoothed counts behind the p-values. p = P(null stat >= observed), with
      the +1 correction of a Monte Carlo test.
    """
    rng = np.random.default_rng(seed)
    nq, nu = qs.rho.size, qs.n_users
    n_u = np.bincount(qs.user, minlength=nu).astype(float)
    w = 1.0 / n_u[qs.user] if weights == "user" else np.ones(nq)
    defined = ~qs.undefined
    se = qs.se_z
    iv = np.where(defined, 1.0 / se**2, 0.0)
    z_obs = np.where(defined, fisher_z(qs.rho), 0.0)
    z_cut = float(fisher_z(np.asarray(threshold)))
    n_def_u = np.bincount(qs.user, weights=defined.astype(float), minlength=nu)
    # a user's mean z and its standard error (undefined queries carry no information)
    se_user = np.sqrt(np.bincount(qs.user, weights=np.where(defined, se**2, 0.0), minlength=nu)
                      ) / np.maximum(n_def_u, 1.0)
    has_def = n_def_u > 0
    out: dict[str, float] = {}

    def conditional(groups: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
        """Null draws of z (size, nq) with each group's weighted mean z held at its observed."""
        n_g = int(groups.max()) + 1
        ivm = np.where(mask, iv, 0.0)
        sw = np.bincount(groups, weights=ivm, minlength=n_g)
        sw = np.where(sw > 0, sw, 1.0)
        zbar = np.bincount(groups, weights=ivm * z_obs, minlength=n_g) / sw
        e = se[None, :] * rng.standard_normal((size, nq))
        ebar = group_sums(ivm[None, :] * e, groups, n_g) / sw[None, :]
        return np.where(mask[None, :], (zbar[groups])[None, :] + e - ebar[:, groups],
                        z_obs[None, :])

    def group_sums(x: np.ndarray, groups: np.ndarray, n_g: int) -> np.ndarray:
        """Row-wise bincount of a (size, nq) array: (size, n_g)."""
        size = x.shape[0]
        flat = (np.arange(size)[:, None] * n_g + groups[None, :]).ravel()
        return np.bincount(flat, weights=x.ravel(), minlength=size * n_g).reshape(size, n_g)

    zd = np.where(defined, 1.0, 0.0)

    def alpha_stats(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw and smoothed collapse rates of each row of z (size, nq)."""
        zbar = group_sums(z * zd, qs.user, nu) / np.maximum(n_def_u, 1.0)
        p = special.ndtr((z_cut - zbar) / np.maximum(se_user, 1e-12))
        smooth = np.where(has_def, p, float(threshold > 0.0)).mean(axis=1)
        r_mean = group_sums(np.tanh(z) * zd, qs.user, nu) / n_u
        return (r_mean < threshold).mean(axis=1), smooth

    active = ~user_collapsed[qs.user]
    act_def = active & defined
    wa = w[act_def]
    w_act = w[active].sum()

    def beta_stats(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        za = z[:, act_def]
        raw = ((za < 0) * wa).sum(axis=1) / w_act
        smooth = (special.ndtr(-za / se[act_def]) * wa).sum(axis=1) / wa.sum()
        return raw, smooth

    a_stat = float(alpha_stats(z_obs[None, :])[1][0])
    b_stat = float(beta_stats(z_obs[None, :])[1][0]) if act_def.any() else np.nan
    a_raw, a_sm, b_raw, b_sm = [], [], [], []
    chunk = max(1, min(n_null, 1_000_000 // max(nq, 1)))
    done = 0
    all_users = np.zeros(nq, dtype=np.int64)
    while done < n_null:
        size = min(chunk, n_null - done)
        raw, sm = alpha_stats(conditional(all_users, defined, size))
        a_raw.append(raw)
        a_sm.append(sm)
        if act_def.any():
            raw, sm = beta_stats(conditional(qs.user, act_def, size))
            b_raw.append(raw)
            b_sm.append(sm)
        done += size
    a_raw, a_sm = np.concatenate(a_raw), np.concatenate(a_sm)
    z_all = float(np.sum(iv * z_obs) / iv.sum()) if defined.any() else 0.0
    out.update(rho0_collapse=float(np.tanh(z_all)), alpha_null=float(np.mean(a_raw)),
               alpha_stat=float(a_stat), alpha_stat_null=float(a_sm.mean()),
               alpha_p=float((1 + (a_sm >= a_stat - 1e-15).sum()) / (1 + n_null)))
    if b_sm:
        b_raw, b_sm = np.concatenate(b_raw), np.concatenate(b_sm)
        ivu = np.bincount(qs.user, weights=np.where(act_def, iv, 0.0), minlength=nu)
        z_user = np.bincount(qs.user, weights=np.where(act_def, iv * z_obs, 0.0),
                             minlength=nu) / np.where(ivu > 0, ivu, 1.0)
        rho0 = float(np.tanh(np.average(z_user[qs.user][act_def], weights=wa)))
        out.update(rho0_hacking=rho0, beta_null=float(np.mean(b_raw)), beta_stat=float(b_stat),
                   beta_stat_null=float(b_sm.mean()),
                   beta_p=float((1 + (b_sm >= b_stat - 1e-15).sum()) / (1 + n_null)))
    else:
        out.update(rho0_hacking=float("nan"), beta_null=float("nan"), beta_stat=float("nan"),
                   beta_stat_null=float("nan"), beta_p=float("nan"))
    return out
