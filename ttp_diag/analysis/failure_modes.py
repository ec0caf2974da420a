"""Failure-mode statistics behind the paper's Figure 6 and Figures A8/A9.

* :func:`label_std_by_collapse` -- is user-level collapse explained by a narrow label
  distribution? Per-user ground-truth reward std of collapsed users (rho_u < 0.1) against
  normal users (rho_u > 0.5), with a Mann-Whitney U test and Welch's t test.
* :func:`rescue_analysis` -- per-query correlations of two reward models side by side: the
  share of queries one model *rescues* (``base rho_q < 0 <= new rho_q``) and *harms*.
* :func:`variance_error_correlation` -- Spearman correlation between a probabilistic reward
  model's predicted variance and its absolute error (is the variance calibrated?).

Examples
--------
>>> from ttp_diag import simulate_score_table
>>> t = simulate_score_table(n_users=20, n_queries=6, n_candidates=12, seed=0)
>>> res = rescue_analysis(t, "score_det", "score_prob")
>>> 0.0 <= res.rescued_rate <= 1.0
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ttp_diag._summary import Result
from ttp_diag.diagnostics import Diagnostics, diagnose
from ttp_diag.exceptions import ConfigError
from ttp_diag.table import ScoreTableError, validate_score_table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "CollapseLabelStd",
    "RescueAnalysis",
    "VarianceErrorCorrelation",
    "label_std_by_collapse",
    "rescue_analysis",
    "variance_error_correlation",
]


def _two_group_tests(a: np.ndarray, b: np.ndarray) -> dict:
    """Mann-Whitney U (two-sided) and Welch's t test of ``a`` against ``b``; NaN when too small."""
    out = {"mannwhitney_u": np.nan, "mannwhitney_p": np.nan, "welch_t": np.nan, "welch_p": np.nan}
    if a.size >= 1 and b.size >= 1 and np.ptp(np.r_[a, b]) > 0:
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
        out["mannwhitney_u"], out["mannwhitney_p"] = float(res.statistic), float(res.pvalue)
    if a.size >= 2 and b.size >= 2 and (np.var(a) > 0 or np.var(b) > 0):
        res = stats.ttest_ind(a, b, equal_var=False)
        out["welch_t"], out["welch_p"] = float(res.statistic), float(res.pvalue)
    return out


@dataclass
class CollapseLabelStd(Result):
    """Label std of collapsed vs normal users (see :func:`label_std_by_collapse`).

    Attributes
    ----------
    per_user : pandas.DataFrame
        ``user_id, rho_u, label_std, group`` with group ``"collapsed"``, ``"normal"`` or
        ``"between"`` (neither: ``collapse_threshold <= rho_u <= normal_threshold``).
    score : str
    collapse_threshold, normal_threshold : float
    n_collapsed, n_normal : int
    median_collapsed, median_normal : float
        Median label std of each group (NaN for an empty group).
    mannwhitney_u, mannwhitney_p : float
        Two-sided Mann-Whitney U test (collapsed first); NaN when a group is empty.
    welch_t, welch_p : float
        Welch's unequal-variance t test; NaN when a group has fewer than 2 users.
    """

    per_user: pd.DataFrame
    score: str
    collapse_threshold: float
    normal_threshold: float
    n_collapsed: int
    n_normal: int
    median_collapsed: float
    median_normal: float
    mannwhitney_u: float
    mannwhitney_p: float
    welch_t: float
    welch_p: float

    def _summary_frame(self) -> pd.DataFrame:
        keys = ("score", "collapse_threshold", "normal_threshold", "n_collapsed", "n_normal",
                "median_collapsed", "median_normal", "mannwhitney_u", "mannwhitney_p",
                "welch_t", "welch_p")
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])

    def plot(self, ax: Axes | None = None) -> Axes:
        """Label std of collapsed vs normal users with the test p-values (Fig. 6a)."""
        from ttp_diag.plots.failure import plot_label_std

        return plot_label_std(self, ax)

    def _text(self) -> str:
        if self.n_collapsed == 0:
            return (f"label std by collapse ({self.score}): no collapsed user "
                    f"(rho_u < {self.collapse_threshold:g}); nothing to compare")
        if self.n_normal == 0:
            return (f"label std by collapse ({self.score}): no normal user "
                    f"(rho_u > {self.normal_threshold:g}); nothing to compare")
        return (
            f"label std by collapse ({self.score}): collapsed median {self.median_collapsed:.4f} "
            f"(n={self.n_collapsed}) vs normal {self.median_normal:.4f} (n={self.n_normal}); "
            f"Mann-Whitney p={self.mannwhitney_p:.3g}, Welch p={self.welch_p:.3g}"
        )


