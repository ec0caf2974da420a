"""Helpers shared by the figure families: colours, legends, axes, labels.

Nothing here imports the analysis layers; turning tables into fits is
:func:`ttp_diag.plots.figures.as_fits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ttp_diag.plots.style import colors_for, new_figure, rm_label, rm_linestyle, rm_marker

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ttp_diag.bestofn import BestOfN


N_LABEL = "N (candidates per query)"
REWARD_LABEL = "Reward of selected candidate"
THRESHOLD_COLOR = "#B2182B"  # the paper's red dotted threshold lines
RHO_U = r"$\rho_u$"
RHO_Q = r"$\rho_q$"
SHAPE_NAMES = {"sqrt_log": r"$\sqrt{\ln N}$", "gaussian": "E[max of N normals]",
               "kl": r"$\sqrt{2(\ln N - (N-1)/N)}$"}


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (5.2, 3.8)) -> Axes:
    """``ax``, or the single axes of a new constrained-layout figure."""
    if ax is not None:
        return ax
    _, axes = new_figure(1, 1, figsize=figsize)
    return axes[0, 0]


def title(task: str, what: str) -> str:
    return f"{task}: {what}" if task else what


def panel_letter(i: int) -> str:
    return f"({chr(ord('a') + i)}) "


def color(name: str, names: Sequence[str] = ()) -> str:
    """Colour of ``name`` in a figure that also shows ``names``.

    Known models have fixed colours; unknown score columns keep their stable hashed colour
    unless two of the figure's columns would share it (:func:`colors_for`), so every figure
    drawn for the same set of score columns uses the same colours.
    """
    return colors_for(list(dict.fromkeys([*names, name])))[name]


def dense(ns: Sequence[int]) -> np.ndarray:
    return np.linspace(min(ns), max(ns), 200)


def plot_observed(ax: Axes, fit: BestOfN, selector: str, *, label: str | None = None,
                  ci: bool = False) -> Any:
    """One selector's observed curve (with its bootstrap band when the fit has one)."""
    c = fit.curve(selector)
    col = color(selector, fit.scores_)
    (line,) = ax.plot(c["n"], c["utility"], color=col, linestyle=rm_linestyle(selector),
                      marker=rm_marker(selector), markersize=4, linewidth=1.8,
                      label=label if label is not None else rm_label(selector))
    if ci and "ci_low" in c:
        ax.fill_between(c["n"], c["ci_low"], c["ci_high"], color=col, alpha=0.18, linewidth=0)
    return line


def legend_top(ax: Axes, *, loc: str = "upper left", fontsize: float = 7.5, ncols: int = 1,
               **kw: Any) -> Any:
    """Legend in the top of the axes, with the y range stretched so it covers no data."""
    _, labels = ax.get_legend_handles_labels()
    n = len([lab for lab in labels if not lab.startswith("_")])
    if n == 0:
        return None
    # many entries (a zoo of reward models): more columns rather than a legend over the data
    row_h = 0.058 * fontsize / 7.5  # share of the axes one legend row needs
    wide = -(-n // max(int((0.5 - 0.04) / row_h), 1))
    spare = 1 if wide > ncols else 0  # several columns of long labels run a little taller
    ncols = max(ncols, wide)
    rows = -(-n // ncols)
    frac = 0.04 + (rows + spare) * row_h
    if spare:
        # short panels: measure the rows in inches (a row is about 1.55 font sizes high)
        h_in = ax.get_position().height * ax.figure.get_figheight()
        frac = max(frac, (0.12 + rows * 1.55 * fontsize / 72.0) / max(h_in, 1e-6))
    frac = min(0.6, frac)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, lo + (hi - lo) / (1.0 - frac))
    return ax.legend(loc=loc, fontsize=fontsize, ncols=ncols, **kw)


def legend_below(ax: Axes, *, fontsize: float = 7, ncols: int = 2,
                 offset: float = -0.17) -> Any:
    """Legend under the axes (below the x label), for panels whose data fill every corner."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, offset), fontsize=fontsize,
                     ncols=ncols, frameon=False)


def label_n_axes(ax: Axes, reward_label: str) -> None:
    """x: N with integer ticks; y: the reward's label."""
    ax.set_xlabel(N_LABEL)
    ax.set_ylabel(reward_label)
    integer_x(ax)


def integer_x(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def figure_of(ax: Axes) -> Figure:
    return ax.get_figure()
