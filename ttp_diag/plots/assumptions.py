"""Assumption-check panels: sub-Gaussian rewards (Fig. A6) and linearity of E[r* | r_hat]
(Fig. A7). Each takes the result object of the check
(:class:`ttp_diag.analysis.SubGaussianCheck`, :class:`ttp_diag.analysis.LinearityCheck`), so a
computed check is drawn without recomputing it; the figures are
:func:`ttp_diag.plots.figures.sub_gaussian_figure` and
:func:`~ttp_diag.plots.figures.linearity_figure`.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.analysis import linearity_check
>>> from ttp_diag.plots import assumptions
>>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
>>> assumptions.plot_linearity(linearity_check(t), score="score_det").get_title()
'Deterministic User RM'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ttp_diag.exceptions import ConfigError
from ttp_diag.plots._common import color as _color
from ttp_diag.plots._common import new_axes
from ttp_diag.plots.style import COLORS, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ttp_diag.analysis import LinearityCheck, SubGaussianCheck

__all__ = ["plot_linearity", "plot_sub_gaussian"]


@styled
def plot_sub_gaussian(check: SubGaussianCheck, ax: Axes | None = None, *,
                      kind: Literal["ecdf", "ratio"] = "ecdf", user: Any = None,
                      reward_label: str = "True reward", letter: str = "") -> Axes:
    """One panel of the sub-Gaussian check: ``"ecdf"``, a user's empirical CDF (default: the
    user with the median ``s / std``) with ``N(mu, s)`` and the Chernoff envelope; ``"ratio"``,
    ``s`` against the plain std for every user (``s >= std``; the diagonal is Gaussian)."""
    if kind not in ("ecdf", "ratio"):
        raise ConfigError(f"kind must be 'ecdf' or 'ratio'; got {kind!r}.")
    ax = new_axes(ax, (4.8, 3.8))
    u = user if user is not None else check.representative_user()
    row = check.per_user.set_index("user_id").loc[u]
    if kind == "ecdf":
        env = check.envelope(u)
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
