"""Checks of the two analytical assumptions behind the scaling laws (paper appendix C.2).

1. **Sub-Gaussian rewards** (Theorem 3.1): for each user, the smallest parameter ``s`` with
   ``E[exp(l (X - mu))] <= exp(l**2 s**2 / 2)`` for every ``l`` on a grid, computed on the
   empirical distribution of the user's rewards, and the empirical CDF against the Gaussian
   envelope it implies.
2. **Linear conditional expectation** (Lemma 4.2): predictions and rewards standardised
   within each user, predictions binned, and the binned means ``E[r* | r_hat]`` compared with
   the straight line whose slope is the correlation ``rho``.

Examples
--------
>>> import numpy as np
>>> from ttp_diag.analysis.assumptions import sub_gaussian_parameter
>>> round(sub_gaussian_parameter(np.array([-1.0, 1.0] * 50)), 6)  # Rademacher: s = 1
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from ttp_diag._summary import Result
from ttp_diag.exceptions import ConfigError, ScoreTableError
from ttp_diag.table import score_columns as _score_columns

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "LinearityCheck",
    "SubGaussianCheck",
    "ecdf_envelope",
    "linearity_check",
    "sub_gaussian_check",
    "sub_gaussian_parameter",
]


def _select_split(table: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """The validated rows of ``split`` (scores are checked by the caller when it uses them)."""
    from ttp_diag.table import validate_score_table

    return validate_score_table(table, scores=[], split=split)


def _log_mgf_ratio(y: np.ndarray, lam: np.ndarray, log_n: float) -> np.ndarray:
    """``2 log E[exp(l y)] / l**2`` for centred ``y``, vectorised over ``lam`` (no overflow)."""
    lam = np.atleast_1d(np.asarray(lam, dtype=float))
    log_m = special.logsumexp(np.outer(lam, y), axis=1) - log_n
    return 2.0 * log_m / lam**2


def sub_gaussian_parameter(
    values: ArrayLike,
    *,
    t_max: float = 10.0,
    n_grid: int = 400,
    refine: bool = True,
    return_lambda: bool = False,
) -> float | tuple[float, float]:
    """Smallest sub-Gaussian parameter of an empirical distribution on a lambda grid.

    The parameter is ``s = sqrt(max_l 2 log E[exp(l (X - mean))] / l**2)`` where the
    expectation is over the sample (each value weight ``1/n``) and ``l`` runs over a
    symmetric log-spaced grid ``+-[1e-2, t_max] / std`` together with the limit ``l -> 0``
    (which equals the variance). The best grid point is refined with a bounded scalar search
    between its neighbours, so two-point laws whose optimum lies off the grid are exact to
    about 1e-9.

    Parameters
    ----------
    values : array_like
        Finite rewards (at least 2).
    t_max : float, default 10
        Largest ``|l|`` in units of ``1 / std``. Beyond about 10 the empirical MGF is
        dominated by the sample maximum and the ratio decays like ``1/l``.
    n_grid : int, default 400
        Grid points per sign.
    refine : bool, default True
        Refine the grid maximum with :func:`scipy.optimize.minimize_scalar`.
    return_lambda : bool, default False
        Also return the maximising ``l`` (``0.0`` when the variance limit wins).

    Returns
    -------
    float or (float, float)
        ``s`` (0 for a constant sample), and ``l*`` when asked.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.ones(20), np.zeros(80)]  # Bernoulli(0.2): s**2 = 0.6 / (2 ln 4)
    >>> round(sub_gaussian_parameter(x) ** 2, 5)
    0.2164
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ConfigError(f"sub_gaussian_parameter needs at least 2 values, got {x.size}")
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).sum())
        raise ConfigError(f"sub_gaussian_parameter got {bad} NaN/inf value(s); drop them first")
    y = x - x.mean()
    sd = float(np.sqrt(np.mean(y**2)))
    if sd == 0.0 or sd < 1e-12 * max(1.0, float(np.abs(x).max())):
        return (0.0, 0.0) if return_lambda else 0.0
    y = y / sd  # work in standard units; s scales back by sd
    log_n = float(np.log(y.size))
    t = np.logspace(-2, np.log10(t_max), n_grid)
    grid = np.r_[-t[::-1], t]
    vals = _log_mgf_ratio(y, grid, log_n)
    best_val, best_lam = 1.0, 0.0  # the l -> 0 limit of the ratio is the variance (1 here)
    i = int(np.argmax(vals))
    if vals[i] > best_val:
        best_val, best_lam = float(vals[i]), float(grid[i])
        if refine:
            lo = grid[i - 1] if i > 0 else grid[i]
            hi = grid[i + 1] if i + 1 < grid.size else grid[i]
            if np.sign(lo) != np.sign(grid[i]):  # never cross l = 0, where the ratio is 0/0
                lo = grid[i] * 0.5
            if np.sign(hi) != np.sign(grid[i]):
                hi = grid[i] * 0.5
            lo, hi = min(lo, hi), max(lo, hi)
            if hi > lo:
                res = optimize.minimize_scalar(
                    lambda lam: -_log_mgf_ratio(y, lam, log_n)[0],
                    bounds=(lo, hi),
                    method="bounded",
                    options={"xatol": 1e-10 * max(1.0, abs(grid[i]))},
                )
                if -res.fun > best_val:
                    best_val, best_lam = float(-res.fun), float(res.x)
    s = sd * float(np.sqrt(best_val))
    return (s, best_lam / sd) if return_lambda else s


