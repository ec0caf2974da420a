"""Best-of-N across policy families (Fig. A1) and on top of a per-user LoRA policy (Fig. A2).

Inputs are score tables only (one per policy: the run folders' ``scores.parquet``); nothing
here generates or trains. Selector colours are those of every other figure
(:mod:`ttp_diag.plots.style`).

Examples
--------
>>> import ttp_diag as td
>>> t = td.simulate_score_table(n_users=6, n_queries=3, n_candidates=6, seed=0)
>>> fig = policy_families({"RAG": t, "Persona": t}, n_boot=20)
>>> len(fig.axes)
2
>>> len(lora_policy_curves(t, t, n_boot=20).axes)
1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ttp_diag.bestofn import BestOfN
from ttp_diag.exceptions import ConfigError
from ttp_diag.plots._common import (
    REWARD_LABEL,
    color,
    label_n_axes,
    legend_top,
    panel_letter,
    plot_observed,
)
from ttp_diag.plots.style import new_figure, rm_label, rm_marker, styled
from ttp_diag.table import score_columns

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["policy_families", "lora_policy_curves", "capture_at_max"]


def _fit(table: pd.DataFrame | BestOfN, scores, ns, split, ci, n_boot) -> BestOfN:
    if isinstance(table, BestOfN):
        return table
    cols = list(scores) if scores is not None else score_columns(table)
    cols = [c for c in cols if c in table.columns]
    return BestOfN(ns, split=split, ci=ci, n_boot=n_boot).fit(table, cols)


def capture_at_max(fit: BestOfN, score: str) -> float:
    """``(selector - random) / (oracle - random)`` at the largest N (NaN without a gap).

    Examples
    --------
    >>> import ttp_diag as td
    >>> t = td.simulate_score_table(n_users=4, n_queries=3, n_candidates=6, seed=0)
    >>> bool(0 < capture_at_max(td.BestOfN().fit(t), "score_prob") < 1)
    True
    """
    last = lambda s: float(fit.curve(s)["utility"].iloc[-1])  # noqa: E731
    gap = last("oracle") - last("random")
    return (last(score) - last("random")) / gap if gap > 0 else float("nan")


@styled
def policy_families(tables: Mapping[str, pd.DataFrame | BestOfN], *,
                    scores: Sequence[str] | None = None, ns: Sequence[int] | None = None,
                    split: str | None = "val", ci: float | None = 0.95, n_boot: int = 1000,
                    capture_of: str = "score_prob", reward_label: str = REWARD_LABEL,
                    title: str = "Best-of-N across policy families") -> Figure:
    """Fig. A1: one panel per policy family, a Best-of-N curve per selector.

    Parameters
    ----------
    tables : dict of str -> score table or fitted BestOfN
        Policy name (``"RAG"``, ``"Persona"``, ``"Persona+RAG"``, ``"Per-user LoRA"``) to its
        score table; panels in this order.
    scores, ns, split, ci, n_boot
        How tables are fitted (:class:`ttp_diag.BestOfN`); ``ci`` adds bootstrap bands over
        users to the oracle and the ``capture_of`` selector.
    capture_of : str
        The selector whose captured share of the oracle gap at the largest N is printed in
        each panel's title (the paper's "capture"), when the table has it.
    reward_label : str
        Y-axis label.
    """
    if not tables:
        raise ConfigError("policy_families needs at least one policy: {name: score table}")
    fits = {k: _fit(t, scores, ns, split, ci, n_boot) for k, t in tables.items()}
    k = len(fits)
    fig, axes = new_figure(1, k, figsize=(3.9 * k + 0.4, 3.7), sharey=True)
    for i, (name, fit) in enumerate(fits.items()):
        ax = axes[0, i]
        for sel in ["random", *fit.scores_, "oracle"]:
            # bands for the oracle and the highlighted selector only: overlapping bands of
            # every selector hide the curves
            plot_observed(ax, fit, sel, ci=ci is not None and sel in ("oracle", capture_of))
        sub = f"{panel_letter(i) if k > 1 else ''}{name}"
        if capture_of in fit.scores_:
            cap = capture_at_max(fit, capture_of)
            if np.isfinite(cap):
                n_eff = fit.ns_effective[-1]
                sub += f"\ncapture ({rm_label(capture_of, short=True)}, N={n_eff}) = {cap:.0%}"
        ax.set_title(sub)
        label_n_axes(ax, reward_label if i == 0 else "")
    legend_top(axes[0, 0], fontsize=7)
    fig.suptitle(title)
    return fig


@styled
def lora_policy_curves(base: pd.DataFrame | BestOfN, lora: pd.DataFrame | BestOfN, *,
                       selectors: Sequence[str] | None = None, ns: Sequence[int] | None = None,
                       bands: Sequence[str] = ("oracle", "score_prob"),
                       split: str | None = "val", ci: float | None = 0.95, n_boot: int = 1000,
                       base_name: str = "RAG policy", lora_name: str = "per-user LoRA policy",
                       reward_label: str = REWARD_LABEL,
                       title: str = "Best-of-N on top of a per-user LoRA policy") -> Figure:
    """Fig. A2: the same selectors on the base policy (dashed) and the LoRA policy (solid).

    Parameters
    ----------
    base, lora : score table or fitted BestOfN
        The base (RAG) policy's and the LoRA policy's score tables, scored by the same
        reward models.
    selectors : sequence of str, optional
        Default: random, every score column the two tables share, oracle.
    bands : sequence of str
        Selectors whose LoRA-policy curve gets its bootstrap band (``ci``).
    """
    if selectors is None:
        shared = [c for c in score_columns(base if isinstance(base, pd.DataFrame)
                                           else base.table_)
                  if c in (lora.columns if isinstance(lora, pd.DataFrame) else lora.scores_)]
        selectors = ["random", *shared, "oracle"]
    cols = [s for s in selectors if s not in ("random", "oracle")]
    fb = _fit(base, cols, ns, split, ci, n_boot)
    fl = _fit(lora, cols, ns, split, ci, n_boot)
    fig, axes = new_figure(1, 1, figsize=(5.6, 4.2))
    ax = axes[0, 0]
    for sel in selectors:
        col = color(sel, cols)
        for fit, style, width, who in ((fb, "--", 1.3, base_name), (fl, "-", 1.9, lora_name)):
            c = fit.curve(sel)
            ax.plot(c["n"], c["utility"], color=col, linestyle=style, linewidth=width,
                    marker=rm_marker(sel) or None, markersize=3.5,
                    markerfacecolor="white" if style == "--" else col,
                    label=f"{rm_label(sel)} ({who})")
            if ci is not None and "ci_low" in c and style == "-" and sel in bands:
                ax.fill_between(c["n"], c["ci_low"], c["ci_high"], color=col, alpha=0.13,
                                linewidth=0)
    ax.set_title(title)
    label_n_axes(ax, reward_label)
    legend_top(ax, fontsize=6.5, ncols=2)
    return fig