def label_std_by_collapse(
    table: pd.DataFrame | None = None,
    score: str | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    collapse_threshold: float = 0.1,
    normal_threshold: float | str = 0.5,
    split: str | None = "val",
) -> CollapseLabelStd:
    """Ground-truth label std of collapsed users against normal users (Fig. 6a, A8 top row).

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Score table; not needed when ``diagnostics`` is given.
    score : str, optional
        Score column whose collapse is examined (needed with ``table``; with
        ``diagnostics`` it is the diagnosed column).
    diagnostics : Diagnostics, optional
        Output of :func:`ttp_diag.diagnose` for ``score`` (saves recomputing it). Its
        ``per_user`` frame supplies ``rho_u`` and ``label_std`` (the std of the user's
        candidate rewards).
    collapse_threshold : float, default 0.1
        Collapsed: ``rho_u < collapse_threshold`` (the paper's 0.1).
    normal_threshold : float or "auto", default 0.5
        Normal: ``rho_u > normal_threshold`` (the paper's 0.5 in Fig. 6a). Pass
        ``normal_threshold=collapse_threshold`` to compare against every other user.
        ``"auto"``: 0.5 when at least two users exceed it, else ``collapse_threshold`` (weak
        reward models rarely reach 0.5, which would leave nothing to compare with).
    split : str or None, default "val"

    Returns
    -------
    CollapseLabelStd

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=30, n_queries=6, n_candidates=12, seed=0)
    >>> res = label_std_by_collapse(t, "score_det", normal_threshold=0.1)
    >>> res.n_collapsed + res.n_normal
    30
    """
    if diagnostics is None:
        if table is None or score is None:
            raise ConfigError("label_std_by_collapse needs a score table and score= (the score "
                             "column to examine, e.g. 'score_det'), or diagnostics=.")
        # Fig. 6a reproduces the paper: its pooled rho_u (Definition 4.1)
        diagnostics = diagnose(table, score, collapse_threshold=collapse_threshold, split=split,
                               rho_u="pooled", n_null=0)
    if normal_threshold == "auto":
        normal_threshold = (0.5 if int((diagnostics.per_user["rho_u"] > 0.5).sum()) >= 2
                            else collapse_threshold)
    if normal_threshold < collapse_threshold:
        raise ConfigError(
            f"normal_threshold ({normal_threshold}) must be >= collapse_threshold "
            f"({collapse_threshold}); normal users have the higher correlation"
        )
    pu = diagnostics.per_user[["user_id", "rho_u", "label_std"]].copy()
    group = np.where(pu["rho_u"] < collapse_threshold, "collapsed", "between")
    group = np.where(pu["rho_u"] > normal_threshold, "normal", group)
    pu["group"] = group
    a = pu.loc[pu.group == "collapsed", "label_std"].to_numpy(float)
    b = pu.loc[pu.group == "normal", "label_std"].to_numpy(float)
    tests = _two_group_tests(a, b)
    return CollapseLabelStd(
        per_user=pu,
        score=diagnostics.score,
        collapse_threshold=float(collapse_threshold),
        normal_threshold=float(normal_threshold),
        n_collapsed=int(a.size),
        n_normal=int(b.size),
        median_collapsed=float(np.median(a)) if a.size else float("nan"),
        median_normal=float(np.median(b)) if b.size else float("nan"),
        **tests,
    )