def ecdf_envelope(values: ArrayLike, s: float | None = None, *,
                  n_points: int = 200) -> pd.DataFrame:
    """Empirical CDF against the Gaussian CDF and the sub-Gaussian (Chernoff) envelope.

    With mean ``mu`` and sub-Gaussian parameter ``s`` the MGF bound implies
    ``P(X - mu >= t) <= exp(-t**2 / (2 s**2))`` and the same for the lower tail, so the CDF
    must lie above ``1 - exp(-(x-mu)**2/(2 s**2))`` right of ``mu`` and below
    ``exp(-(x-mu)**2/(2 s**2))`` left of it.

    Parameters
    ----------
    values : array_like
        Rewards of one user.
    s : float, optional
        Sub-Gaussian parameter; computed with :func:`sub_gaussian_parameter` when omitted.
    n_points : int, default 200
        Points of the x grid.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``ecdf``, ``gaussian_cdf`` (normal with mean ``mu`` and sd ``s``),
        ``envelope_low``, ``envelope_high``.

    Examples
    --------
    >>> import numpy as np
    >>> env = ecdf_envelope(np.random.default_rng(0).normal(size=500))
    >>> inside = (env.ecdf >= env.envelope_low - 1e-12) & (env.ecdf <= env.envelope_high + 1e-12)
    >>> bool(inside.all())
    True
    """
    x = np.sort(np.asarray(values, dtype=float).ravel())
    if s is None:
        s = sub_gaussian_parameter(x)
    mu = float(x.mean())
    pad = 0.5 * max(float(s), float(x.std()), 1e-12)
    grid = np.linspace(x[0] - pad, x[-1] + pad, n_points)
    ecdf = np.searchsorted(x, grid, side="right") / x.size
    if s > 0:
        tail = np.exp(-((grid - mu) ** 2) / (2.0 * s**2))
        gauss = stats.norm.cdf(grid, loc=mu, scale=s)
    else:
        tail = (grid == mu).astype(float)
        gauss = (grid >= mu).astype(float)
    low = np.where(grid >= mu, 1.0 - tail, 0.0)
    high = np.where(grid <= mu, tail, 1.0)
    return pd.DataFrame(
        {"x": grid, "ecdf": ecdf, "gaussian_cdf": gauss, "envelope_low": low, "envelope_high": high}
    )


