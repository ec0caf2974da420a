"""Reward-model ablations (Fig. A3): utility against N, one line per sweep point.

Input: the tidy sweep results of :func:`ttp_diag.analysis.sweeps.sweep_table` (the
``sweep_results.csv`` that ``ttp-diag sweep`` writes), one panel per swept parameter. The
parent run's own setting (the *full model*) is drawn thick in its reward model's colour;
the other points get the package's extra palette, drawn on top (a point that coincides with the
full model stays visible); Random is the grey dashed baseline.

Examples
--------
>>> import pandas as pd
>>> rows = [{"param": "pooling", "value": v, "is_default": v == "mean", "rm": rm, "n": n,
...          "utility": u + 0.01 * n * (v == "mean"), "ci_low": None, "ci_high": None}
...         for v in ("mean", "last") for rm, u in (("random", 0.1), ("score_prob", 0.12))
...         for n in (1, 2, 4)]
>>> fig = ablation_curves(pd.DataFrame(rows))
>>> len(fig.axes)
1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ttp_diag.exceptions import ConfigError
from ttp_diag.plots._common import REWARD_LABEL, label_n_axes, legend_top, panel_letter
from ttp_diag.plots.style import COLORS, EXTRA_PALETTE, new_figure, rm_color, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ablation_curves", "PARAM_TITLES"]

#: Panel titles of the named sweep parameters.
PARAM_TITLES = {"lora_rank": "LoRA rank", "data_pct": "Per-user training data (%)",
                "loss": "Loss decomposition", "pooling": "Pooling", "head": "Head",
                "use_lora": "LoRA adapter", "contrastive": "Contrastive term"}
_MARKERS = ("o", "s", "^", "v", "P", "X", "<", ">")
_REQUIRED = ("param", "value", "rm", "n", "utility")


def _order(values: list[str]) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return list(values)


@styled
def ablation_curves(results: pd.DataFrame, *, params: list[str] | None = None,
                    ci: bool = True, reward_label: str = REWARD_LABEL,
                    title: str = "Reward-model ablations") -> Figure:
    """Fig. A3: Best-of-N utility vs N per sweep point, one panel per swept parameter.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy sweep results: ``param``, ``value``, ``rm``, ``n``, ``utility`` (and
        ``is_default``, ``ci_low``, ``ci_high`` when known).
    params : list of str, optional
        Panels to draw, in order (default: every parameter, in the table's order).
    ci : bool
        Band of the full model's bootstrap interval (when the table has it).
    reward_label : str
        Y-axis label.
    """
    missing = [c for c in _REQUIRED if c not in results.columns]
    if missing:
        raise ConfigError(f"ablation_curves: column(s) {missing} not found (columns: "
                         f"{list(results.columns)}); pass sweep_results.csv "
                         "(ttp_diag.analysis.sweeps.sweep_table)")
    res = results.copy()
    res["value"] = res["value"].astype(str)
    if "is_default" not in res.columns:
        res["is_default"] = False
    params = params or list(dict.fromkeys(res["param"]))
    if not params:
        raise ConfigError("ablation_curves: the results table is empty; run the sweep first")
    k = len(params)
    ncols = k if k <= 3 else -(-k // 2)  # one row up to three panels, then two rows
    nrows = -(-k // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(4.1 * ncols + 0.3, 3.6 * nrows + 0.3))
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    for i, param in enumerate(params):
        ax = axes.ravel()[i]
        sub = res[res["param"] == param]
        if sub.empty:
            raise ConfigError(f"ablation_curves: no rows for parameter {param!r}; parameters "
                             f"in the table: {sorted(res['param'].unique())}")
        rnd = sub[sub["rm"] == "random"].groupby("n")["utility"].mean()
        ax.plot(rnd.index, rnd.to_numpy(), color=COLORS["random"], linestyle="--",
                linewidth=1.5, label="Random", zorder=1)
        j = 0
        for value in _order(list(dict.fromkeys(sub["value"]))):
            pt = sub[(sub["value"] == value) & ~sub["rm"].isin(["random", "oracle"])]
            for rm, c in pt.groupby("rm", sort=True):
                c = c.sort_values("n")
                full = bool(c["is_default"].iloc[0])
                short = rm_label(rm, short=True)
                what = f"{value}" if pt["rm"].nunique() == 1 and param != "loss" else \
                    f"{value} ({short})"
                # The full model is drawn thick *under* the variants, so a variant that
                # coincides with it (e.g. a loss term that never fires) stays visible.
                if full:
                    col, lw, z, lab = rm_color(rm), 2.6, 2, f"{what}: full model"
                else:
                    col, lw, z, lab = EXTRA_PALETTE[j % len(EXTRA_PALETTE)], 1.4, 3, what
                    j += 1
                ax.plot(c["n"], c["utility"], color=col, linewidth=lw, zorder=z,
                        marker=_MARKERS[(j if not full else 0) % len(_MARKERS)],
                        markersize=4 if full else 3.5, label=lab)
                if ci and full and "ci_low" in c and np.isfinite(
                        pd.to_numeric(c["ci_low"], errors="coerce")).any():
                    ax.fill_between(c["n"], pd.to_numeric(c["ci_low"]),
                                    pd.to_numeric(c["ci_high"]), color=col, alpha=0.15,
                                    linewidth=0, zorder=1)
        ax.set_title(f"{panel_letter(i) if k > 1 else ''}{PARAM_TITLES.get(param, param)}")
        label_n_axes(ax, reward_label if i % ncols == 0 else "")
        legend_top(ax, fontsize=7)
    fig.suptitle(title)
    return fig