@dataclass
class RescueAnalysis(Result):
    """Per-query correlations of two reward models (see :func:`rescue_analysis`).

    Attributes
    ----------
    per_query : pandas.DataFrame
        ``user_id, query_id, rho_base, rho_new, category`` for queries where both
        correlations are defined; category is ``"rescued"`` (base < 0 <= new), ``"harmed"``
        (new < 0 <= base), ``"both_positive"`` (both >= 0) or ``"both_negative"``.
    base, new : str
    rescued_rate, harmed_rate, both_positive_rate, both_negative_rate : float
        Shares of ``per_query`` (they sum to 1).
    beta_base, beta_new : float
        Share of those queries with negative correlation under each model.
    n_queries, n_excluded : int
        Queries compared, and queries left out because a correlation was undefined.
    """

    per_query: pd.DataFrame
    base: str
    new: str
    rescued_rate: float
    harmed_rate: float
    both_positive_rate: float
    both_negative_rate: float
    beta_base: float
    beta_new: float
    n_queries: int
    n_excluded: int

    def _summary_frame(self) -> pd.DataFrame:
        keys = ("base", "new", "n_queries", "rescued_rate", "harmed_rate", "both_positive_rate",
                "both_negative_rate", "beta_base", "beta_new")
        return pd.DataFrame([{k: getattr(self, k) for k in keys if hasattr(self, k)}])

    def plot(self, ax: Axes | None = None) -> Axes:
        """rho_q under ``base`` vs ``new``, the rescue quadrant shaded (Fig. 6c)."""
        from ttp_diag.plots.failure import plot_rescue

        return plot_rescue(self, ax)

    def _text(self) -> str:
        return (
            f"{self.new} vs {self.base} over {self.n_queries} queries: rescued "
            f"{self.rescued_rate:.1%}, harmed {self.harmed_rate:.1%}; negative rho_q "
            f"{self.beta_base:.1%} -> {self.beta_new:.1%}"
        )


CATEGORIES = ("rescued", "harmed", "both_positive", "both_negative")


def rescue_analysis(
    table: pd.DataFrame | None = None,
    base: str | None = None,
    new: str | None = None,
    *,
    diagnostics: tuple[Diagnostics, Diagnostics] | None = None,
    split: str | None = "val",
) -> RescueAnalysis:
    """Queries rescued and harmed when ``new`` replaces ``base`` (Fig. 6c, A9 top row).

    Rates are over every query whose correlation is defined under both models (a query with
    constant rewards or constant scores has none), across all users, as in the paper's
    "28% of all LaMP-4 queries".

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Score table; not needed when ``diagnostics`` is given.
    base, new : str, optional
        The score column replaced and the one replacing it (e.g. a deterministic and a
        probabilistic user RM); needed with ``table``.
    diagnostics : (Diagnostics, Diagnostics), optional
        Precomputed :func:`ttp_diag.diagnose` results for ``base`` and ``new``.
    split : str or None, default "val"

    Returns
    -------
    RescueAnalysis

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=10, n_queries=5, n_candidates=10, seed=2)
    >>> r = rescue_analysis(t, "score_det", "score_prob")
    >>> round(r.rescued_rate + r.harmed_rate + r.both_positive_rate + r.both_negative_rate, 9)
    1.0
    """
    if diagnostics is None:
        if table is None or base is None or new is None:
            raise ConfigError("rescue_analysis needs a score table with base= and new= (two "
                             "score columns, e.g. 'score_det' and 'score_prob'), or "
                             "diagnostics=(d_base, d_new).")
        checked = validate_score_table(table, scores=[base, new], split=split)
        diagnostics = (diagnose(checked, base, split=None, validate=False),
                       diagnose(checked, new, split=None, validate=False))
    d_base, d_new = diagnostics
    a = d_base.per_query[["user_id", "query_id", "rho_q", "undefined"]]
    b = d_new.per_query[["query_id", "rho_q", "undefined"]]
    m = a.merge(b, on="query_id", suffixes=("_base", "_new"), validate="one_to_one")
    ok = ~(m["undefined_base"] | m["undefined_new"])
    n_excluded = int((~ok).sum())
    m = m.loc[ok, ["user_id", "query_id", "rho_q_base", "rho_q_new"]].rename(
        columns={"rho_q_base": "rho_base", "rho_q_new": "rho_new"}
    ).reset_index(drop=True)
    if m.empty:
        raise ScoreTableError(
            f"rescue_analysis: no query has a defined correlation under both {d_base.score!r} "
            f"and {d_new.score!r} (all have constant scores or rewards)"
        )
    neg_b, neg_n = m["rho_base"] < 0, m["rho_new"] < 0
    m["category"] = np.select(
        [neg_b & ~neg_n, ~neg_b & neg_n, ~neg_b & ~neg_n], list(CATEGORIES[:3]), CATEGORIES[3]
    )
    rate = m["category"].value_counts(normalize=True)
    return RescueAnalysis(
        per_query=m,
        base=d_base.score,
        new=d_new.score,
        rescued_rate=float(rate.get("rescued", 0.0)),
        harmed_rate=float(rate.get("harmed", 0.0)),
        both_positive_rate=float(rate.get("both_positive", 0.0)),
        both_negative_rate=float(rate.get("both_negative", 0.0)),
        beta_base=float(neg_b.mean()),
        beta_new=float(neg_n.mean()),
        n_queries=int(len(m)),
        n_excluded=n_excluded,
    )