@dataclass
class SubGaussianCheck(Result):
    """Result of :func:`sub_gaussian_check`.

    Attributes
    ----------
    per_user : pandas.DataFrame
        ``user_id, n, mean, std, s, ratio (s / std), lambda_star, envelope_violation,
        ks_gaussian``. ``envelope_violation`` is the largest amount by which an empirical tail
        probability exceeds its Chernoff bound (0 when the envelope holds everywhere);
        ``ks_gaussian`` is ``sup |ECDF - Phi((x - mean) / s)|``.
    center : str
        ``"user"`` or ``"query"`` (see :func:`sub_gaussian_check`).
    values : dict
        user_id -> the (centred when ``center="query"``) rewards, for plotting.
    """

    per_user: pd.DataFrame
    center: str
    values: dict

    def representative_user(self) -> Any:
        """The user whose ``s / std`` ratio is the median one (ties: first)."""
        pu = self.per_user.dropna(subset=["ratio"])
        if pu.empty:
            raise ConfigError("no user has a non-constant reward distribution")
        order = pu["ratio"].rank(method="first")
        return pu.loc[(order - (len(pu) + 1) / 2).abs().idxmin(), "user_id"]

    def envelope(self, user: Any) -> pd.DataFrame:
        """:func:`ecdf_envelope` of ``user``'s rewards at the user's fitted ``s``."""
        s = self.per_user.set_index("user_id").loc[user, "s"]
        return ecdf_envelope(self.values[user], s)

    def _summary_frame(self) -> pd.DataFrame:
        pu = self.per_user.dropna(subset=["ratio"])
        return pd.DataFrame([{
            "center": self.center, "n_users": len(pu),
            "ratio_median": pu["ratio"].median(), "ratio_min": pu["ratio"].min(),
            "ratio_max": pu["ratio"].max(), "ks_gaussian_median": pu["ks_gaussian"].median(),
            "envelope_violation_max": pu["envelope_violation"].max()}])

    def plot(self, ax: Axes | None = None, *, kind: str = "ecdf", user: Any = None) -> Axes:
        """``kind="ecdf"``: a user's empirical CDF with the Gaussian CDF and the
        sub-Gaussian envelope (Fig. A6a); ``kind="ratio"``: s against std per user (A6b)."""
        from ttp_diag.plots.assumptions import plot_sub_gaussian

        return plot_sub_gaussian(self, ax, kind=kind, user=user)

    def _text(self) -> str:
        pu = self.per_user.dropna(subset=["ratio"])
        if pu.empty:
            return "sub-Gaussian check: no user with non-constant rewards"
        return (
            f"sub-Gaussian check ({len(pu)} users, centred per {self.center}): "
            f"s/std median {pu.ratio.median():.2f} (range {pu.ratio.min():.2f}-"
            f"{pu.ratio.max():.2f}); KS distance to N(mu, s) median {pu.ks_gaussian.median():.3f}; "
            f"largest envelope violation {pu.envelope_violation.max():.3g}"
        )


def _envelope_stats(x: np.ndarray, s: float) -> tuple[float, float]:
    x = np.sort(x)
    n = x.size
    mu = x.mean()
    if s <= 0:
        return 0.0, float("nan")
    # empirical P(X >= x_i) and P(X <= x_i) at the sample points, where the ECDF jumps
    upper = 1.0 - np.searchsorted(x, x, side="left") / n
    lower = np.searchsorted(x, x, side="right") / n
    bound = np.exp(-((x - mu) ** 2) / (2 * s**2))
    viol = np.r_[(upper - bound)[x > mu], (lower - bound)[x < mu], 0.0].max()
    cdf = stats.norm.cdf(x, loc=mu, scale=s)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    return float(max(viol, 0.0)), float(ks)


