"""The results of a fitted :class:`~ttp_diag.BestOfN`: summary tables, text, JSON and plots.

:class:`_BestOfNResults` is a mixin of :class:`ttp_diag.bestofn.BestOfN`; it turns the fitted
attributes (``curves_``, ``calibrations_``, ``diagnostics_``, ...) into the tidy ``summary``
and ``calibration_summary`` frames, the text forms (``str``, ``summary_text``,
``print_summary``), ``to_dict`` and ``plot``. It relies on the fitted object's
``_check_fitted``, ``_observed`` and ``predict``. The helpers below compute one summary row's
errors and capture shares.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError

from .diagnostics import Diagnostics
from .metrics import (
    capture_error,
    capture_rate,
    gain_error,
    mean_capture_rate,
    r_squared,
    rel_mae,
)
from .names import selector_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__: list[str] = []

PlotKind = Literal["curves", "theory", "oracle", "predicted", "correlations", "bands", "gain"]
PLOT_KINDS: tuple[str, ...] = ("curves", "theory", "oracle", "predicted", "correlations",
                               "bands", "gain")

# Diagnostics fields shown first in the summary, in this order (others follow as they come).
_DIAG_FIRST = ("alpha", "beta", "rho_plus", "rho_minus", "rho_collapsed", "rho_eff", "rho_total")
# What the oracle's row means for them: a perfect reward model.
_ORACLE_DIAG = {"alpha": 0.0, "beta": 0.0, "rho_plus": 1.0, "rho_minus": 0.0,
                "rho_collapsed": float("nan"), "rho_eff": 1.0, "rho_total": 1.0}


def _diag_fields(d: Diagnostics) -> dict[str, Any]:
    """The scalar quantities of a diagnostics result as flat columns.

    Passes through whatever the diagnostics report: a tidy ``summary`` DataFrame (one row per
    quantity with ``estimate`` and optional ``ci_low``/``ci_high``/null columns) becomes
    ``<quantity>``, ``<quantity>_ci_low``, ...; otherwise the numeric fields of ``to_dict()``.
    """
    summ = getattr(d, "summary", None)
    if isinstance(summ, pd.DataFrame) and "estimate" in summ.columns:
        key = "quantity" if "quantity" in summ.columns else summ.columns[0]
        out: dict[str, Any] = {}
        for row in summ.to_dict("records"):
            q = str(row[key])
            out[q] = row["estimate"]
            for col, v in row.items():
                # the score and the prose columns are the same for every row of one model
                if col not in (key, "estimate", "score", "definition", "meaning"):
                    out[f"{q}_{col}"] = v
        return out
    return {k: v for k, v in d.to_dict().items()
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}


def _mean_capture(o: np.ndarray, orc: np.ndarray, rnd: np.ndarray, gap: list[int]) -> float:
    """Gain-weighted captured share of the oracle gap over N > 1; NaN where the oracle never
    beats random (no gap to capture)."""
    if not gap:
        return float("nan")
    try:
        return float(mean_capture_rate(o[gap], orc[gap], rnd[gap]))
    except ValueError:
        return float("nan")


def _ns_text(ns) -> str:
    """``1..16`` for a full range, else the list."""
    ns = [int(n) for n in ns]
    if len(ns) > 2 and ns == list(range(ns[0], ns[-1] + 1)):
        return f"{ns[0]}..{ns[-1]}"
    return "{" + ", ".join(map(str, ns)) + "}"


def _none_if_nan(v: float) -> float | None:
    return None if not np.isfinite(v) else v


def _gain_errors(pred: np.ndarray, obs: np.ndarray, orc: np.ndarray,
                 rnd: np.ndarray) -> dict[str, float]:
    """Gain error and capture error of a prediction beside the flat "no gain" baseline.

    relMAE divides by the whole utility, mostly the random baseline, so a flat prediction can
    beat the law on it; the gain error (flat = 1) and the capture error (flat = minus the
    observed capture) say how much of the *gain* is predicted. NaN where undefined (no gain
    over random, e.g. all rewards 0).
    """
    out: dict[str, float] = {}
    for name, fn, args in (("gain_error", gain_error, (pred, obs, rnd)),
                           ("capture_error", capture_error, (pred, obs, orc, rnd))):
        try:
            out[name] = fn(*args)
        except ValueError:
            out[name] = float("nan")
    try:
        flat = rel_mae(rnd, obs)
    except ValueError:
        flat = float("nan")
    out["rel_mae_flat"] = flat
    out["gain_error_flat"] = 1.0 if np.any(obs != rnd) else float("nan")
    try:
        out["capture_error_flat"] = capture_error(rnd, obs, orc, rnd)
    except ValueError:
        out["capture_error_flat"] = float("nan")
    return out


class _BestOfNResults:
    """Summaries, text, ``to_dict`` and ``plot`` of a fitted BestOfN (see the module)."""

    @property
    def capture_column(self) -> str:
        """Name of the summary's captured-share column: ``capture_N<last N>``, with the
        effective N when the last N exceeds every candidate pool (it is clipped to the pool)."""
        self._check_fitted()
        last = self.ns_[-1]
        return f"capture_N{getattr(self, 'clipped_ns_', {}).get(last, last)}"

    @property
    def notes(self) -> list[str]:
        """What the reader of any summary must know (N clipped to the pools, ...)."""
        self._check_fitted()
        return list(getattr(self, "notes_", []))

    def _row(self, sel: str, shape: str) -> dict[str, Any]:
        ns = self.ns_
        o = self._observed(sel)
        rnd, orc = self._observed("random"), self._observed("oracle")
        p = self.predict(self.ns_effective, sel, shape)
        gap = [i for i, n in enumerate(ns) if n > 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r2 = r_squared(p, o)
        diag = dict(_ORACLE_DIAG) if sel == "oracle" else _diag_fields(self.diagnostics_[sel])
        head = {k: diag.pop(k) for k in _DIAG_FIRST if k in diag}
        try:
            err = rel_mae(p, o)
        except ValueError:  # an observed utility of 0: relMAE is undefined, say so with NaN
            err = float("nan")
        last = ns[-1]
        return {
            "selector": sel, "kind": "oracle" if sel == "oracle" else "reward_model",
            "rm": selector_label(sel), "shape": shape, **head,
            "rel_mae": err, "r2": r2,
            self.capture_column: (float(capture_rate(o[-1:], orc[-1:], rnd[-1:])[0])
                                 if last > 1 else float("nan")),
            "mean_capture": _mean_capture(o, orc, rnd, gap),
            **_gain_errors(p, o, orc, rnd),
            **diag,
            **self._prediction_fields(sel, shape, o, rnd),
        }

    def _prediction_fields(self, sel: str, shape: str, o: np.ndarray,
                           rnd: np.ndarray) -> dict[str, Any]:
        """Which prediction a row used, why, and the paper's law's gain error beside it."""
        nan = float("nan")
        if sel == "oracle":
            return {"prediction": "calibration", "prediction_reason": "the oracle law's fit",
                    "gain_error_law": nan, "gain_error_refined_held_out": nan}
        used = getattr(self, "prediction_", {}).get(sel, "law")
        conc = getattr(self, "concomitant_", {}).get(sel)
        try:
            law = gain_error(self.predict(self.ns_, sel, shape, prediction="law"), o, rnd)
        except ValueError:
            law = nan
        try:  # the refined prediction from coefficients that never saw the user (cross-fitted)
            held = (gain_error(conc.predict(self.ns_, held_out=True), o, rnd)
                    if conc is not None and conc.folds else nan)
        except ValueError:
            held = nan
        return {"prediction": used,
                "prediction_reason": getattr(self, "prediction_reason_", {}).get(sel, ""),
                "gain_error_law": law, "gain_error_refined_held_out": held}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per (selector, shape): diagnostics, relMAE, R² and captured oracle gap.

        Columns: ``selector`` (``"oracle"`` or a score column), ``kind`` (``"oracle"``: the
        calibrated law against the oracle curve, a perfect reward model's diagnostics;
        ``"reward_model"``: a score column), ``rm`` (its legend label), ``shape``, the
        diagnostics (``alpha,
        beta, rho_plus, rho_minus, rho_collapsed, rho_eff, rho_total`` first, then whatever else
        :func:`ttp_diag.diagnose` reports, intervals included), ``rel_mae``, ``r2`` of the
        prediction, ``capture_N<last N>`` (:attr:`capture_column`: the effective N when the
        last N exceeds every pool) and ``mean_capture`` (gain-weighted over N > 1).
        ``summary.attrs["notes"]`` holds :attr:`notes`.
        """
        self._check_fitted()
        rows = [self._row(sel, shape) for shape in self.shapes
                for sel in ["oracle", *self.scores_]]
        out = pd.DataFrame(rows)
        out.attrs["notes"] = self.notes
        return out

    @property
    def calibration_summary(self) -> pd.DataFrame:
        """One row per shape: ``mu`` (and where it comes from), ``c_sigma`` with its interval,
        R² of the oracle fit."""
        self._check_fitted()
        src = {"random": "random (exact)", "fit": "fitted"}.get(str(self.mu), "given")
        return pd.DataFrame([{
            "shape": shape, "mu": c.mu, "mu_source": src, "c_sigma": c.c_sigma, "r2": c.r2,
            "c_sigma_ci_low": c.c_sigma_ci[0], "c_sigma_ci_high": c.c_sigma_ci[1]}
            for shape, c in self.calibrations_.items()])

    def summary_text(self, shape: str | None = None) -> str:
        """One line per reward model: alpha, beta, rho_eff, relMAE, the gain error (error
        relative to the gain over random) and capture.

        ``capture`` is the package's one definition (``mean_capture`` of :attr:`summary`, the
        ``capture`` of each diagnosis and of ``ttp-diag analyze --json``): the share of the
        oracle's gain over random captured, gain-weighted over the fit's N grid, on population
        curves (mean over users of each user's mean over queries); the line names the grid.
        """
        self._check_fitted()
        shape = shape or self.shapes[0]
        tab = self.summary
        lines = []
        for r in tab[(tab["shape"] == shape) & (tab["kind"] == "reward_model")].to_dict("records"):
            lines.append(
                f"{r['rm']:<24} alpha={r['alpha']:.3f} beta={r['beta']:.3f} "
                f"rho_eff={r['rho_eff']:+.3f} relMAE={r['rel_mae']:.1%} "
                f"gain_err={r['gain_error']:.0%} capture={r['mean_capture']:.3f} "
                f"prediction={r['prediction']}")
        lines.append(f"(capture: share of the oracle's gain over random, gain-weighted over "
                     f"N in {_ns_text(self.ns_)}, mean over users)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        if not hasattr(self, "curves_"):
            return repr(self)
        shape = self.shapes[0]
        cal = self.calibrations_[shape]
        best = (f"; best oracle fit: {self.best_shape_} (R^2 "
                f"{self.calibrations_[self.best_shape_].r2:.3f})"
                if self.best_shape_ != shape else "")
        head = (f"BestOfN: {len(self.scores_)} score column(s), "
                f"{self.table_['user_id'].nunique()} users, {self.table_['query_id'].nunique()} "
                f"queries, N = {self.ns_[0]}..{self.ns_[-1]} (pool={self.pool_})\n"
                f"shape {shape}: mu = {cal.mu:.4f}, c*sigma = {cal.c_sigma:.4f}, "
                f"R^2 = {cal.r2:.3f}{best}")
        return head + "\n" + str(self.verdict()) + "\n" + self.summary_text()

    def __repr__(self) -> str:
        return (f"BestOfN(ns={self.ns!r}, shape={self.shape!r}, mu={self.mu!r}, "
                f"split={self.split!r}, ci={self.ci!r})")

    def print_summary(self, decimals: int = 3) -> None:
        """Print the verdict, the calibration and the summary table."""
        self._check_fitted()
        fmt = f"{{:.{decimals}f}}".format
        print(str(self).split("\n")[0])
        print(self.verdict())
        print()
        print(self.calibration_summary.to_string(index=False, float_format=fmt))
        print()
        cols = ["selector", "shape", *_DIAG_FIRST, "rel_mae", "gain_error", "r2",
                self.capture_column,
                "mean_capture"]
        print(self.summary[cols].to_string(index=False, float_format=fmt))
        for note in self.notes:
            print(f"note: {note}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable numbers of the primary shape (what ``ttp-diag analyze --json``
        prints)."""
        self._check_fitted()
        rnd, orc = self._observed("random"), self._observed("oracle")
        gap = [i for i, n in enumerate(self.ns_) if n > 1]
        out: dict[str, Any] = {
            "ns": list(self.ns_), "shape": self.shapes[0], "n_rows": int(len(self.table_)),
            "pool": self.pool_, "random": rnd.tolist(), "oracle": orc.tolist(),
            "calibration": self.calibration_.to_dict(), "models": {},
            "n_effective": self.ns_effective,
            "notes": self.notes}
        for s in self.scores_:
            obs = self._observed(s)
            pred = self.predict(self.ns_effective, s)
            try:
                err: float | None = rel_mae(pred, obs)
            except ValueError:
                err = None
            out["models"][s] = {
                **self.diagnostics_[s].to_dict(), "observed": obs.tolist(),
                "predicted": pred.tolist(), "rel_mae": err,
                **{k: _none_if_nan(v) for k, v in _gain_errors(pred, obs, orc, rnd).items()},
                "capture_rate": _none_if_nan(_mean_capture(obs, orc, rnd, gap)),
                "prediction": getattr(self, "prediction_", {}).get(s, "law"),
                "prediction_reason": getattr(self, "prediction_reason_", {}).get(s, "")}
        return out

    # ------------------------------------------------------------------ plotting
    def plot(self, kind: PlotKind = "theory", ax: Axes | None = None, **kwargs: Any) -> Axes:
        """Draw one panel of the fitted analysis on ``ax`` (a new figure when None).

        Parameters
        ----------
        kind : str, default "theory"
            ``"curves"``: observed curves vs Random/Oracle; ``"theory"``: observed curves with
            each model's prediction; ``"oracle"``: the oracle with the calibrated law of every
            shape; ``"predicted"``: predicted vs observed of one ``score=`` column;
            ``"correlations"``: rho_u distributions (``unit="query"`` for rho_q);
            ``"bands"`` / ``"gain"``: curves / gains over random with bootstrap bands.
        ax : matplotlib.axes.Axes, optional
        **kwargs
            Passed to the panel function of :mod:`ttp_diag.plots.curves` or
            :mod:`ttp_diag.plots.correlations`.

        Returns
        -------
        matplotlib.axes.Axes
        """
        self._check_fitted()
        from .plots import correlations, curves

        panels = {"curves": curves.plot_curves, "theory": curves.plot_theory,
                  "oracle": curves.plot_oracle, "predicted": curves.plot_predicted,
                  "correlations": correlations.plot_correlations,
                  "bands": curves.plot_bands,
                  "gain": lambda b, ax=None, **kw: curves.plot_bands(b, ax=ax, gain=True, **kw)}
        if kind not in panels:
            raise ConfigError(f"kind must be one of {PLOT_KINDS}; got {kind!r}.")
        return panels[kind](self, ax=ax, **kwargs)


def bestofn_verdict(fit: Any, *, n: int | None = None, unit: str = "",
                    ci: float | None = None, n_boot: int | None = None,
                    seed: int | None = None) -> Any:
    """The :class:`ttp_diag.verdict.Verdict` of a fitted :class:`ttp_diag.BestOfN` (see its
    ``verdict``)."""
    from .diagnostics import compare_selectors
    from .metrics import gain_error, rel_mae
    from .verdict import LEVEL, Verdict, _rows, diagnostics_numbers, model_findings

    fit._check_fitted()
    n = int(n if n is not None else fit.ns_[-1])
    level = ci or fit.ci_ or 0.95
    n_boot = n_boot or fit.n_boot_ or 1000
    seed = fit.seed_ if seed is None else seed
    shape = fit.shapes[0]  # the one default shape (td.DEFAULT_SHAPE unless given)
    rnd, orc = fit._observed("random"), fit._observed("oracle")
    j = fit.ns_.index(n) if n in fit.ns_ else None
    oracle_gain = (float(orc[j] - rnd[j]) if j is not None else None)
    rows = []
    n_users = int(fit.table_["user_id"].nunique())
    for s in fit.scores_:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # < MIN_USERS: said in the text
            cmp = compare_selectors(fit.table_, s, "random", [n], ci=level, n_boot=n_boot,
                                    seed=seed, split=None, pool=fit.pool_,
                                    validate=False).iloc[0]
        if oracle_gain is None:
            oc = compare_selectors(fit.table_, "oracle", "random", [n], ci=None, split=None,
                                   pool=fit.pool_, validate=False).iloc[0]
            oracle_gain = float(oc["diff"])
        d = fit.diagnostics_[s]
        nums = diagnostics_numbers(d)
        obs, pred = fit._observed(s), fit.predict(fit.ns_effective, s, shape)
        nums.update(n=n, gain=float(cmp["diff"]), gain_ci=(cmp["ci_low"], cmp["ci_high"]),
                    gain_p=float(cmp["p_value"]), oracle_gain=oracle_gain, level=level,
                    n_users=n_users)
        for key, fn, args in (("rel_mae", rel_mae, (pred, obs)),
                              ("gain_error", gain_error, (pred, obs, rnd))):
            try:
                nums[key] = fn(*args)
            except ValueError:
                nums.pop(key, None)
        label = selector_label(s)
        rows += _rows(s, label, model_findings(label, unit=unit, **nums))
    n_q = int(fit.table_["query_id"].nunique())
    gains = [s for s in fit.scores_
             if any(r["score"] == s and r["aspect"] == "gain" and r["finding"] == "gain"
                    for r in rows)]
    clip = " (whole pool where smaller)" if fit.pool_ == "clip" else ""
    head = (f"Best-of-{n}{clip} on {n_users} users and {n_q} queries ({level:.0%} intervals over "
            f"users, tests at level {LEVEL:g}; law shape {shape}): {len(gains)} of "
            f"{len(fit.scores_)} reward model(s) gain over random beyond noise"
            + (f" ({', '.join(selector_label(s) for s in gains)})." if gains else "."))
    return Verdict(pd.DataFrame(rows), head)