@dataclass
class VarianceErrorCorrelation(Result):
    """Predicted variance against absolute error (see :func:`variance_error_correlation`).

    Attributes
    ----------
    data : pandas.DataFrame
        ``user_id, query_id, variance, abs_error`` (one row per candidate, or per query with
        ``unit="query"``: the query means).
    spearman_r, p_value : float
        Spearman rank correlation and its two-sided p-value.
    n : int
    score, var, unit : str
    """

    data: pd.DataFrame
    spearman_r: float
    p_value: float
    n: int
    score: str
    var: str
    unit: str
    notes: list = field(default_factory=list)

    def _summary_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"score": self.score, "var": self.var, "unit": self.unit,
                              "spearman_r": self.spearman_r, "p_value": self.p_value,
                              "n": self.n}])

    def plot(self, ax: Axes | None = None) -> Axes:
        """Predicted variance against absolute error with Spearman r (Fig. 6d)."""
        from ttp_diag.plots.failure import plot_variance_error

        return plot_variance_error(self, ax)

    def _text(self) -> str:
        return (f"Spearman({self.var}, |{self.score} - reward|) = {self.spearman_r:.3f} "
                f"(p={self.p_value:.3g}, n={self.n} {self.unit}s)")


def _check_variance(table: pd.DataFrame, var: str) -> np.ndarray:
    if var not in table.columns:
        have = [c for c in table.columns if str(c).startswith("var_")]
        raise ScoreTableError(f"variance column {var!r} not found; variance columns: {have}. "
                              f"Pass var=<one of those> or score the table with a probabilistic "
                              f"RM.")
    v = pd.to_numeric(table[var], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        raise ScoreTableError(
            f"variance column {var!r} has {int(bad.sum())} NaN/inf/negative value(s), e.g. in "
            f"query_id {table['query_id'].to_numpy()[bad][:3].tolist()}; a variance must be a "
            f"finite number >= 0. Re-score or drop those rows."
        )
    return v


def variance_error_correlation(
    table: pd.DataFrame,
    score: str,
    var: str,
    *,
    unit: Literal["candidate", "query"] = "candidate",
    split: str | None = "val",
) -> VarianceErrorCorrelation:
    """Spearman correlation between predicted variance and absolute error (Fig. 6d, A9 row 2).

    The error of a candidate is ``|score - reward|``, so the score must be on the reward's
    scale (true of a probabilistic RM's predicted mean, trained by NLL on the labels).

    Parameters
    ----------
    table : pandas.DataFrame
        Score table with the score and variance columns.
    score, var : str
        Predicted mean and predicted variance columns.
    unit : {"candidate", "query"}, default "candidate"
        Correlate per candidate, or the per-query means of variance and error.
    split : str or None, default "val"

    Returns
    -------
    VarianceErrorCorrelation

    Examples
    --------
    >>> from ttp_diag import simulate_score_table
    >>> t = simulate_score_table(n_users=10, n_queries=5, n_candidates=10, seed=0)
    >>> -1.0 <= variance_error_correlation(t, "score_prob", "var_prob").spearman_r <= 1.0
    True
    """
    if unit not in ("candidate", "query"):
        raise ConfigError(f"unit must be 'candidate' or 'query', got {unit!r}")
    t = validate_score_table(table, scores=[score], split=split)
    v = _check_variance(t, var)
    d = pd.DataFrame({
        "user_id": t["user_id"].to_numpy(),
        "query_id": t["query_id"].to_numpy(),
        "variance": v,
        "abs_error": np.abs(t[score].to_numpy(float) - t["reward"].to_numpy(float)),
    })
    if unit == "query":
        d = d.groupby(["user_id", "query_id"], as_index=False, sort=True)[
            ["variance", "abs_error"]].mean()
    notes = []
    if np.ptp(d["variance"]) == 0 or np.ptp(d["abs_error"]) == 0:
        r, p = float("nan"), float("nan")
        notes.append("variance or absolute error is constant: Spearman correlation undefined")
    else:
        res = stats.spearmanr(d["variance"], d["abs_error"])
        r, p = float(res.statistic), float(res.pvalue)
    return VarianceErrorCorrelation(data=d, spearman_r=r, p_value=p, n=int(len(d)), score=score,
                                    var=var, unit=unit, notes=notes)
