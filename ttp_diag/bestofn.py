"""One fitted Best-of-N analysis of a score table: curves, calibration, diagnostics, prediction.

:class:`BestOfN` is the one place where the package's recipe lives:

1. exact Best-of-N **curves** of Random, Oracle and every reward model
   (:func:`ttp_diag.bon_curves`);
2. **calibrate** the oracle law ``mu + c sigma g(N)``, with ``mu`` fixed at the exact
   random-selection utility by default (every shape has ``g(1) = 0``, so the law starts at
   Random for N = 1 and only ``c sigma`` is fitted, as in the paper's Appendix C.1);
3. **diagnose** every score column once (:func:`ttp_diag.diagnose`);
4. **predict** each model's curve from its diagnostics and the calibration (Prop. 4.4).

The command line (``ttp-diag analyze``, ``ttp-diag demo``, ``ttp-diag figures``), the HTML
report and ``paper_figures/make_all.py`` all consume a fitted :class:`BestOfN` instead of
recomputing any of these steps. It follows lifelines' fitters: settings in the constructor,
``fit`` returns ``self``, learned attributes end in ``_``, ``summary`` is a tidy DataFrame,
``print_summary()`` prints it, ``plot(kind=..., ax=None)`` draws it.
The fitting lives here; the results side (``summary``, the text forms, ``to_dict``,
``plot``) is the mixin :class:`ttp_diag._bestofn_summary._BestOfNResults`.

Examples
--------
>>> import ttp_diag as td
>>> t = td.simulate_score_table(n_users=12, n_queries=4, n_candidates=8, seed=0)
>>> bon = td.BestOfN(ns=[1, 2, 4, 8]).fit(t)
>>> sorted(bon.diagnostics_)
['score_det', 'score_global', 'score_prob']
>>> bool(bon.calibration_.mu == bon.curve("random")["utility"].iloc[0])
True
>>> list(bon.summary.columns[:4])
['score', 'rm', 'shape', 'alpha']
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

# The results side (summary frames, text, to_dict, plot) lives in _bestofn_summary; its
# names stay importable from here.
from ._bestofn_summary import (  # noqa: F401  (re-exported)
    _DIAG_FIRST,
    _ORACLE_DIAG,
    PLOT_KINDS,
    PlotKind,
    _BestOfNResults,
    _diag_fields,
    _gain_errors,
    _mean_capture,
    _none_if_nan,
)
from ._checks import check_ci, check_n_boot, check_names, check_ns, check_seed
from .bon import bon_curves
from .diagnostics import diagnose
from .table import ScoreTable, score_columns, validate_score_table
from .theory import SHAPES, Calibration, calibrate, predict_bon_curve

__all__ = ["BestOfN", "check_reward_signal", "default_ns", "pool_clipping", "resolve_pool"]

_UNSET: Any = object()


def default_ns(table: pd.DataFrame, *, split: str | None = "val") -> list[int]:
    """Candidate counts to analyse: every N up to the pool size (at most about 32 points).

    With equal pools that is the pool size. When pools differ (de-duplicated candidates) it
    is the median pool size, and queries with smaller pools use their whole pool for larger N
    (``pool="clip"``, chosen automatically, see :func:`resolve_pool`).

    Examples
    --------
    >>> import ttp_diag as td
    >>> default_ns(td.simulate_score_table(n_users=2, n_queries=2, n_candidates=6, seed=0))
    [1, 2, 3, 4, 5, 6]
    """
    t = validate_score_table(table, scores=[], split=split)
    m = max(int(np.median(t.groupby("query_id").size())), 2)
    if m <= 32:
        return list(range(1, m + 1))
    grid = np.unique(np.round(np.geomspace(1, m, 24)).astype(int))
    return [int(n) for n in grid]


def resolve_pool(table: pd.DataFrame, ns: Sequence[int],
                 pool: Literal["error", "clip"] | None = None) -> str:
    """``pool`` as given, or ``"clip"`` when some N exceeds the smallest pool, else ``"error"``.

    ``table`` must be already restricted to the analysed split.

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=2, n_queries=2, n_candidates=6, seed=0)
    >>> resolve_pool(t, [1, 6]), resolve_pool(t, [1, 7])
    ('error', 'clip')
    """
    if pool is not None:
        return pool
    smallest = int(table.groupby("query_id").size().min())
    return "clip" if max(ns) > smallest else "error"


def check_reward_signal(table: pd.DataFrame, *, split: str | None = None) -> None:
    """Raise a ValueError when no query of ``table`` has two different rewards.

    Best-of-N cannot gain anything then (the oracle equals random), so every relative number
    (relMAE, captured share of the oracle gap, rates of hacking) would be 0/0. ``table`` is
    an already validated table; ``split`` only names it in the message.

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=2, n_queries=2, n_candidates=4, seed=0)
    >>> check_reward_signal(t)
    >>> check_reward_signal(t.assign(reward=0.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no reward signal: every reward is 0 (8 queries, 32 candidates), so ...
    """
    r = table["reward"].to_numpy(dtype=float)
    spread = table.assign(_r=r).groupby("query_id")["_r"].agg(np.ptp)
    if len(spread) and not (spread > 0).any():
        where = f" in split {split!r}" if split else ""
        what = (f"every reward{where} is 0" if not np.any(r) else
                f"every query{where} has one reward value for all its candidates")
        raise ValueError(
            f"no reward signal: {what} ({len(spread)} queries, {len(r)} candidates), so "
            f"Best-of-N cannot beat random and relMAE/capture are undefined; check the reward "
            f"column (e.g. labels computed against an empty gold text) or analyse another "
            f"split.")


def _as_scores(table: pd.DataFrame, scores: str | Sequence[str] | None) -> list[str]:
    if scores is None:
        found = score_columns(table)
        if not found:
            raise ValueError(
                "the table has no score_* column to analyse (columns: "
                f"{', '.join(map(str, table.columns))}); add one per reward model or pass "
                "scores=[...] (--scores on the command line).")
        return found
    # an empty list is legitimate: random and oracle only (e.g. the oracle calibration figure)
    return check_names(scores, "scores", what="score column", allow_empty=True)


def _accepts(func: Any, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False


def _check_fit_ns(ns: Sequence[int]) -> list[int]:
    """``ns`` as given, refused when empty, not whole numbers >= 1, repeated or unsorted (the
    last N names the summary's capture column, so its order matters)."""
    from .exceptions import ConfigError

    out = check_ns(ns)
    if len(set(out)) != len(out) or out != sorted(out):
        raise ConfigError(f"ns must be increasing without repeats (the last N names the "
                          f"capture column); got {out}; use ns={sorted(set(out))}.")
    return out


def pool_clipping(table: pd.DataFrame, ns: Sequence[int]) -> tuple[dict[int, int], list[str]]:
    """Which N exceed the candidate pools of ``table`` (already the analysed split).

    Returns ``{N: effective N}`` for every N above the largest pool (Best-of-N then takes the
    whole pool, so N is in effect the largest pool size) and the notes that say so, also for
    N between the smallest and the largest pool (the smaller queries use their whole pool).

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=2, n_queries=2, n_candidates=6, seed=0)
    >>> pool_clipping(t, [1, 6, 50])[0]
    {50: 6}
    """
    sizes = table.groupby("query_id").size()
    smallest, largest = int(sizes.min()), int(sizes.max())
    over = [int(n) for n in ns if n > largest]
    mid = [int(n) for n in ns if smallest < n <= largest]
    notes = []
    if over:
        notes.append(
            f"N = {', '.join(map(str, over))} exceed{'s' if len(over) == 1 else ''} the "
            f"largest candidate pool ({largest} candidates): Best-of-N takes the whole pool "
            f"there, so these points are N = {largest} (clipped), not N = {over[-1]}; their "
            f"captured share is reported as capture_N{largest}. Sample more candidates or "
            f"use ns up to {largest}.")
    if mid:
        notes.append(
            f"N = {', '.join(map(str, mid))} exceed{'s' if len(mid) == 1 else ''} the smallest "
            f"candidate pool ({smallest}): {int((sizes < max(mid)).sum())} of {len(sizes)} "
            f"queries use their whole pool at N = {max(mid)} (pool='clip').")
    return {n: largest for n in over}, notes


class BestOfN(_BestOfNResults):
    """Exact Best-of-N curves, the oracle calibration, diagnostics and predictions, fitted once.

    Parameters
    ----------
    ns : sequence of int, optional
        Candidate counts N (default: every N up to the median pool size, :func:`default_ns`).
    shape : str or sequence of str, default "sqrt_log"
        Curve shape(s) g(N) of the law (``"sqrt_log"``, ``"gaussian"``, ``"kl"``). With several
        shapes every one is calibrated and predicted; the first is the primary one
        (``calibration_``, ``predict``'s default).
    mu : "random", "fit" or float, default "random"
        ``"random"``: fix mu at the exact random-selection utility and fit only ``c sigma``;
        ``"fit"``: fit mu too (least squares); a number: fix mu at it.
    split : str or None, default "val"
        Split to analyse (None: every row).
    pool : {"error", "clip"}, optional
        N above a query's pool: error, or use the whole pool; default ``"clip"`` exactly when
        some N exceeds the smallest pool (:func:`resolve_pool`).
    refined : bool, default False
        Predict with the collapsed users' correlation too (Eq. 30).
    collapse_threshold : float, default 0.1
        rho_u below which a user is collapsed.
    rho_u : {"mean_query", "pooled"}, default "mean_query"
        How :func:`ttp_diag.diagnose` measures rho_u: within query (the package's default) or
        pooled over the user's candidates (the paper's Definition 4.1).
    weights : {"user", "query"}, default "user"
        How :func:`ttp_diag.diagnose` averages queries into beta and rho+/-: each user equally,
        as utility does (package default), or each query equally (the paper).
    ci : float or None, default None
        Confidence level of the bootstrap over users (curves and, where
        :func:`ttp_diag.diagnose` supports it, diagnostics); None: no interval.
    n_boot : int, default 1000
        Bootstrap replicates.
    seed : int or None, default 0
        Seed of the bootstrap (the curves themselves are exact and need none).

    Attributes
    ----------
    scores_ : list of str
        Score columns analysed.
    ns_ : list of int
    pool_ : str
    table_ : pandas.DataFrame
        The validated rows of the analysed split.
    curves_ : pandas.DataFrame
        ``selector, n, utility`` (+ ``ci_low, ci_high``) for random, oracle and every score.
    calibrations_ : dict of str -> Calibration
        One per shape; ``calibration_`` is the primary shape's.
    diagnostics_ : dict of str -> Diagnostics
    predictions_ : pandas.DataFrame
        ``selector, shape, n, observed, predicted`` for the oracle and every score.
    best_shape_ : str
        The shape whose oracle fit has the highest R².

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=20, n_queries=6, n_candidates=16, seed=0)
    >>> bon = td.BestOfN(ns=[1, 4, 16], shape=("sqrt_log", "gaussian")).fit(t, "score_prob")
    >>> bon.summary.query("score == 'score_prob'")[["shape", "rel_mae"]].shape
    (2, 2)
    >>> bon.predict([64]).shape
    (1,)
    """

    def __init__(self, ns: Sequence[int] | None = None,
                 shape: str | Sequence[str] = "sqrt_log",
                 mu: Literal["random", "fit"] | float = "random", *,
                 split: str | None = "val", pool: Literal["error", "clip"] | None = None,
                 refined: bool = False, collapse_threshold: float = 0.1,
                 rho_u: Literal["pooled", "mean_query"] = "mean_query",
                 weights: Literal["user", "query"] = "user",
                 ci: float | None = None, n_boot: int = 1000, seed: int | None = 0) -> None:
        self.ns = ns
        self.shape = shape
        self.mu = mu
        self.split = split
        self.pool = pool
        self.refined = refined
        self.collapse_threshold = collapse_threshold
        self.rho_u = rho_u
        self.weights = weights
        self.ci = ci
        self.n_boot = n_boot
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    @property
    def shapes(self) -> list[str]:
        """The curve shapes as a list (the constructor takes one or several)."""
        shapes = [self.shape] if isinstance(self.shape, str) else list(self.shape)
        bad = [s for s in shapes if s not in SHAPES]
        if bad or not shapes:
            raise ValueError(f"unknown curve shape(s) {bad or shapes!r}; use one or more of "
                             f"{SHAPES}.")
        return shapes

    def _mu_value(self, random_utility: float) -> float | None:
        if isinstance(self.mu, str):
            if self.mu == "random":
                return random_utility
            if self.mu == "fit":
                return None
            raise ValueError(f"mu must be 'random', 'fit' or a number; got {self.mu!r}.")
        mu = float(self.mu)
        if not np.isfinite(mu):
            raise ValueError(f"mu must be finite; got {self.mu!r}.")
        return mu

    def fit(self, table: pd.DataFrame, scores: str | Sequence[str] | None = None, *,
            ci: float | None = _UNSET, n_boot: int = _UNSET,
            seed: int | None = _UNSET) -> BestOfN:
        """Compute curves, calibration, diagnostics and predictions of ``table``.

        Parameters
        ----------
        table : pandas.DataFrame
            A score table (validated here, once).
        scores : str or list of str, optional
            Score columns (default: every ``score_*`` column).
        ci, n_boot, seed
            Override the constructor's bootstrap settings for this fit (forwarded to
            :func:`ttp_diag.bon_curves` and, where it accepts them, :func:`ttp_diag.diagnose`).

        Returns
        -------
        BestOfN
            ``self``, fitted.
        """
        ci = self.ci if ci is _UNSET else ci
        n_boot = self.n_boot if n_boot is _UNSET else n_boot
        seed = self.seed if seed is _UNSET else seed
        ci = check_ci(ci)
        n_boot = check_n_boot(n_boot, ci=ci)
        seed = check_seed(seed)
        shapes = self.shapes
        sc = _as_scores(table, scores)
        ns_given = _check_fit_ns(self.ns) if self.ns is not None else None
        val = validate_score_table(table, scores=sc, split=self.split)
        check_reward_signal(val, split=self.split)
        ns = ns_given if ns_given is not None else default_ns(val, split=None)
        pool = resolve_pool(val, ns, self.pool)
        self.clipped_ns_, self.notes_ = ({}, []) if pool == "error" else pool_clipping(val, ns)
        for note in self.notes_:
            # default ns stop at the median pool, clipping the smaller pools by design
            if self.ns is not None or self.clipped_ns_:
                warnings.warn(note, UserWarning, stacklevel=2)
        # validated once above; its integer layout is built once here and shared by every
        # engine call of the curves and of each diagnosis
        st = ScoreTable(val, scores=sc, split=None, validate=False)
        self.score_table_ = st
        curves = bon_curves(st, ["random", "oracle", *sc], ns, split=None, ci=ci,
                            n_boot=n_boot, seed=0 if seed is None else seed, pool=pool)
        self.scores_, self.ns_, self.pool_, self.table_ = sc, ns, pool, val
        self.user_curves_: pd.DataFrame | None = None
        self.curves_ = curves
        self.ci_, self.n_boot_, self.seed_ = ci, n_boot, seed
        oracle = self._observed("oracle")
        mu = self._mu_value(float(self._observed("random")[0]))
        # the law is fitted and compared at the N actually used: a clipped N is the pool size
        self.calibrations_ = {s: calibrate(self.ns_effective, oracle, shape=s, mu=mu)
                              for s in shapes}
        self.calibration_ = self.calibrations_[shapes[0]]
        self.best_shape_ = max(self.calibrations_, key=lambda s: self.calibrations_[s].r2)
        kw: dict[str, Any] = {"collapse_threshold": self.collapse_threshold, "rho_u": self.rho_u,
                              "weights": self.weights, "split": None, "validate": False}
        if ci is not None and _accepts(diagnose, "ci"):
            kw.update(ci=ci, n_boot=n_boot, seed=seed)
        self.diagnostics_ = {s: diagnose(st, s, **kw) for s in sc}
        self.predictions_ = pd.concat(
            [pd.DataFrame({"selector": sel, "shape": shape, "n": ns,
                           "observed": self._observed(sel),
                           "predicted": self.predict(self.ns_effective, sel, shape)})
             for shape in shapes for sel in ["oracle", *sc]], ignore_index=True)
        return self

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        if not hasattr(self, "curves_"):
            raise AttributeError("this BestOfN is not fitted yet; call .fit(table) first.")

    @property
    def ns_effective(self) -> list[int]:
        """``ns_`` with every N above the largest candidate pool replaced by the pool size
        (Best-of-N then takes the whole pool): the N the curves were really measured at."""
        self._check_fitted()
        return [int(getattr(self, "clipped_ns_", {}).get(n, n)) for n in self.ns_]

    def _observed(self, selector: str) -> np.ndarray:
        c = self.curves_
        return c.loc[c["selector"] == selector, "utility"].to_numpy()

    def curve(self, selector: str) -> pd.DataFrame:
        """The observed curve of one selector (``"random"``, ``"oracle"`` or a score column)."""
        self._check_fitted()
        out = self.curves_[self.curves_["selector"] == selector]
        if out.empty:
            raise KeyError(f"no curve for {selector!r}; fitted selectors: random, oracle, "
                           f"{', '.join(self.scores_)}.")
        return out

    def calibration(self, shape: str | None = None) -> Calibration:
        """The oracle calibration for ``shape`` (default: the primary one); a shape that was
        not fitted is calibrated now, with the same mu rule, and kept."""
        self._check_fitted()
        shape = shape or self.shapes[0]
        if shape not in self.calibrations_:
            if shape not in SHAPES:
                raise ValueError(f"unknown curve shape {shape!r}; use one of {SHAPES}.")
            mu = self._mu_value(float(self._observed("random")[0]))
            self.calibrations_[shape] = calibrate(self.ns_effective, self._observed("oracle"),
                                                  shape=shape, mu=mu)
        return self.calibrations_[shape]

    def user_curves(self) -> pd.DataFrame:
        """Each user's exact curve of every fitted selector (``selector, user_id, n,
        utility``), computed on first use and kept (the bootstrap bands are drawn from it)."""
        self._check_fitted()
        if getattr(self, "user_curves_", None) is None:
            self.user_curves_ = bon_curves(self.table_, ["random", "oracle", *self.scores_],
                                           self.ns_, split=None, per_user=True, pool=self.pool_)
        return self.user_curves_

    def predict(self, ns: Sequence[float] | np.ndarray, score: str | None = None,
                shape: str | None = None) -> np.ndarray:
        """The law's utility at any ``ns`` (also past the pool size).

        ``score``: a score column (its four diagnostics in Prop. 4.4), ``"oracle"`` (the
        calibration) or ``"random"`` (flat at mu); default: the first score column. ``shape``:
        default the primary shape.
        """
        self._check_fitted()
        cal = self.calibration(shape)
        score = score or self.scores_[0]
        if score == "oracle":
            return cal.predict(ns)
        if score == "random":
            return np.full(np.atleast_1d(ns).shape, cal.mu, dtype=float)
        if score not in self.diagnostics_:
            raise KeyError(f"{score!r} was not fitted; fitted score columns: "
                           f"{', '.join(self.scores_)}.")
        return predict_bon_curve(ns, self.diagnostics_[score], cal, refined=self.refined)
