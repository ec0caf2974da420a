"""Assumption-check figures: sub-Gaussian rewards (Fig. A6) and linearity of E[r* | r_hat]
(Fig. A7). Each takes a score table or the result object of the check
(:class:`ttp_diag.analysis.SubGaussianCheck`, :class:`ttp_diag.analysis.LinearityCheck`), so a
computed check is drawn without recomputing it.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import assumptions
>>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
>>> len(assumptions.linearity_figure(t).axes)
3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ttp_diag.plots._common import color as _color
from ttp_diag.plots._common import new_axes
from ttp_diag.plots._common import panel_letter as _panel_letter
from ttp_diag.plots.style import COLORS, new_figure, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ttp_diag.analysis import LinearityCheck, SubGaussianCheck

__all__ = ["linearity_figure", "plot_linearity", "plot_sub_gaussian", "sub_gaussian_figure"]


@styled
def sub_gaussian_figure(table: pd.DataFrame | SubGaussianCheck, *, user: Any = None,
                        split: str | None = "val", center: str = "user",
                        reward_label: str = "True reward") -> Figure:
    """Sub-Gaussian check (Fig. A6).

    (a) empirical CDF of a user's rewards (default: the user with the median ``s / std``)
    with the Gaussian CDF ``N(mu, s)`` and the sub-Gaussian (Chernoff) envelope implied by the
    fitted parameter ``s``; (b) ``s`` against the plain std for every user (``s >= std``
    always; close to the diagonal means Gaussian-like tails).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ttp_diag.analysis import sub_gaussian_check

    chk = (sub_gaussian_check(table, split=split, center=center)
           if isinstance(table, pd.DataFrame) else table)
    fig, axes = new_figure(1, 2, figsize=(9.6, 3.8))
    plot_sub_gaussian(chk, axes[0, 0], kind="ecdf", user=user, reward_label=reward_label,
                      letter="(a) ")
    plot_sub_gaussian(chk, axes[0, 1], kind="ratio", user=user, letter="(b) ")
    return fig


@styled
def plot_sub_gaussian(check: SubGaussianCheck, ax: Axes | None = None, *,
                      kind: Literal["ecdf", "ratio"] = "ecdf", user: Any = None,
                      reward_label: str = "True reward", letter: str = "") -> Axes:
    """One panel of the sub-Gaussian check: ``"ecdf"``, a user's empirical CDF (default: the
    user with the median ``s / std``) with ``N(mu, s)`` and the Chernoff envelope; ``"ratio"``,
    ``s`` against the plain std for every user (``s >= std``; the diagonal is Gaussian)."""
    from ttp_diag.analysis import ecdf_envelope

    if kind not in ("ecdf", "ratio"):
        raise ValueError(f"kind must be 'ecdf' or 'ratio'; got {kind!r}.")
    ax = new_axes(ax, (4.8, 3.8))
    u = user if user is not None else check.representative_user()
    row = check.per_user.set_index("user_id").loc[u]
    if kind == "ecdf":
        env = ecdf_envelope(check.values[u], row["s"])
        # neutral colours: the reward-model colours are kept for reward models
        ax.fill_between(env["x"], env["envelope_low"], env["envelope_high"],
                        color="#999999", alpha=0.2,
                        label="sub-Gaussian envelope (Chernoff bound)")
        ax.plot(env["x"], env["gaussian_cdf"], color=COLORS["theory"], linewidth=1.8,
                label=f"Gaussian CDF N($\\mu$, s), s = {row['s']:.3g}")
        ax.step(env["x"], env["ecdf"], where="post", color="#222222", linewidth=1.8,
                label=f"empirical CDF (n = {int(row['n'])})")
        ax.set_xlabel(reward_label + (" minus query mean" if check.center == "query" else ""))
        ax.set_ylabel("Cumulative probability")
        ax.set_title(f"{letter}user {u}: KS distance {row['ks_gaussian']:.3f}")
        ax.legend(loc="lower right", fontsize=7)
        return ax
    pu = check.per_user.dropna(subset=["ratio"])
    ax.scatter(pu["std"], pu["s"], s=16, color="#444444", alpha=0.8,
               label=f"users (median s/std = {pu['ratio'].median():.2f})")
    lim = [0, max(pu["s"].max(), pu["std"].max()) * 1.05]
    ax.plot(lim, lim, color="#777777", linestyle="--", linewidth=1, label="s = std (Gaussian)")
    ax.scatter([row["std"]], [row["s"]], s=60, facecolor="none", edgecolor=COLORS["theory"],
               linewidth=1.5, label=f"user {u} (representative)")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("Std of user's rewards")
    ax.set_ylabel("Smallest sub-Gaussian parameter s")
    ax.set_title(f"{letter}sub-Gaussian parameter vs std, per user")
    ax.legend(loc="upper left", fontsize=7.5)
    return ax


@styled
def plot_linearity(check: LinearityCheck, ax: Axes | None = None, *, score: str | None = None,
                   letter: str = "") -> Axes:
    """Binned ``E[r* | r_hat]`` of one score column with ±1 s.e., its fitted line and the
    line of slope rho (scores and rewards z-scored within ``check.standardize``)."""
    ax = new_axes(ax, (3.9, 3.6))
    scs = list(check.summary["score"])
    s = score or scs[0]
    b = check.bins[check.bins.score == s]
    r = check.summary.set_index("score").loc[s]
    col = _color(s, scs)
    ax.errorbar(b["x_mean"], b["y_mean"], yerr=b["y_se"], fmt="o", color=col, markersize=4,
                capsize=2, label="binned mean ± s.e.")
    x = np.linspace(b["x_mean"].min(), b["x_mean"].max(), 50)
    ax.plot(x, r["intercept"] + r["slope"] * x, color=col, linewidth=1.5,
            label=f"fit: slope {r['slope']:.2f} (R² {r['linear_r2']:.2f})")
    ax.plot(x, r["rho"] * x, color="#444444", linestyle="--", linewidth=1.2,
            label=f"slope = $\\rho$ = {r['rho']:.2f}")
    std = getattr(check, "standardize", "user")
    ax.set_title(letter + rm_label(s))
    ax.set_xlabel(f"Predicted score (z within {std})")
    ax.set_ylabel(f"E[true reward | score] (z within {std})")
    ax.legend(loc="upper left", fontsize=7.5)
    return ax


@styled
def linearity_figure(table: pd.DataFrame | LinearityCheck,
                     scores: Sequence[str] | None = None, *, split: str | None = "val",
                     n_bins: int = 10, standardize: str = "user") -> Figure:
    """Linearity of ``E[r* | r_hat]`` (Fig. A7): binned means vs the line of slope rho, one
    panel per score column. Error bars are ±1 standard error of each bin mean."""
    from ttp_diag.analysis import linearity_check

    res = (linearity_check(table, scores, split=split, n_bins=n_bins, standardize=standardize)
           if isinstance(table, pd.DataFrame) else table)
    scs = list(res.summary["score"])
    fig, axes = new_figure(1, len(scs), figsize=(3.9 * len(scs), 3.6), sharey=True)
    for j, s in enumerate(scs):
        plot_linearity(res, axes[0, j], score=s, letter=_panel_letter(j))
    return fig