def sub_gaussian_check(
    table: pd.DataFrame,
    *,
    split: str | None = "val",
    center: str = "user",
    t_max: float = 10.0,
) -> SubGaussianCheck:
    """Per-user smallest sub-Gaussian parameter of the true rewards (appendix C.2).

    Parameters
    ----------
    table : pandas.DataFrame
        Score table (only ``user_id``, ``query_id`` and ``reward`` are used).
    split : str or None, default "val"
        Split to use (``None``: all rows).
    center : {"user", "query"}, default "user"
        ``"user"``: the user's rewards pooled over queries, as in Theorem 3.1.
        ``"query"``: rewards minus their query mean first, i.e. the within-query spread that
        Best-of-N actually draws from.
    t_max : float, default 10
        Passed to :func:`sub_gaussian_parameter`.

    Returns
    -------
    SubGaussianCheck

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> t = pd.DataFrame({"user_id": "u", "query_id": np.repeat(["q1", "q2"], 50),
    ...                   "cand_id": np.tile(np.arange(50), 2), "reward": np.tile([0.0, 1.0], 50)})
    >>> round(float(sub_gaussian_check(t, split=None).per_user.s.iloc[0]), 6)
    0.5
    """
    if center not in ("user", "query"):
        raise ConfigError(f"center must be 'user' or 'query', got {center!r}")
    t = _select_split(table, split)
    rows, values = [], {}
    for user, g in t.groupby("user_id", sort=True):
        r = g["reward"].to_numpy(dtype=float)
        mean = float(r.mean())
        if center == "query":
            r = r - g.groupby("query_id")["reward"].transform("mean").to_numpy(dtype=float)
        values[user] = r
        std = float(r.std())
        if r.size < 2:
            s, lam = float("nan"), float("nan")
        else:
            s, lam = sub_gaussian_parameter(r, t_max=t_max, return_lambda=True)
        viol, ks = _envelope_stats(r, s) if r.size >= 2 else (float("nan"), float("nan"))
        rows.append(
            {
                "user_id": user,
                "n": int(r.size),
                "mean": mean,
                "std": std,
                "s": s,
                "ratio": s / std if std > 0 else float("nan"),
                "lambda_star": lam,
                "envelope_violation": viol,
                "ks_gaussian": ks,
            }
        )
    return SubGaussianCheck(per_user=pd.DataFrame(rows), center=center, values=values)


@dataclass
class LinearityCheck(Result):
    """Result of :func:`linearity_check`.

    Attributes
    ----------
    bins : pandas.DataFrame
        ``score, bin, x_mean, x_low, x_high, y_mean, y_se, count`` in standard units.
    per_score : pandas.DataFrame
        One row per score (also read as ``summary``): ``score, rho`` (pooled Pearson of the
        standardised values),
        ``slope`` (count-weighted least squares line through the bin means),
        ``intercept``, ``linear_r2`` (weighted R^2 of the bin means about that line),
        ``max_abs_dev`` (largest distance of a bin mean from the line, in SD units),
        ``quad_coef`` (quadratic coefficient of a weighted quadratic fit: curvature),
        ``n``, ``n_groups_dropped`` (groups with constant score or reward).
    standardize : str
    """

    bins: pd.DataFrame
    per_score: pd.DataFrame
    standardize: str

    def _summary_frame(self) -> pd.DataFrame:
        return self.per_score

    def plot(self, ax: Axes | None = None, *, score: str | None = None) -> Axes:
        """Binned E[r* | r_hat] of one score column against the line of slope rho (Fig. A7)."""
        from ttp_diag.plots.assumptions import plot_linearity

        return plot_linearity(self, ax, score=score)

    def _text(self) -> str:
        parts = [
            f"{r.score}: slope {r.slope:.3f} vs rho {r.rho:.3f}, R^2 of bin means {r.linear_r2:.3f}"
            for r in self.summary.itertuples()
        ]
        return "linearity of E[r*|r_hat]: " + "; ".join(parts)


def _standardize(values: pd.Series, groups: pd.Series | None) -> pd.Series:
    if groups is None:
        sd = values.std(ddof=0)
        return (values - values.mean()) / sd
    g = values.groupby(groups)
    return (values - g.transform("mean")) / g.transform(lambda v: v.std(ddof=0))


