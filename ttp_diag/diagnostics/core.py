"""The diagnostic quantities of the unified scaling law, from a score table.

For a reward model's score column, :func:`diagnose` measures

* per-query correlation rho_q across a query's candidates;
* per-user correlation rho_u and the collapse rate ``alpha`` = fraction of users with
  rho_u < ``collapse_threshold`` (0.1 in the paper). **Default** ``rho_u="mean_query"``: the mean
  of the user's rho_q (*within* query). The paper's Definition 4.1 pools all of the user's
  candidates (``rho_u="pooled"``); a reward model that scores the query (its difficulty) rather
  than the candidate then gets a high pooled rho_u while it cannot rank any query's candidates,
  which is what Best-of-N needs. Both are always in ``per_user``; users where they disagree
  (one above the threshold, one below) are flagged;
* the hacking rate ``beta`` = share of the non-collapsed users' queries with rho_q < 0
  (Assumption A.6: collapse absorbs hacking), ``rho_plus`` / ``rho_minus`` the mean rho_q of
  non-hacked / hacked queries. **Default** ``weights="user"``: each query weighs 1 / (its user's
  query count), so that the law aggregates the way utility does (a mean over users of means over
  queries); ``weights="query"`` is the paper's plain average over queries;
* ``rho_collapsed``: the collapsed users' mean *within-query* correlation, the term Eq. 30
  needs; ``rho_collapsed_pooled`` is the paper's mean pooled rho_u;
* ``beta_corrected`` / ``alpha_corrected``: noise-corrected rates (a mixture with the sampling
  error of each rho_q known from the pool size, see :mod:`.inference`) and the rates expected
  under the nulls "no collapsed user, hacking allowed" and "no hacking", with p-values;
* ``spearman`` (mean within-query rank correlation) and ``top1_rank`` (exact expected normalised
  true-reward rank of the top-scored candidate: 0.5 is random, 1 the best), which stay
  informative when many rewards are tied at 0;
* on the curve ``ns``: the exact observed, oracle and random Best-of-N curves, ``capture`` and
  the predicted curve (mu fixed at the exact random utility, c*sigma fitted to the oracle);
* with ``ci``: a two-level bootstrap (users, then queries within users) for all of them.

A correlation is undefined when the scores or rewards it is computed from are constant. Such a
correlation is set to 0 (a reward model that cannot tell candidates apart gives no signal), and
the number of times this happened is reported in ``notes``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

from .._checks import check_real, check_seed
from .._summary import Result
from ..bon import bon_per_query
from ..table import as_score_table
from ..theory.extremes import SHAPES, curve_shape
from . import inference as inf
from ._group import group_corr, group_mean, group_rank, group_std

RHO_U_METHODS = ("mean_query", "pooled")
WEIGHTS = ("user", "query")
MIN_BOOT_USERS = 5

#: (quantity, which definition, meaning) in the order of the summary
_ROWS = (
    ("alpha", "package", "collapse rate (rho_u method as chosen; default within query)"),
    ("alpha_pooled", "paper", "collapse rate with pooled rho_u (Definition 4.1)"),
    ("alpha_corrected", "package", "noise-corrected collapse rate (hierarchical mixture; "
                                   "unidentified when users sit just above the threshold)"),
    ("beta", "paper", "hacking rate: share of active queries with rho_q < 0"),
    ("beta_corrected", "package", "noise-corrected hacking rate of active users "
                                  "(hierarchical mixture)"),
    ("rho_plus", "paper", "mean rho_q of non-hacked active queries"),
    ("rho_minus", "paper", "mean rho_q of hacked active queries"),
    ("rho_eff", "paper", "(1-beta) rho_plus - beta |rho_minus|"),
    ("rho_collapsed", "package", "collapsed users' mean within-query rho (Eq. 30 term)"),
    ("rho_collapsed_pooled", "paper", "collapsed users' mean pooled rho_u"),
    ("rho_total", "paper", "(1-alpha) rho_eff + alpha rho_collapsed"),
    ("spearman", "package", "mean within-query Spearman correlation"),
    ("top1_rank", "package", "expected true-reward rank of the top-scored candidate (0.5 random)"),
    ("capture", "package", "share of the oracle's gain over random captured, over ns"),
)


@dataclass
class Diagnostics(Result):
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
    weights: str = "user"
    alpha_pooled: float = float("nan")
    rho_collapsed_pooled: float = float("nan")
    alpha_corrected: float = float("nan")
    beta_corrected: float = float("nan")
    spearman: float = float("nan")
    top1_rank: float = float("nan")
    capture: float = float("nan")
    null: dict = field(default_factory=dict, repr=False)
    intervals: dict = field(default_factory=dict, repr=False)
    ci: float | None = None
    n_boot: int = 0
    curve: pd.DataFrame | None = field(default=None, repr=False)
    user_curves: pd.DataFrame | None = field(default=None, repr=False)
    c_sigma: float = float("nan")
    shape: str = "sqrt_log"

    @property
    def n_collapsed(self) -> int:
        return int(self.per_user["collapsed"].sum())

    @property
    def n_hacked(self) -> int:
        return int(self.per_query["hacked"].sum())

    @property
    def n_disagreeing_users(self) -> int:
        """Users collapsed under one rho_u definition and not under the other."""
        return int(self.per_user["disagree"].sum())

    def to_dict(self) -> dict:
        """The scalar quantities (and intervals, null results) as a plain JSON-able dict."""
        keys = ("score", "alpha", "beta", "rho_plus", "rho_minus", "rho_collapsed", "rho_eff",
                "rho_total", "mu", "sigma", "n_users", "n_queries", "n_undefined_users",
                "n_undefined_queries", "collapse_threshold", "rho_u_method", "weights",
                "alpha_pooled", "rho_collapsed_pooled", "alpha_corrected", "beta_corrected",
                "spearman", "top1_rank", "capture", "c_sigma", "ci", "n_boot")
        out = {k: getattr(self, k) for k in keys}
        for k, v in out.items():
            if isinstance(v, (np.floating, np.integer)):
                out[k] = v.item()
        out["null"] = {k: float(v) for k, v in self.null.items()}
        out["intervals"] = {k: [float(v[0]), float(v[1])] for k, v in self.intervals.items()}
        out["notes"] = list(self.notes)
        return out

    def _summary_frame(self) -> list[dict]:
        """``summary``: one row per quantity with estimate, ci_low, ci_high, null, p_value;
        ``definition`` says whether a row is the paper's definition or the package's."""
        rows = []
        for name, definition, meaning in _ROWS:
            lo, hi = self.intervals.get(name, (np.nan, np.nan))
            null_key = {"alpha": "alpha", "beta": "beta"}.get(name)
            rows.append({
                "score": self.score, "quantity": name, "estimate": float(getattr(self, name)),
                "ci_low": float(lo), "ci_high": float(hi),
                "null_expected": self.null.get(f"{null_key}_null", np.nan) if null_key else np.nan,
                "p_value": self.null.get(f"{null_key}_p", np.nan) if null_key else np.nan,
                # the p-value tests the smoothed count, not the raw rate in "estimate"
                "test_statistic": (self.null.get(f"{null_key}_stat", np.nan) if null_key
                                   else np.nan),
                "test_statistic_null": (self.null.get(f"{null_key}_stat_null", np.nan)
                                        if null_key else np.nan),
                "p_text": (null_test_text(self.null, null_key) if null_key and self.null
                           else ""),
                "definition": definition, "meaning": meaning,
            })
        return rows

    def _text(self) -> str:
        def iv(name: str) -> str:
            if name not in self.intervals:
                return ""
            lo, hi = self.intervals[name]
            return f"  [{lo:+.3f}, {hi:+.3f}]"

        nl = self.null
        lines = [
            f"Diagnostics of {self.score}: {self.n_users} users, {self.n_queries} queries"
            + (f"; {self.ci:.0%} intervals from a two-level bootstrap ({self.n_boot} draws of "
               f"users, then queries within users)" if self.ci else ""),
            f"  collapse rate alpha   = {self.alpha:.3f}{iv('alpha')}  ({self.n_collapsed} users "
            f"with rho_u < {self.collapse_threshold:g}; rho_u {self.rho_u_method})",
        ]
        if nl:
            lines.append(f"      expected with no collapsed user (hacking allowed; fitted "
                         f"{nl.get('collapse_null_beta', np.nan):.0%} of queries hacked at rho "
                         f"{nl.get('collapse_null_rho_minus', np.nan):+.2f}, healthy "
                         f"{nl.get('collapse_null_rho_plus', np.nan):+.2f}): "
                         f"{nl['alpha_null']:.3f}")
            lines.append("      " + null_test_text(nl, "alpha"))
        lines += [
            f"      paper (pooled rho_u) = {self.alpha_pooled:.3f}; {self.n_disagreeing_users} "
            f"user(s) collapsed under one definition only",
            f"      noise-corrected      = {self.alpha_corrected:.3f}{iv('alpha_corrected')}",
            f"  hacking rate  beta    = {self.beta:.3f}{iv('beta')}  ({self.n_hacked} queries of "
            f"non-collapsed users with rho_q < 0; {self.weights}-weighted)",
        ]
        if nl and np.isfinite(nl.get("beta_null", np.nan)):
            lines.append(f"      expected from noise alone (each user's own rho, mean "
                         f"{nl['rho0_hacking']:+.3f}; no hacking): {nl['beta_null']:.3f}")
            lines.append("      " + null_test_text(nl, "beta"))
        lines += [
            f"      noise-corrected      = {self.beta_corrected:.3f}{iv('beta_corrected')}"
            + ("  (above the raw count: see note)" if self.beta_corrected > self.beta + 5e-4
               else ""),
            f"  rho_plus              = {self.rho_plus:+.3f}{iv('rho_plus')}",
            f"  rho_minus             = {self.rho_minus:+.3f}{iv('rho_minus')}",
            f"  rho_collapsed         = {self.rho_collapsed:+.3f}{iv('rho_collapsed')}  (within "
            f"query; paper's pooled: {self.rho_collapsed_pooled:+.3f})",
            f"  rho_eff               = {self.rho_eff:+.3f}{iv('rho_eff')}   (1-beta) rho_plus - "
            f"beta|rho_minus|",
            f"  rho_total             = {self.rho_total:+.3f}{iv('rho_total')}   (1-alpha) "
            f"rho_eff + alpha rho_collapsed",
            f"  spearman (in query)   = {self.spearman:+.3f}{iv('spearman')}",
            f"  top-1 true-reward rank = {self.top1_rank:.3f}{iv('top1_rank')}  (0.5 random, 1 "
            f"best)",
            f"  capture               = {self.capture:.3f}{iv('capture')}",
            f"  mu (random)           = {self.mu:.4f}",
            f"  sigma (within-query)  = {self.sigma:.4f}",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def print_summary(self) -> None:
        """Print the verdict, then the text summary."""
        print(self.verdict())
        print()
        print(self._text())

    def verdict(self, *, unit: str = ""):
        """The answer first: a few sentences on this reward model, computed from the numbers
        (gain at the curve's largest N with the captured share and its interval, collapse and
        hacking against their null models, the law's error relative to level and gain).
        Thresholds and wording: :mod:`ttp_diag.verdict`.

        Examples
        --------
        >>> import ttp_diag as td
        >>> t = td.simulate_score_table(n_users=20, n_queries=8, n_candidates=16, seed=0)
        >>> td.diagnose(t, "score_prob").verdict().finding("score_prob", "hacking")  # 10% hacked
        'hacking'
        """
        from ..verdict import diagnostics_verdict

        return diagnostics_verdict(self, unit=unit)

    def _repr_html_(self) -> str:
        from ..verdict import result_html

        return result_html(self.verdict(), self.summary[["quantity", "estimate", "ci_low",
                                                         "ci_high", "null_expected",
                                                         "p_value"]])


def null_test_text(null: dict, which: str) -> str:
    """The line of a null-model test that shows the number it tests.

    The collapse and hacking tests compare *smoothed* counts (each unit's probability of lying
    below the cut), not the raw rates alpha and beta: a raw rate of 0 can sit beside a small
    p-value when many units lie just above the cut. The line names the tested statistic, the
    null (collapse: no collapsed user, hacking allowed; hacking: each active user's own
    correlation, no hacking), the statistic's expectation under it and the p-value, which at
    the Monte Carlo resolution limit reads "p < 0.001, 1,000 draws".

    Examples
    --------
    >>> null_test_text({"alpha_stat": 0.031, "alpha_stat_null": 0.012, "alpha_p": 1 / 1001,
    ...                 "n_null": 1000}, "alpha")  # doctest: +NORMALIZE_WHITESPACE
    'test: smoothed collapse count 0.031 vs 0.012 expected with no collapsed user (hacking
     allowed), p < 0.001, 1,000 draws'
    """
    from ..stats import format_p_value

    if f"{which}_p" not in null or not np.isfinite(null.get(f"{which}_p", np.nan)):
        return "test: not available"
    what, null_name = {"alpha": ("collapse", "no collapsed user (hacking allowed)"),
                       "beta": ("hacking", "no hacking (each user's own rho)")}[which]
    n = null.get("n_null")
    p = format_p_value(float(null[f"{which}_p"]), int(n) if n else None)
    return (f"test: smoothed {what} count {null[f'{which}_stat']:.3f} vs "
            f"{null[f'{which}_stat_null']:.3f} expected with {null_name}, {p}")


def _default_ns(pool_sizes: np.ndarray) -> list[int]:
    top = int(np.median(pool_sizes))
    return sorted({int(round(v)) for v in np.geomspace(1, max(top, 1), num=min(top, 16))} | {top})


def _check_ci(ci, n_boot, n_null=0, ns=None) -> tuple:
    """The bootstrap settings, checked (:mod:`ttp_diag._checks`): an interval needs
    enough draws, and the draws must fit in memory (about 40 numbers each, plus the curve)."""
    from .._checks import check_boot_memory, check_ci, check_int, check_n_boot

    ci = check_ci(ci)
    per_draw = 40 + 2 * (len(ns) if ns is not None and np.ndim(ns) else 32)
    if ci is not None:
        n_boot = check_boot_memory(check_n_boot(n_boot, ci=ci), per_draw)
    n_null = check_int(n_null, "n_null", minimum=0, what="a number of null-model draws "
                       "(0: no null model)")
    check_boot_memory(n_null, per_draw, name="n_null", what="null-model draws")
    return ci, n_boot, n_null


def diagnose(table: pd.DataFrame, score: str, *, collapse_threshold: float = 0.1,
             rho_u: str = "mean_query", weights: str = "user", ns=None,
             shape: str = "sqrt_log", pool: str | None = None, ci: float | None = None,
             n_boot: int = 1000, n_null: int = 1000, seed: int | None = 0,
             progress: bool = False, split: str | None = "val",
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
    rho_u : {"mean_query", "pooled"}, default "mean_query"
        ``"mean_query"``: mean of the user's within-query correlations (package default);
        ``"pooled"``: correlation over all of the user's candidates (the paper's Def. 4.1).
    weights : {"user", "query"}, default "user"
        How beta, rho_plus and rho_minus average queries: each user equally (as utility does;
        default) or each query equally (the paper).
    ns : sequence of int, optional
        Candidate counts of the curve behind ``capture`` and the predicted curve; default about
        16 values from 1 to the median pool size.
    shape : {"sqrt_log", "gaussian", "kl"}, default "sqrt_log"
        Curve shape of the prediction.
    pool : {"error", "clip"}, optional
        For N above a query's pool; default "clip" when some pool is smaller than max(ns).
    ci : float, optional
        Confidence level (e.g. 0.95) of two-level bootstrap intervals; None: no intervals.
    n_boot : int, default 1000
        Bootstrap draws.
    n_null : int, default 1000
        Monte Carlo draws of the null model (0 skips it).
    seed : int or None, default 0
        Seed of the bootstrap and the null model.
    progress : bool, default False
        Print bootstrap progress.
    split : str or None, default "val"
        Split to analyse when the table has a ``split`` column.
    validate : bool, default True
        Validate the table first.

    Returns
    -------
    Diagnostics
        Scalars, tidy ``per_user``/``per_query``/``curve``/``user_curves`` frames, ``summary``.

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=20, n_queries=8, n_candidates=16, seed=0)
    >>> d = diagnose(t, "score_det", ci=0.95, n_boot=50, seed=0)
    >>> d.alpha, d.intervals["alpha"][0] <= d.alpha <= d.intervals["alpha"][1]
    (0.25, True)
    """
    if rho_u not in RHO_U_METHODS:
        raise ConfigError(f"rho_u must be one of {RHO_U_METHODS}; got {rho_u!r}.")
    if weights not in WEIGHTS:
        raise ConfigError(f"weights must be one of {WEIGHTS}; got {weights!r}.")
    if shape not in SHAPES:
        raise ConfigError(f"unknown curve shape {shape!r}; use one of {SHAPES}.")
    check_real(collapse_threshold, "collapse_threshold", low=-1, high=1,
               what="a correlation threshold")
    ci, n_boot, n_null = _check_ci(ci, n_boot, n_null, ns)
    seed = check_seed(seed)
    if score == "random":
        raise ConfigError("'random' has no scores to correlate; diagnose a score column or "
                          "'oracle'.")
    # one validated ScoreTable: its integer layout is built once and reused by every engine
    # call below (and by the caller's other calls when a ScoreTable is passed in)
    table = as_score_table(table, scores=[score], split=split if validate else None,
                           validate=validate)
    prep = table.prepared
    r = prep.reward
    s = table.values(score)
    q, nq, nu = prep.q_codes, prep.n_queries, prep.n_users
    uq = prep.user_of_query
    u_rows = uq[q]
    notes: list[str] = []

    rho_q, undef_q = group_corr(q, s, r, nq)
    mu_q = group_mean(q, r, nq)
    sigma_q = group_std(q, r, nq)
    q_per_user = np.bincount(uq, minlength=nu).astype(float)
    spearman_q, _ = group_corr(q, group_rank(q, s), group_rank(q, r), nq)

    rho_pooled, undef_pooled = group_corr(u_rows, s, r, nu)
    rho_within = np.bincount(uq, weights=rho_q, minlength=nu) / q_per_user
    undef_within = np.bincount(uq, weights=undef_q, minlength=nu) == q_per_user
    rho_user, undef_u = ((rho_within, undef_within) if rho_u == "mean_query"
                         else (rho_pooled, undef_pooled))
    collapsed = rho_user < collapse_threshold
    disagree = (rho_within < collapse_threshold) != (rho_pooled < collapse_threshold)

    # the exact curves behind capture and the prediction (one engine call per selector)
    ns = _default_ns(prep.pool_sizes) if ns is None else [int(n) for n in ns]
    if pool is None:
        pool = "clip" if max(ns) > int(prep.pool_sizes.min()) else "error"
    util = np.stack([
        bon_per_query(table, sel, ns, split=None, pool=pool, validate=False)["utility"]
        .to_numpy().reshape(nq, len(ns)) for sel in ("random", "oracle", score)], axis=1)
    g = np.asarray(curve_shape(ns, shape), dtype=float)
    qs = inf.QueryStats(rho=rho_q, undefined=undef_q, pool=prep.pool_sizes.astype(float),
                        user=uq, n_users=nu, util=util, g=g)
    all_q = np.arange(nq)
    if rho_u == "pooled":
        # the paper's reading: collapse decided by pooled rho_u, the rest as in estimate()
        est = _estimate_with_collapse(qs, collapsed, collapse_threshold, weights)
    else:
        est = inf.estimate(qs, all_q, uq, nu, threshold=collapse_threshold, weights=weights)
    rho_coll_pooled = float(rho_pooled[collapsed].mean()) if collapsed.any() else 0.0

    # top-1 rank: exact expected normalised reward rank of Best-of-(whole pool) by the score
    rank01 = (group_rank(q, r) - 1.0) / np.maximum(prep.pool_sizes[q] - 1.0, 1.0)
    top1 = bon_per_query(table.frame.assign(reward=rank01), score, [int(prep.pool_sizes.max())],
                         split=None, pool="clip", validate=False)["utility"].to_numpy()
    top1_rank = float((np.bincount(uq, weights=top1, minlength=nu) / q_per_user).mean())
    spearman = float((np.bincount(uq, weights=spearman_q, minlength=nu) / q_per_user).mean())

    user_collapsed_q = collapsed[uq]
    hacked = ~user_collapsed_q & (rho_q < 0)
    if not (~user_collapsed_q).any():
        notes.append("every user is collapsed: beta, rho_plus and rho_minus are set to 0 "
                     "(no non-collapsed queries to measure them on).")
    null = (inf.null_model(qs, collapsed, est, threshold=collapse_threshold, weights=weights,
                           n_null=int(n_null), seed=seed) if n_null else {})
    intervals: dict = {}
    reps = None
    if ci is not None:
        if nu < MIN_BOOT_USERS:
            warnings.warn(f"only {nu} user(s): a bootstrap over users cannot give an honest "
                          f"interval; the intervals are NaN (need >= {MIN_BOOT_USERS} users).",
                          RuntimeWarning, stacklevel=2)
            notes.append(f"intervals not computed: {nu} user(s) < {MIN_BOOT_USERS}.")
        elif rho_u == "pooled":
            notes.append("intervals are computed for rho_u='mean_query' only (the pooled rho_u "
                         "needs rows, not query statistics); none given.")
        else:
            reps = inf.bootstrap(qs, est, threshold=collapse_threshold, weights=weights,
                                 n_boot=int(n_boot), seed=seed, progress=progress)
            for k, v in reps.items():
                if v.ndim == 1:
                    lo, hi = inf.percentile_ci(v, ci)
                else:
                    continue
                intervals[k] = (float(lo), float(hi))
            # rank measures: resample their per-query values the same way (cheap, exact)
            rng = np.random.default_rng(None if seed is None else seed + 1)
            for name, per_q in (("spearman", spearman_q), ("top1_rank", top1)):
                vals = []
                for _ in range(int(n_boot)):
                    idx, slot = inf.two_level_indices(uq, nu, rng)
                    n_s = np.bincount(slot, minlength=nu)
                    vals.append((np.bincount(slot, weights=per_q[idx], minlength=nu) / n_s)
                                .mean())
                lo, hi = inf.percentile_ci(np.asarray(vals), ci)
                intervals[name] = (float(lo), float(hi))
    if undef_u.any():
        notes.append(f"{int(undef_u.sum())} of {nu} users had constant scores or rewards; their "
                     f"rho_u is undefined and was set to 0 (counted as collapsed when 0 < "
                     f"threshold).")
    if undef_q.any():
        notes.append(f"{int(undef_q.sum())} of {nq} queries had constant scores or rewards; their "
                     f"rho_q is undefined and was set to 0 (never counted as hacked).")
    if not np.isfinite(est["capture"]):
        notes.append("the oracle never beats random: every query's rewards are constant (no "
                     "reward signal; e.g. all rewards 0), so capture and gains are undefined.")
    if np.isfinite(est.get("beta_corrected", np.nan)) and \
            est["beta_corrected"] > est["beta"] + 5e-4:
        notes.append(
            f"the noise-corrected hacking rate ({est['beta_corrected']:.3f}) is above the raw "
            f"count ({est['beta']:.3f}). Not a contradiction: the raw beta counts queries whose "
            f"*observed* rho_q < 0; the mixture estimates the share whose *true* correlation is "
            f"below 0, and sampling noise (standard error 1/sqrt(m - 3) of a pool of m) lifts "
            f"some of those above 0 as it pushes healthy ones below. It exceeds the raw count "
            f"when the hacked component sits near 0 (weak hacking) and the pools are small; "
            f"read it with its interval.")
    if disagree.any():
        notes.append(f"{int(disagree.sum())} user(s) are collapsed under one rho_u definition "
                     f"only (pooled vs within query); see per_user['disagree'].")

    mu_u = np.bincount(uq, weights=mu_q, minlength=nu) / q_per_user
    sigma_u = np.bincount(uq, weights=sigma_q, minlength=nu) / q_per_user
    sigma = float(sigma_u.mean())
    curve = pd.DataFrame({"n": ns, "random": est["curve_random"], "oracle": est["curve_oracle"],
                          "observed": est["curve_observed"],
                          "predicted": est["curve_predicted"]})
    if reps is not None:
        for k in ("observed", "predicted"):
            lo, hi = inf.percentile_ci(reps[f"curve_{k}"], ci)
            curve[f"{k}_ci_low"], curve[f"{k}_ci_high"] = lo, hi
    # per-user law: mu_u + rho_u sigma_u c g(N) with c implied by the oracle calibration
    c = est["c_sigma"] / sigma if sigma > 0 else 0.0
    obs_u = np.stack([np.bincount(uq, weights=util[:, 2, j], minlength=nu) for j in
                      range(len(ns))], axis=1) / q_per_user[:, None]
    pred_u = mu_u[:, None] + (rho_within * sigma_u * c)[:, None] * g[None, :]
    user_curves = pd.DataFrame({
        "user_id": np.repeat(prep.user_ids, len(ns)), "n": np.tile(ns, nu),
        "observed": obs_u.ravel(), "predicted": pred_u.ravel()})
    gain_obs = np.abs(obs_u - mu_u[:, None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        user_gain_err = np.where(gain_obs > 0, np.abs(pred_u - obs_u).sum(axis=1) / gain_obs,
                                 np.nan)

    per_user = pd.DataFrame({
        "user_id": prep.user_ids, "rho_u": rho_user, "rho_u_within": rho_within,
        "rho_u_pooled": rho_pooled, "collapsed": collapsed, "disagree": disagree,
        "undefined": undef_u, "n_queries": q_per_user.astype(int),
        "n_candidates": np.bincount(u_rows, minlength=nu), "mu_u": mu_u, "sigma_u": sigma_u,
        "label_std": group_std(u_rows, r, nu), "curve_gain_error": user_gain_err,
    })
    per_query = pd.DataFrame({
        "user_id": prep.user_ids[uq], "query_id": prep.query_ids, "rho_q": rho_q,
        "spearman_q": spearman_q, "top1_rank": top1, "hacked": hacked,
        "user_collapsed": user_collapsed_q, "undefined": undef_q,
        "n_candidates": prep.pool_sizes, "mu_q": mu_q, "sigma_q": sigma_q,
    })
    return Diagnostics(
        score=score, alpha=est["alpha"], beta=est["beta"], rho_plus=est["rho_plus"],
        rho_minus=est["rho_minus"], rho_collapsed=est["rho_collapsed"], rho_eff=est["rho_eff"],
        rho_total=float(est["rho_total"]), mu=float(mu_u.mean()), sigma=sigma, n_users=nu,
        n_queries=nq, n_undefined_users=int(undef_u.sum()),
        n_undefined_queries=int(undef_q.sum()), collapse_threshold=float(collapse_threshold),
        rho_u_method=rho_u, per_user=per_user, per_query=per_query, notes=notes,
        weights=weights, alpha_pooled=float((rho_pooled < collapse_threshold).mean()),
        rho_collapsed_pooled=rho_coll_pooled, alpha_corrected=est["alpha_corrected"],
        beta_corrected=est["beta_corrected"], spearman=spearman, top1_rank=top1_rank,
        capture=est["capture"], null=null, intervals=intervals, ci=ci,
        n_boot=int(n_boot) if ci is not None else 0, curve=curve, user_curves=user_curves,
        c_sigma=est["c_sigma"], shape=shape,
    )


def _estimate_with_collapse(qs: inf.QueryStats, collapsed: np.ndarray, threshold: float,
                            weights: str) -> dict:
    """:func:`inference.estimate` with the collapse decision given (pooled rho_u)."""
    nu = qs.n_users
    n_u = np.bincount(qs.user, minlength=nu).astype(float)
    mean_u = np.bincount(qs.user, weights=qs.rho, minlength=nu) / n_u
    plain = inf.estimate(qs, np.arange(qs.rho.size), qs.user, nu, threshold=threshold,
                         weights=weights)
    active = ~collapsed[qs.user]
    w = 1.0 / n_u[qs.user] if weights == "user" else np.ones(qs.rho.size)
    r = qs.rho
    hacked, pos = active & (r < 0), active & (r >= 0)
    w_act = w[active].sum()
    beta = float(w[hacked].sum() / w_act) if w_act > 0 else 0.0
    rho_plus = float((w * r)[pos].sum() / w[pos].sum()) if pos.any() else 0.0
    rho_minus = float((w * r)[hacked].sum() / w[hacked].sum()) if hacked.any() else 0.0
    alpha = float(collapsed.mean())
    rho_eff = (1.0 - beta) * rho_plus + beta * min(rho_minus, 0.0)
    rho_coll = float(mean_u[collapsed].mean()) if collapsed.any() else 0.0
    rho_total = (1.0 - alpha) * rho_eff + alpha * rho_coll
    g = qs.g
    out = dict(plain)
    out.update(alpha=alpha, beta=beta, rho_plus=rho_plus, rho_minus=rho_minus, rho_eff=rho_eff,
               rho_collapsed=rho_coll, rho_total=rho_total,
               curve_predicted=plain["curve_random"][0] + rho_total * plain["c_sigma"] * g)
    return out
