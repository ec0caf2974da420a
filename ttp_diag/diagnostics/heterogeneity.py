"""The refined (concomitant) Best-of-N prediction for pools that are not i.i.d. samples.

Why the law fails on heterogeneous pools
----------------------------------------
The paper's law (Proposition 4.4) writes a reward model's Best-of-N utility as
``mu + rho c sigma g(N)``: one correlation per query scales the oracle's curve. That is exact
when reward and score are jointly Gaussian, because then the reward expected at a given score
rank is *linear* in the rank's normal score. A pool mixing several systems (models, prompts,
temperatures) breaks the linearity: a metric that tells bad systems from good ones but not the
best candidates apart has a steep reward-vs-score relation in the bottom of the pool and a
flat one in the top, so its correlation is high while Best-of-N, which only ever picks from the
top, gains little (the law overshoots at large N); the reverse metric gives the reverse.

The refined prediction
----------------------
Let ``z`` be a candidate's normal score within its query (Blom's ``Phi^-1((k - 3/8) /
(M + 1/4))`` for score rank ``k`` of ``M``, averaged over tied positions). The *concomitant
curve* ``m(z) = E[r - mu_q | z]`` (the reward expected at a score rank; David & Nagaraja
2003, Sec. 6.8; Bhattacharya 1974; Yang 1977) determines the whole Best-of-N curve: with
``w_{N,k} = C(M-k, N-1) / C(M, N)`` the chance that rank k is the one chosen from a random
N-subset (the package's exact engine),

    U(N) = mu + mean_q sum_k w_{N,k} m(z_k),

and, for N past the pool (drawing from the same population), ``U(N) = mu + E m(M_N)`` with
``M_N`` the maximum of N standard normals. The law is the linear case ``m(z) = rho sigma z``
(under joint normality ``E m(M_N) = rho sigma E M_N``, the Gaussian shape).
The refined prediction fits the piecewise-linear curve

    m(z) = b_0 z + b_1 (z - k_1)_+ + b_2 (z - k_2)_+,   knots (k_1, k_2) = (0, 1),

by least squares over every candidate (queries centred, each user weighted as in the utility),
three numbers per reward model, and substitutes it above: within the pool through the exact
rank weights (:func:`ttp_diag.bon_curve` on the fitted rewards), past the largest pool M by
``U(M) + b . (E basis(M_N) - E basis(M_M))``
(:func:`ttp_diag.theory.prediction.expected_hinge_of_max`). The top segment rests on the few
top ranks of each pool, so this extrapolation is the weak part: :class:`ttp_diag.BestOfN`
continues past the pool with the law's increments instead (held-out-N check in
``docs/public_data.md``). ``b_0`` is the slope in the bottom
half of the pool, ``b_0 + b_1`` above the median and ``b_0 + b_1 + b_2`` in the top ~16%: the
part of the pool Best-of-N draws from.

With pools of 4 or fewer candidates of one size the three coefficients reproduce the mean
reward of every rank, so the in-sample refined curve *is* the observed one; the held-out
prediction (``predict(held_out=True)``, coefficients from the other users) is then the honest
number, and it is the one :class:`ttp_diag.BestOfN` chooses by.

Which prediction to trust
-------------------------
:func:`select_prediction` tests the law's linearity assumption, ``H0: b_1 = b_2 = 0``, with a
Wald test whose covariance comes from a bootstrap over users (the unit the package resamples):
rejected at ``significance`` -> the refined prediction, else the paper's law. The test's size
under the i.i.d. Gaussian truth is checked by simulation in ``tests/test_heterogeneous.py``.
:class:`ttp_diag.BestOfN` (``prediction="auto"``) decides by the evidence instead: the refined
prediction where its held-out error (coefficients cross-fitted over users,
``predict(held_out=True)``) is at most the law's gain error, and reports the test beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._checks import check_ci, check_n_boot, check_seed
from .._summary import Result
from ..exceptions import ConfigError, DataError
from ..table import validate_score_table
from ..theory.prediction import expected_hinge_of_max

__all__ = ["KNOTS", "ConcomitantFit", "fit_concomitant", "normal_scores", "select_prediction"]

#: knots of the piecewise-linear concomitant curve, in normal-score units
KNOTS: tuple[float, ...] = (0.0, 1.0)


def normal_scores(table: pd.DataFrame, score: str) -> np.ndarray:
    """Each candidate's Blom normal score of its ``score`` rank within its query.

    ``Phi^-1((k - 3/8) / (M + 1/4))`` for rank k (1 = lowest) of M; tied candidates get the mean
    over their positions, so the scores of a query always average 0 up to Blom's symmetry.

    Examples
    --------
    >>> t = pd.DataFrame({"query_id": ["a"] * 3, "score_x": [0.1, 0.5, 0.5]})
    >>> np.round(normal_scores(t, "score_x"), 3)
    array([-0.869,  0.435,  0.435])
    """
    from scipy import special

    g = table.groupby("query_id", sort=False)[score]
    lo = g.rank(method="min").to_numpy(dtype=int)
    hi = g.rank(method="max").to_numpy(dtype=int)
    m = g.transform("size").to_numpy(dtype=int)
    out = np.empty(len(table))
    for size in np.unique(m):
        k = np.arange(1, size + 1)
        cum = np.concatenate(([0.0], np.cumsum(special.ndtri((k - 0.375) / (size + 0.25)))))
        rows = m == size
        out[rows] = (cum[hi[rows]] - cum[lo[rows] - 1]) / (hi[rows] - lo[rows] + 1)
    return out


def _design(z: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    return np.column_stack([z] + [np.maximum(z - k, 0.0) for k in knots])


@dataclass
class ConcomitantFit(Result):
    """A fitted concomitant curve ``E[r - mu_q | z] = b . basis(z)`` of one score column.

    Attributes
    ----------
    score : str
    knots : tuple of float
    coef : numpy.ndarray
        ``b_0, b_1, ...`` (reward units per normal-score unit).
    coef_ci : numpy.ndarray
        Percentile bootstrap interval over users, shape ``(2, len(coef))``.
    wald, p_linear : float
        Wald statistic and p-value of ``H0: b_1 = ... = 0`` (the law's linear concomitant).
    n_users, n_queries, n_boot : int
    """

    score: str
    knots: tuple[float, ...]
    coef: np.ndarray
    coef_ci: np.ndarray
    wald: float
    p_linear: float
    n_users: int
    n_queries: int
    n_boot: int
    ci: float = 0.95
    folds: int = 0
    _fitted: pd.DataFrame = field(repr=False, default=None)
    _fitted_oof: pd.DataFrame | None = field(repr=False, default=None)
    _pools: tuple[int, int] = (0, 0)
    _data: tuple = field(repr=False, default=())

    @property
    def pool_sizes(self) -> tuple[int, int]:
        """Smallest and largest pool of the fitted table."""
        return self._pools

    @property
    def slopes(self) -> np.ndarray:
        """Slope of the curve in each segment: below ``knots[0]``, between the knots, above."""
        return np.cumsum(self.coef)

    def predict(self, ns, pool: str | None = None, *, held_out: bool = False) -> np.ndarray:
        """Refined Best-of-N utility at ``ns``.

        Up to the largest pool M the exact engine on the fitted rewards (``pool="clip"`` where
        N exceeds the smallest pool, unless told otherwise); past it, ``U(M) + b . (E
        basis(M_N) - E basis(M_M))`` with ``M_N`` the maximum of N standard normals
        (continuous at M).
        ``held_out=True``: each user's fitted rewards come from the coefficients fitted
        without that user's fold (cross-fitting, ``folds`` > 1 at fit time), an honest
        out-of-sample prediction of the same curve.
        """
        from ..bon import bon_curve

        ns_arr = np.atleast_1d(np.asarray(ns, dtype=float))
        smallest, largest = self._pools
        out = np.empty(ns_arr.size)
        inside = ns_arr <= largest
        if held_out and self._fitted_oof is None:
            raise ConfigError("predict(held_out=True) needs a fit with folds >= 2 "
                              "(fit_concomitant(..., folds=5)).")
        fitted = self._fitted_oof if held_out else self._fitted
        if inside.any():
            n_in = [int(n) for n in ns_arr[inside]]
            mode = pool or ("clip" if max(n_in) > smallest else "error")
            out[inside] = bon_curve(fitted, self.score, n_in, split=None, pool=mode,
                                    validate=False)["utility"].to_numpy()
        if (~inside).any():
            # continue from the exact value at the largest pool along the fitted curve:
            # U(N) = U(M) + b . (E basis(M_N) - E basis(M_M)), continuous at M
            u_top = float(bon_curve(fitted, self.score, [largest], split=None, pool="clip",
                                    validate=False)["utility"][0])
            h = expected_hinge_of_max(np.concatenate(([float(largest)], ns_arr[~inside])),
                                      self.knots)
            out[~inside] = u_top + (h[1:] - h[0]) @ self.coef
        return out

    def rank_points(self, step: float = 0.05) -> pd.DataFrame:
        """Mean centred reward at each normal score of the rank (user-weighted, scores rounded
        to ``step``): columns ``z``, ``reward`` (the dots of :meth:`plot`)."""
        z, y, w = self._data
        zr = np.round(z / step) * step
        pts = pd.DataFrame({"z": zr, "wy": w * y, "w": w}).groupby("z").sum()
        return pd.DataFrame({"z": pts.index.to_numpy(),
                             "reward": (pts["wy"] / pts["w"]).to_numpy()})

    def fitted_curve(self, n_points: int = 200) -> pd.DataFrame:
        """The fitted piecewise-linear curve and the law's straight line of the same overall
        least-squares slope, on a grid of normal scores: columns ``z``, ``refined``, ``law``."""
        z, y, w = self._data
        grid = np.linspace(float(z.min()), float(z.max()), n_points)
        # the fit is on query-centred bases: centre the curve the same way (weighted mean)
        centre = (w @ _design(z, self.knots)) / w.sum()
        slope = float(np.sum(w * z * y) / np.sum(w * z * z))
        return pd.DataFrame({"z": grid, "refined": (_design(grid, self.knots) - centre) @ self.coef,
                             "law": slope * grid})

    def plot(self, ax=None):
        """The concomitant curve against the law's straight line
        (:func:`ttp_diag.plots.heterogeneity.plot_concomitant`)."""
        from ttp_diag.plots.heterogeneity import plot_concomitant

        return plot_concomitant(self, ax)

    # result convention
    def _summary_frame(self) -> pd.DataFrame:
        names = ["slope_low"] + [f"hinge_{k:g}" for k in self.knots]
        rows = [{"selector": self.score, "quantity": n, "estimate": float(b),
                 "ci_low": float(lo), "ci_high": float(hi)}
                for n, b, lo, hi in zip(names, self.coef, *self.coef_ci, strict=True)]
        rows.append({"selector": self.score, "quantity": "p_linear", "estimate": self.p_linear,
                     "ci_low": np.nan, "ci_high": np.nan})
        return pd.DataFrame(rows)

    def _text(self) -> str:
        segs = [f"z<{self.knots[0]:g}"] + [
            f"z>{k:g}" for k in self.knots]
        sl = ", ".join(f"{s}: {v:+.4f}" for s, v in zip(segs, self.slopes, strict=True))
        return (f"concomitant curve of {self.score}: slopes {sl} (reward per normal-score "
                f"unit); linearity (the law's assumption) p = {self.p_linear:.3g} "
                f"(Wald, bootstrap over {self.n_users} users, {self.n_boot} resamples, "
                f"{self.n_queries} queries)")


def fit_concomitant(table: pd.DataFrame, score: str, *, knots: Sequence[float] = KNOTS,
                    split: str | None = "val", ci: float = 0.95, n_boot: int = 200,
                    folds: int = 5, seed: int | None = 0,
                    validate: bool = True) -> ConcomitantFit:
    """Fit the piecewise-linear concomitant curve of ``score`` (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        A score table.
    score : str
        Score column.
    knots : sequence of float, default (0, 1)
        Hinge knots in normal-score units.
    split : str or None, default "val"
    ci : float, default 0.95
        Confidence level of the bootstrap intervals of the coefficients.
    n_boot : int, default 200
        Bootstrap resamples of users (covariance of the linearity test, intervals).
    folds : int, default 5
        Cross-fitting folds of users for ``predict(held_out=True)`` (0 or 1: none; at most
        the number of users).
    seed : int or None, default 0
    validate : bool, default True

    Returns
    -------
    ConcomitantFit

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=20, n_queries=5, n_candidates=12, seed=0)
    >>> fit = td.fit_concomitant(t, "score_prob")
    >>> fit.coef.shape, bool(fit.coef[0] > 0)
    ((3,), True)
    >>> bool(np.isclose(fit.predict([1])[0], td.bon_curve(t, "random", [1])["utility"][0]))
    True
    """
    n_boot = check_n_boot(n_boot)
    seed = check_seed(seed)
    ci_level = check_ci(ci, allow_none=False)
    t = validate_score_table(table, scores=[score], split=split) if validate else table
    t = t[["user_id", "query_id", "cand_id", "reward", score]].reset_index(drop=True)
    knots = tuple(float(k) for k in knots)
    q = t["query_id"].to_numpy()
    z = normal_scores(t, score)
    basis = _design(z, knots)
    basis_c = basis - pd.DataFrame(basis).groupby(q).transform("mean").to_numpy()
    r_mean = t.groupby("query_id", sort=False)["reward"].transform("mean").to_numpy()
    y = t["reward"].to_numpy(dtype=float) - r_mean
    sizes = t.groupby("query_id", sort=False)["reward"].transform("size").to_numpy()
    users, u_idx = np.unique(t["user_id"].to_numpy(), return_inverse=True)
    q_per_user = t.groupby("user_id")["query_id"].transform("nunique").to_numpy()
    w = 1.0 / (q_per_user * sizes)
    p = basis_c.shape[1]
    n_u = users.size
    # per-user sufficient statistics: the bootstrap over users only reweights them
    xtx = np.zeros((n_u, p, p))
    xty = np.zeros((n_u, p))
    wx = basis_c * w[:, None]
    for a in range(p):
        xty[:, a] = np.bincount(u_idx, weights=wx[:, a] * y, minlength=n_u)
        for b in range(p):
            xtx[:, a, b] = np.bincount(u_idx, weights=wx[:, a] * basis_c[:, b], minlength=n_u)
    a_all = xtx.sum(0)
    if np.allclose(a_all, 0):
        raise DataError(
            f"fit_concomitant: {score!r} is constant within every query, so its ranks say "
            f"nothing about the reward; drop the column or use prediction='law'.")
    coef = _solve(a_all, xty.sum(0))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_u, np.full(n_u, 1.0 / n_u), size=n_boot).astype(float)
    boot = np.full((n_boot, p), np.nan)
    for i, c in enumerate(counts):
        boot[i] = _solve(np.tensordot(c, xtx, axes=1), c @ xty)
    boot = boot[np.all(np.isfinite(boot), axis=1)]
    tail = (1 - ci_level) / 2
    coef_ci = (np.quantile(boot, [tail, 1 - tail], axis=0) if len(boot) > 1
               else np.full((2, p), np.nan))
    wald, p_lin = _wald(coef[1:], boot[:, 1:])
    fitted = t.assign(reward=r_mean + basis_c @ coef)
    oof = None
    folds = min(int(folds), n_u)
    if folds >= 2:
        fold_of_user = np.random.default_rng(seed).permutation(n_u) % folds
        pred = np.empty(len(t))
        for f in range(folds):
            keep = fold_of_user != f
            rows = fold_of_user[u_idx] == f
            pred[rows] = basis_c[rows] @ _solve(xtx[keep].sum(0), xty[keep].sum(0))
        oof = t.assign(reward=r_mean + pred)
    m = t.groupby("query_id").size()
    return ConcomitantFit(score=score, knots=knots, coef=coef, coef_ci=coef_ci, wald=wald,
                          p_linear=p_lin, n_users=n_u, n_queries=int(m.size), n_boot=n_boot,
                          ci=ci_level, folds=folds if folds >= 2 else 0, _fitted=fitted,
                          _fitted_oof=oof, _pools=(int(m.min()), int(m.max())),
                          _data=(z, y, w))


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least-squares coefficients; the minimum-norm solution where ties leave a segment empty
    (e.g. every top candidate tied), so the fitted rewards stay defined."""
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _wald(b: np.ndarray, boot: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if b.size == 0 or len(boot) <= b.size:
        return float("nan"), float("nan")
    cov = np.atleast_2d(np.cov(boot, rowvar=False))
    try:
        w = float(b @ np.linalg.solve(cov, b))
    except np.linalg.LinAlgError:
        return float("nan"), float("nan")
    return w, float(stats.chi2.sf(w, b.size))


def select_prediction(fit: ConcomitantFit, significance: float = 0.05) -> tuple[str, str]:
    """``("refined" | "law", reason)``: the refined prediction where the law's linear
    concomitant is rejected at ``significance``, else the paper's law (the assumption test;
    ``BestOfN(prediction="auto")`` decides by held-out error and reports this test beside it).

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=20, n_queries=5, n_candidates=12, seed=0)
    >>> select_prediction(td.fit_concomitant(t, "score_prob"))[0]
    'law'
    """
    s = fit.slopes
    where = (f"reward slope per normal-score unit {s[0]:+.3g} below the median, {s[-1]:+.3g} "
             f"in the top (z > {fit.knots[-1]:g})")
    if np.isfinite(fit.p_linear) and fit.p_linear < significance:
        return "refined", (f"law's linearity rejected (p = {fit.p_linear:.2g} < "
                           f"{significance:g}, {fit.n_users} users): {where}")
    if not np.isfinite(fit.p_linear):
        return "law", (f"linearity test not available (too few distinct ranks or users, "
                       f"{fit.n_users} users): {where}")
    return "law", (f"linearity not rejected (p = {fit.p_linear:.2g} >= {significance:g}, "
                   f"{fit.n_users} users): {where}")
