"""The evaluation's comparison figure.

Left: generation quality (ROUGE-1 against the gold text) per method, mean over adaptation
users with a bootstrap interval over users, one colour per method family. Right: one
upstream metric per panel against generation quality across methods, with Kendall's tau and
the number of methods it rests on in the panel title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.metrics import rank_agreement
from ttp_diag.gen.evaluation.tables import method_summary

__all__ = ["comparison_figure", "write_figures"]

_FAMILY_COLOURS = {"zero_shot": "#7f7f7f", "icl": "#1f77b4", "args": "#d62728",
                   "bon": "#2ca02c", "judge": "#9467bd", "lora": "#ff7f0e"}


def _family(m: str) -> str:
    for f in ("zero_shot", "icl", "args", "judge", "lora", "bon"):
        if m.startswith(f):
            return f
    return "zero_shot"


def comparison_figure(quality: pd.DataFrame, upstream: pd.DataFrame, *, quality_metric="rouge1",
                      upstream_metrics=("rm_accuracy", "policy_accuracy", "win_rate", "rho_eff"),
                      ci: float | None = 0.95, n_boot: int = 1000, seed: int | None = 0):
    """Draw the figure; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q_user = quality[quality["metric"] == quality_metric].groupby(
        ["method", "user_id", "metric"])["value"].mean().reset_index()
    per_user = pd.concat([q_user, upstream[["method", "user_id", "metric", "value"]]])
    s = method_summary(q_user, ci=ci, n_boot=n_boot, seed=seed).sort_values("mean")
    ups = [u for u in upstream_metrics if u in set(upstream.dropna(subset=["value"])["metric"])]
    fig, axes = plt.subplots(1, 1 + len(ups), figsize=(5.2 + 3.3 * len(ups), 4.6),
                             gridspec_kw={"width_ratios": [1.6] + [1] * len(ups)})
    axes = np.atleast_1d(axes)
    ax = axes[0]
    y = np.arange(len(s))
    cols = [_FAMILY_COLOURS[_family(m)] for m in s["method"]]
    err = None
    if ci is not None:
        err = np.vstack([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]]).clip(0)
        err = np.nan_to_num(err)
    ax.barh(y, s["mean"], xerr=err, color=cols, alpha=0.85, capsize=3)
    ax.set_yticks(y, s["method"])
    n_u = int(s["n_users"].max()) if len(s) else 0
    ax.set_xlabel(f"{quality_metric} vs. user's gold (mean over {n_u} users"
                  + (f", {int(100 * ci)}% CI)" if ci else ")"))
    ax.set_title("Generation quality per method")
    ax.grid(axis="x", alpha=0.3)
    means = per_user.groupby(["method", "metric"])["value"].mean().unstack()
    for ax, up in zip(axes[1:], ups):
        d = means[[up, quality_metric]].dropna()
        for m, r in d.iterrows():
            ax.scatter(r[up], r[quality_metric], color=_FAMILY_COLOURS[_family(m)], s=40,
                       edgecolor="black", linewidth=0.4, zorder=3)
            ax.annotate(m, (r[up], r[quality_metric]), fontsize=6.5, xytext=(3, 2),
                        textcoords="offset points")
        ra = rank_agreement(per_user, [up], quality_metric, ci=ci, n_boot=min(n_boot, 300),
                            seed=seed)
        t = ra[ra["statistic"] == "kendall_tau"].iloc[0]
        ci_txt = (f" [{t['ci_low']:.2f}, {t['ci_high']:.2f}]" if np.isfinite(t["ci_low"])
                  else "")
        tau = "n/a" if not np.isfinite(t["estimate"]) else f"{t['estimate']:.2f}"
        ax.set_title(f"tau = {tau}{ci_txt}, {int(t['n_methods'])} methods", fontsize=9)
        ax.set_xlabel(up.replace("_", " "))
        ax.set_ylabel(quality_metric)
        ax.grid(alpha=0.3)
        ax.margins(0.15)
    handles = [plt.Line2D([], [], marker="s", ls="", color=c, label=f)
               for f, c in _FAMILY_COLOURS.items()
               if any(_family(m) == f for m in s["method"])]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def write_figures(eval_dir, quality, upstream, *, ci=0.95, n_boot=1000, seed=0) -> dict:
    """Write ``figures/comparison.png`` (and ``.pdf``); return ``name -> path``."""
    import matplotlib.pyplot as plt

    out = Path(eval_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    fig = comparison_figure(quality, upstream, ci=ci, n_boot=n_boot, seed=seed)
    paths = {}
    for ext in ("png", "pdf"):
        p = out / f"comparison.{ext}"
        tmp = p.with_name(p.stem + ".tmp." + ext)
        fig.savefig(tmp, dpi=200, bbox_inches="tight")
        tmp.replace(p)
        paths[f"figure_{ext}"] = p
    plt.close(fig)
    return paths
