"""One fitted Best-of-N analysis of a score table: curves, calibration, diagnostics, prediction.

:class:`BestOfN` is the one place where the package's recipe lives:

1. exact Best-of-N **curves** of Random, Oracle and every reward model
   (:func:`ttp_diag.bon_curves`);
2. **calibrate** the oracle law ``mu + c sigma g(N)``, with ``mu`` fixed at the exact
   random-selection utility by default (every shape has ``g(1) = 0``, so the law starts at
   Random for N = 1 and only ``c sigma`` is fitted, as in the paper's Appendix C.1);
3. **diagnose** every score column once (:func:`ttp_diag.diagnose`);
4. **predict** each model's curve from its diagnostics and the calibration (Prop. 4.4), or
   with the refined (concomitant) prediction where the pool is not i.i.d.
   (:mod:`ttp_diag.diagnostics.heterogeneity`); ``prediction=`` chooses, ``"auto"`` by the
   evidence of the table itself.

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
>>> list(bon.summary.columns[:5])
['selector', 'kind', 'rm', 'shape', 'alpha']
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

# The results side (summary frames, text, to_dict, plot) lives in _bestofn_summary.
from ._bestofn_summary import _BestOfNResults
from ._checks import check_ci, check_n_boot, check_names, check_ns, check_seed
from .bon import bon_curves
from .diagnostics import diagnose
from .diagnostics.heterogeneity import fit_concomitant, select_prediction
from .exceptions import ConfigError, NotFittedError, ScoreTableError
from .metrics import gain_error
from .table import ScoreTable, score_columns, validate_score_table
from .theory import DEFAULT_SHAPE, SHAPES, Calibration, calibrate, predict_bon_curve

__all__ = ["BestOfN", "check_reward_signal", "default_ns", "pool_clipping", "resolve_pool"]



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
    return _ns_for_pools(ScoreTable(table, scores=[], split=split).pool_sizes)


def _ns_for_pools(pool_sizes: np.ndarray) -> list[int]:
    m = max(int(np.median(pool_sizes)), 2)
    if m <= 32:
        return list(range(1, m + 1))
    grid = np.unique(np.round(np.geomspace(1, m, 24)).astype(int))
    return [int(n) for n in grid]


def resolve_pool(table: pd.DataFrame | ScoreTable, ns: Sequence[int],
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
    sizes = (table.pool_sizes if isinstance(table, ScoreTable)
             else table.groupby("query_id").size().to_numpy())
    smallest = int(sizes.min())
    return "clip" if max(ns) > smallest else "error"


def check_reward_signal(table: pd.DataFrame, *, split: str | None = None) -> None:
    """Raise a :class:`~ttp_diag.exceptions.ScoreTableError` (a ValueError) when no query of
    ``table`` has two different rewards.

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
    ttp_diag.exceptions.ScoreTableError: no reward signal: every reward is 0 (8 queries, ...
    """
    r = table["reward"].to_numpy(dtype=float)
    spread = table.assign(_r=r).groupby("query_id")["_r"].agg(np.ptp)
    if len(spread) and not (spread > 0).any():
        where = f" in split {split!r}" if split else ""
        what = (f"every reward{where} is 0" if not np.any(r) else
                f"every query{where} has one reward value for all its candidates")
        raise ScoreTableError(
            f"no reward signal: {what} ({len(spread)} queries, {len(r)} candidates), so "
            f"Best-of-N cannot beat random and relMAE/capture are undefined; check the reward "
            f"column (e.g. labels computed against an empty gold text) or analyse another "
            f"split.")


def _as_scores(table: pd.DataFrame, scores: str | Sequence[str] | None) -> list[str]:
    if scores is None:
        found = score_columns(table)
        if not found:
            raise ScoreTableError(
                "the table has no score_* column to analyse (columns: "
                f"{', '.join(map(str, table.columns))}); add one per reward model or pass "
                "scores=[...] (--scores on the command line).")
        return found
    # an empty list is legitimate: random and oracle only (e.g. the oracle calibration figure)
    return check_names(scores, "scores", what="score column", allow_empty=True)


def _check_fit_ns(ns: Sequence[int]) -> list[int]:
    """``ns`` as given, refused when empty, not whole numbers >= 1, repeated or unsorted (the
    last N names the summary's capture column, so its order matters)."""

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
    shape : str or sequence of str, default DEFAULT_SHAPE ("sqrt_log")
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
    prediction : {"auto", "law", "refined"}, default "auto"
        How each reward model's curve is predicted: ``"law"``, the paper's unified law
        (Prop. 4.4); ``"refined"``, the concomitant prediction
        (:func:`ttp_diag.fit_concomitant`: the reward expected at each score rank, piecewise
        linear with knots at the median and the top 16%, through the exact rank weights),
        which holds on heterogeneous pools (not the ``refined=`` flag above, which is Eq. 30 of
        the law); ``"auto"`` (default), per score column the refined
        prediction where its *held-out* error (coefficients fitted on the other users, 5
        folds) is below the law's in-sample gain error, else the law. The default follows the
        evidence in ``docs/public_data.md`` (issue 21): on i.i.d. simulations, the demo and two
        public human-evaluation sets the refined prediction was never worse. ``prediction_``
        and ``prediction_reason_`` (and the summary: ``prediction``, ``prediction_reason``,
        ``gain_error_law``, ``gain_error_refined_held_out``) say which was used and why.
    ci : float or None, default None
        Confidence level of the bootstrap over users (curves and diagnostics); None: no
        interval.
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
    score_table_ : ScoreTable
        The same rows validated and laid out once (:class:`ttp_diag.ScoreTable`); every curve
        and diagnosis of the fit reads it, and so can later calls (``td.bon_curve(fit.score_table_,
        ...)``) without validating again.
    ci_, n_boot_, seed_
        The bootstrap settings the fit used.
    curves_ : pandas.DataFrame
        ``selector, n, utility`` (+ ``ci_low, ci_high``) for random, oracle and every score.
    calibrations_ : dict of str -> Calibration
        One per shape; ``calibration_`` is the primary shape's.
    diagnostics_ : dict of str -> Diagnostics
    predictions_ : pandas.DataFrame
        ``selector, shape, n, observed, predicted`` for the oracle and every score.
    best_shape_ : str
        The shape whose oracle fit has the highest R².
    prediction_, prediction_reason_ : dict of str -> str
        Per score column: ``"law"`` or ``"refined"``, and why.
    concomitant_ : dict of str -> ConcomitantFit
        The refined prediction's fit per score column (empty with ``prediction="law"``).

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=20, n_queries=6, n_candidates=16, seed=0)
    >>> bon = td.BestOfN(ns=[1, 4, 16], shape=("sqrt_log", "gaussian")).fit(t, "score_prob")
    >>> bon.summary.query("selector == 'score_prob'")[["shape", "rel_mae"]].shape
    (2, 2)
    >>> bon.predict([64]).shape
    (1,)
    """

    def __init__(self, ns: Sequence[int] | None = None,
                 shape: str | Sequence[str] = DEFAULT_SHAPE,
                 mu: Literal["random", "fit"] | float = "random", *,
                 split: str | None = "val", pool: Literal["error", "clip"] | None = None,
                 refined: bool = False, collapse_threshold: float = 0.1,
                 rho_u: Literal["pooled", "mean_query"] = "mean_query",
                 weights: Literal["user", "query"] = "user",
                 prediction: Literal["auto", "law", "refined"] = "auto",
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
        self.prediction = prediction
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
            raise ConfigError(f"unknown curve shape(s) {bad or shapes!r}; use one or more of "
                             f"{SHAPES}.")
        return shapes

    def _mu_value(self, random_utility: float) -> float | None:
        if isinstance(self.mu, str):
            if self.mu == "random":
                return random_utility
            if self.mu == "fit":
                return None
            raise ConfigError(f"mu must be 'random', 'fit' or a number; got {self.mu!r}.")
        mu = float(self.mu)
        if not np.isfinite(mu):
            raise ConfigError(f"mu must be finite; got {self.mu!r}.")
        return mu

    def fit(self, table: pd.DataFrame, scores: str | Sequence[str] | None = None) -> BestOfN:
        """Compute curves, calibration, diagnostics and predictions of ``table``.

        Parameters
        ----------
        table : pandas.DataFrame
            A score table (validated here, once).
        scores : str or list of str, optional
            Score columns (default: every ``score_*`` column).

        Returns
        -------
        BestOfN
            ``self``, fitted.

        Notes
        -----
        The bootstrap settings (``ci``, ``n_boot``, ``seed``) are the constructor's.
        """
        ci = check_ci(self.ci)
        n_boot = check_n_boot(self.n_boot, ci=ci)
        seed = check_seed(self.seed)
        shapes = self.shapes
        sc = _as_scores(table, scores)
        ns_given = _check_fit_ns(self.ns) if self.ns is not None else None
        # The boundary: the table is validated and laid out once, here; everything after
        # (curves, every diagnosis, N and pool defaults) reads this ScoreTable.
        st = ScoreTable(table, scores=sc, split=self.split)
        val = validate_score_table(st, scores=sc, split=None)  # its rows, no second check
        check_reward_signal(val, split=self.split)
        ns = ns_given if ns_given is not None else _ns_for_pools(st.pool_sizes)
        pool = resolve_pool(st, ns, self.pool)
        self.clipped_ns_, self.notes_ = ({}, []) if pool == "error" else pool_clipping(val, ns)
        for note in self.notes_:
            # default ns stop at the median pool, clipping the smaller pools by design
            if self.ns is not None or self.clipped_ns_:
                warnings.warn(note, UserWarning, stacklevel=2)
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
        # the diagnoses use the fit's own N grid and pool rule, so "capture" is one number
        # everywhere (the share of the oracle's gain over random, gain-weighted over these ns,
        # population curves = mean over users of each user's mean over queries)
        kw: dict[str, Any] = {"collapse_threshold": self.collapse_threshold, "rho_u": self.rho_u,
                              "weights": self.weights, "split": None, "validate": False,
                              "ns": ns, "pool": pool}
        if ci is not None:
            kw.update(ci=ci, n_boot=n_boot, seed=seed)
        self.diagnostics_ = {s: diagnose(st, s, **kw) for s in sc}
        self._choose_predictions(val, sc, seed)
        self.predictions_ = pd.concat(
            [pd.DataFrame({"selector": sel, "shape": shape, "n": ns,
                           "observed": self._observed(sel),
                           "predicted": self.predict(self.ns_effective, sel, shape),
                           "prediction": self.prediction_.get(sel, "calibration")})
             for shape in shapes for sel in ["oracle", *sc]], ignore_index=True)
        return self

    def _choose_predictions(self, val: pd.DataFrame, scores: list[str], seed) -> None:
        """Fill ``concomitant_``, ``prediction_`` and ``prediction_reason_`` (see
        ``prediction`` in the class docstring)."""
        if self.prediction not in ("auto", "law", "refined"):
            raise ConfigError(f"prediction must be 'auto', 'law' or 'refined'; got "
                             f"{self.prediction!r}.")
        self.concomitant_: dict[str, Any] = {}
        self.prediction_: dict[str, str] = {}
        self.prediction_reason_: dict[str, str] = {}
        if self.prediction == "law":
            for s in scores:
                self.prediction_[s] = "law"
                self.prediction_reason_[s] = "prediction='law': the paper's law (Prop. 4.4)"
            return
        rnd = self._observed("random")
        for s in scores:
            fit = fit_concomitant(val, s, split=None, validate=False, seed=seed or 0)
            self.concomitant_[s] = fit
            test = select_prediction(fit)[1]
            if self.prediction == "refined":
                self.prediction_[s] = "refined"
                self.prediction_reason_[s] = f"prediction='refined'; {test}"
                continue
            obs = self._observed(s)
            try:
                law = gain_error(self.predict(self.ns_effective, s, prediction="law"), obs, rnd)
                held = gain_error(fit.predict(self.ns_effective, held_out=True), obs, rnd)
            except ValueError:  # no gain over random: nothing to choose on
                self.prediction_[s] = "law"
                self.prediction_reason_[s] = "auto: no gain over random to compare on; law"
                continue
            used = "refined" if held <= law else "law"
            self.prediction_[s] = used
            self.prediction_reason_[s] = (
                f"auto: held-out gain error of the refined prediction {held:.3f} "
                f"{'<=' if used == 'refined' else '>'} the law's {law:.3f} ({fit.folds}-fold "
                f"over {fit.n_users} users); {test}")

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        if "curves_" not in self.__dict__:
            raise NotFittedError("this BestOfN is not fitted yet; call .fit(table) first.")

    def __getattr__(self, name: str) -> Any:
        # Only reached for a missing attribute, or when a property raised AttributeError:
        # a learned attribute (``curves_``, ...) or a result property read before fit.
        if (not name.startswith("__") and "curves_" not in self.__dict__
                and (name.endswith("_") or hasattr(type(self), name))):
            raise NotFittedError(f"this BestOfN is not fitted yet, so it has no {name}; call "
                                 f".fit(table) first.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
        """The observed curve of one selector (``"random"``, ``"oracle"`` or a score column).

        ``n`` is the N each point was measured at (:attr:`ns_effective`: the pool size where
        a requested N exceeds it, ``pool="clip"``), ``n_requested`` the N asked for, so a
        plot draws a clipped point where it was measured, not at the N requested.
        """
        self._check_fitted()
        out = self.curves_[self.curves_["selector"] == selector]
        if out.empty:
            raise ConfigError(f"no curve for {selector!r}; fitted selectors: random, oracle, "
                              f"{', '.join(self.scores_)}.")
        eff = dict(zip(self.ns_, self.ns_effective, strict=True))
        return out.assign(n_requested=out["n"], n=out["n"].map(eff).astype(int))

    def calibration(self, shape: str | None = None) -> Calibration:
        """The oracle calibration for ``shape`` (default: the primary one); a shape that was
        not fitted is calibrated on the fly, with the same mu rule (reading never changes the
        fitted ``calibrations_``)."""
        self._check_fitted()
        shape = shape or self.shapes[0]
        if shape in self.calibrations_:
            return self.calibrations_[shape]
        if shape not in SHAPES:
            raise ConfigError(f"unknown curve shape {shape!r}; use one of {SHAPES}.")
        mu = self._mu_value(float(self._observed("random")[0]))
        return calibrate(self.ns_effective, self._observed("oracle"), shape=shape, mu=mu)

    def user_curves(self) -> pd.DataFrame:
        """Each user's exact curve of every fitted selector (``selector, user_id, n,
        utility``), computed on first use and kept (the bootstrap bands are drawn from it)."""
        self._check_fitted()
        if getattr(self, "user_curves_", None) is None:
            self.user_curves_ = bon_curves(self.table_, ["random", "oracle", *self.scores_],
                                           self.ns_, split=None, per_user=True, pool=self.pool_)
        return self.user_curves_

    def predict(self, ns: Sequence[float] | np.ndarray, score: str | None = None,
                shape: str | None = None, *, prediction: str | None = None) -> np.ndarray:
        """The predicted utility at any ``ns`` (also past the pool size).

        ``score``: a score column (its four diagnostics in Prop. 4.4), ``"oracle"`` (the
        calibration) or ``"random"`` (flat at mu); default: the first score column. ``shape``:
        default the primary shape (the law's; the refined prediction has no shape).
        ``prediction``: ``"law"`` or ``"refined"``; default the one chosen at fit
        (``prediction_``).
        """
        self._check_fitted()
        cal = self.calibration(shape)
        score = score or self.scores_[0]
        if score == "oracle":
            return cal.predict(ns)
        if score == "random":
            return np.full(np.atleast_1d(ns).shape, cal.mu, dtype=float)
        if score not in self.diagnostics_:
            raise ConfigError(f"{score!r} was not fitted; fitted score columns: "
                              f"{', '.join(self.scores_)}.")
        used = prediction or getattr(self, "prediction_", {}).get(score, "law")
        if used == "refined":
            if score not in getattr(self, "concomitant_", {}):
                self.concomitant_[score] = fit_concomitant(self.table_, score, split=None,
                                                           validate=False,
                                                           seed=self.seed_ or 0)
            return self._predict_refined(ns, score, cal)
        if used != "law":
            raise ConfigError(f"prediction must be 'law' or 'refined'; got {prediction!r}.")
        return predict_bon_curve(ns, self.diagnostics_[score], cal, refined=self.refined)

    def verdict(self, n: int | None = None, *, unit: str = "") -> Any:
        """The answer first: a few sentences per reward model, computed from the numbers.

        For each score column: its gain over random at ``n`` (default: the largest fitted N)
        with the interval of the paired difference over users and its share of the oracle's
        gain; whether the collapse and hacking rates exceed what their null models give;
        and how well the law predicts the curve (relMAE beside the error relative to the gain).
        Thresholds and wording: :mod:`ttp_diag.verdict`. Computed once per ``(n, unit)``.

        Parameters
        ----------
        n : int, optional
            Candidate count of the gain (default: the largest fitted N).
        unit : str, optional
            Name of the reward's unit in the sentences (e.g. ``"ROUGE"``).

        Returns
        -------
        ttp_diag.verdict.Verdict
            ``str(v)`` is the text, ``v.summary`` the tidy findings (``score, rm, aspect,
            finding, text``).

        Examples
        --------
        >>> import ttp_diag as td
        >>> t = td.simulate_score_table(n_users=12, n_queries=4, n_candidates=8, seed=0)
        >>> v = td.BestOfN(ns=[1, 8], n_boot=200).fit(t).verdict()
        >>> v.finding("score_prob", "gain")
        'gain'
        """
        from ._bestofn_summary import bestofn_verdict

        self._check_fitted()
        cache = self.__dict__.setdefault("_verdicts", {})
        key = (n, unit)
        if key not in cache:
            cache[key] = bestofn_verdict(self, n=n, unit=unit)
        return cache[key]

    def _repr_html_(self) -> str:
        """Jupyter display: the verdict, the key table and the gain curves with their bands."""
        if not hasattr(self, "curves_"):
            return f"<pre>{repr(self)}</pre>"
        import matplotlib.pyplot as plt

        from .report import figure_png_bytes
        from .verdict import result_html

        tab = self.summary
        cols = ["rm", "shape", "alpha", "beta", "rho_eff", "rel_mae", "gain_error",
                "mean_capture", "prediction"]
        tab = tab[(tab["shape"] == self.shapes[0]) & (tab["kind"] == "reward_model")][cols]
        ax = self.plot("gain")
        ax.figure.set_size_inches(5.2, 3.4)
        png = figure_png_bytes(ax.figure, dpi=90)
        plt.close(ax.figure)
        return result_html(self.verdict(), tab, png)

    def _predict_refined(self, ns, score: str, cal: Calibration) -> np.ndarray:
        """The refined prediction inside the pool; past the largest pool M it continues with
        the law's increments, ``U_refined(M) + law(N) - law(M)``: on held-out N of the public
        tables this extrapolated better than either curve alone (docs/public_data.md)."""
        conc = self.concomitant_[score]
        arr = np.atleast_1d(np.asarray(ns, dtype=float))
        largest = conc.pool_sizes[1]
        out = np.empty(arr.size)
        inside = arr <= largest
        if inside.any():
            out[inside] = conc.predict(arr[inside])
        if (~inside).any():
            law = predict_bon_curve(np.concatenate(([float(largest)], arr[~inside])),
                                    self.diagnostics_[score], cal, refined=self.refined)
            out[~inside] = conc.predict([largest])[0] + law[1:] - law[0]
        return out