def linearity_check(
    table: pd.DataFrame,
    scores: list[str] | None = None,
    *,
    split: str | None = "val",
    n_bins: int = 10,
    standardize: str = "user",
) -> LinearityCheck:
    """Binned ``E[r* | r_hat]`` with its slope against the correlation (appendix C.2).

    Scores and rewards are z-scored within each user (``standardize="user"``, the pooled
    per-user correlation of the diagnostics), within each query, or over the whole table.
    Under a linear conditional expectation ``E[z* | z_hat] = rho * z_hat``, so the binned means
    lie on a line through the origin with slope ``rho``. Groups where either the score or the
    reward is constant have no correlation and are dropped (counted in the summary).

    Parameters
    ----------
    table : pandas.DataFrame
        Score table.
    scores : list of str, optional
        Score columns (default: every ``score_*`` column).
    split : str or None, default "val"
    n_bins : int, default 10
        Quantile bins of the standardised prediction (fewer when values tie).
    standardize : {"user", "query", "none"}, default "user"

    Returns
    -------
    LinearityCheck

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=4000)
    >>> t = pd.DataFrame({"user_id": "u", "query_id": np.arange(4000) // 20,
    ...                   "cand_id": np.arange(4000) % 20, "score_a": z,
    ...                   "reward": 0.6 * z + 0.8 * rng.normal(size=4000)})
    >>> res = linearity_check(t, split=None)
    >>> bool(abs(res.summary.slope.iloc[0] - res.summary.rho.iloc[0]) < 0.05)
    True
    """
    if standardize not in ("user", "query", "none"):
        raise ConfigError(f"standardize must be 'user', 'query' or 'none', got {standardize!r}")
    scores = list(scores) if scores is not None else _score_columns(table)
    if not scores:
        raise ConfigError("linearity_check needs at least one score_* column; pass scores=[...]")
    missing = [s for s in scores if s not in table.columns]
    if missing:
        raise ScoreTableError(f"score column(s) {missing} not in the table; available: "
                         f"{_score_columns(table)}")
    from ttp_diag.table import validate_score_table

    t = validate_score_table(table, scores=scores, split=split)
    group_col = {"user": "user_id", "query": "query_id", "none": None}[standardize]
    bins_rows, summary_rows = [], []
    for score in scores:
        d = t[[c for c in ("user_id", "query_id", "reward", score) if c]].copy()
        groups = d[group_col] if group_col else None
        zx = _standardize(d[score].astype(float), groups)
        zy = _standardize(d["reward"].astype(float), groups)
        ok = np.isfinite(zx) & np.isfinite(zy)
        dropped = int(d.loc[~ok, group_col].nunique()) if group_col else int((~ok).any())
        zx, zy = zx[ok].to_numpy(), zy[ok].to_numpy()
        if zx.size < 3:
            raise ScoreTableError(
                f"linearity_check: {score!r} has fewer than 3 usable rows after dropping "
                f"{dropped} group(s) with constant score or reward"
            )
        rho = float(np.corrcoef(zx, zy)[0, 1])
        q = pd.qcut(pd.Series(zx), q=n_bins, labels=False, duplicates="drop")
        frame = pd.DataFrame({"bin": q.to_numpy(), "x": zx, "y": zy})
        agg = frame.groupby("bin").agg(
            x_mean=("x", "mean"),
            x_low=("x", "min"),
            x_high=("x", "max"),
            y_mean=("y", "mean"),
            y_sd=("y", "std"),
            count=("y", "size"),
        )
        agg["y_se"] = agg["y_sd"].fillna(0.0) / np.sqrt(agg["count"])
        agg = agg.drop(columns="y_sd").reset_index()
        agg.insert(0, "score", score)
        bins_rows.append(agg)
        w = agg["count"].to_numpy(float)
        xb, yb = agg["x_mean"].to_numpy(), agg["y_mean"].to_numpy()
        if xb.size >= 2:
            slope, intercept = np.polyfit(xb, yb, 1, w=np.sqrt(w))
            fit = intercept + slope * xb
            ybar = np.average(yb, weights=w)
            ss_tot = np.sum(w * (yb - ybar) ** 2)
            r2 = 1.0 - np.sum(w * (yb - fit) ** 2) / ss_tot if ss_tot > 0 else float("nan")
            quad = np.polyfit(xb, yb, 2, w=np.sqrt(w))[0] if xb.size >= 3 else float("nan")
            max_dev = float(np.max(np.abs(yb - fit)))
        else:
            slope = intercept = r2 = quad = max_dev = float("nan")
        summary_rows.append(
            {
                "score": score,
                "rho": rho,
                "slope": float(slope),
                "intercept": float(intercept),
                "linear_r2": float(r2),
                "max_abs_dev": max_dev,
                "quad_coef": float(quad),
                "n": int(zx.size),
                "n_groups_dropped": dropped,
            }
        )
    return LinearityCheck(
        bins=pd.concat(bins_rows, ignore_index=True),
        per_score=pd.DataFrame(summary_rows),
        standardize=standardize,
    )
