"""The evaluation's comparison figure.

Left: generation quality (ROUGE-1 against the gold text) per method, mean over adaptation
users with a bootstrap interval over users, one colour per method family. Right: one
upstream metric per panel against generation quality across reward models (one point per
reward model and decoding family; methods without a reward model are not points), with
Kendall's tau over the reward models of each family, its bootstrap interval over users and
the number of reward models it rests on in the panel title (the unit of analysis of
:func:`ttp_diag.gen.evaluation.tables.agreement_over_rms`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ttp_diag.gen.evaluation.tables import agreement_over_rms, method_summary, policy_family

__all__ = ["comparison_figure", "write_figures"]

_FAMILY_COLOURS = {"zero_shot": "#7f7f7f", "icl": "#1f77b4", "args": "#d62728",
                   "bon": "#2ca02c", "judge": "#9467bd", "lora": "#ff7f0e"}


def _family(m: str) -> str:
    for f in ("zero_shot", "icl", "args", "judge", "lora", "bon"):
        if m.startswith(f):
            return f
    return "zero_shot"


def _merge_coincident(x, y, names, ax, tol_px: float = 4.0):
    """Group points closer than ``tol_px`` pixels: one label ``"a, b"`` per group."""
    xy = ax.transData.transform(np.column_stack([x, y]))
    groups: list[list[int]] = []
    for i in range(len(names)):
        for g in groups:
            if np.hypot(*(xy[i] - xy[g[0]])) < tol_px:
                g.append(i)
                break
        else:
            groups.append([i])
    return [(x[g[0]], y[g[0]], ", ".join(names[i] for i in g)) for g in groups]


def _place_labels(ax, x, y, names, fontsize: float = 7.0) -> None:
    """Label scatter points without overlaps (greedy search over offsets, no extra package).

    Points that coincide share one label; each label takes the first of a ring of offsets
    around its point whose box overlaps neither an earlier label nor a point nor the axes
    edge; a label that finds no free slot at any radius is drawn with a thin leader line at
    the least crowded slot tried.
    """
    if len(names) == 0:
        return
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    pts = ax.transData.transform(np.column_stack([x, y]))
    frame = ax.get_window_extent(renderer)
    placed: list = []
    labels = _merge_coincident(np.asarray(x), np.asarray(y), list(names), ax)
    # crowded points first: they have the fewest free slots
    dens = [np.sum(np.hypot(*(pts - ax.transData.transform((lx, ly))).T) < 40)
            for lx, ly, _ in labels]
    order = np.argsort(dens, kind="stable")[::-1]
    dirs = [(1, 0.3), (1, -1.1), (-1, 0.3), (-1, -1.1), (0, 1), (0, -1), (1, 1), (-1, 1),
            (1, -1.8), (-1, -1.8)]

    def _overlap(bb, boxes):
        return sum(bb.overlaps(b) for b in boxes)

    point_boxes = [Bbox.from_bounds(px - 3, py - 3, 6, 6) for px, py in pts]
    for j in order:
        lx, ly, text = labels[j]
        best = None
        for radius in (4, 9, 16, 26):
            for dx, dy in dirs:
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                t = ax.annotate(text, (lx, ly), xytext=(dx * radius, dy * radius * 0.8),
                                textcoords="offset points", fontsize=fontsize, ha=ha,
                                va="bottom")
                bb = t.get_window_extent(renderer).expanded(1.12, 1.2)
                inside = (bb.x0 >= frame.x0 and bb.x1 <= frame.x1 and bb.y0 >= frame.y0
                          and bb.y1 <= frame.y1)
                cost = _overlap(bb, placed) * 10 + _overlap(bb, point_boxes) + (0 if inside
                                                                                 else 5)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, t, bb, radius)
                else:
                    t.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, t, bb, radius = best
        if radius > 9:  # far from its point: draw a leader line
            t.remove()
            t = ax.annotate(text, (lx, ly), xytext=t.xyann, textcoords="offset points",
                            fontsize=fontsize, ha=t.get_ha(), va="bottom",
                            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.4",
                                        "shrinkA": 0, "shrinkB": 3})
            bb = t.get_window_extent(renderer).expanded(1.12, 1.2)
        placed.append(bb)


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
    # bars on the left over the full height, the scatter panels on a 2-column grid beside them
    n_cols = 2 if len(ups) > 1 else max(len(ups), 1)
    n_rows = max(1, -(-len(ups) // n_cols))
    fig = plt.figure(figsize=(5.6 + 4.2 * n_cols, 0.8 + 4.1 * n_rows))
    gs = fig.add_gridspec(n_rows, 1 + n_cols, width_ratios=[1.35] + [1] * n_cols)
    axes = [fig.add_subplot(gs[:, 0])]
    axes += [fig.add_subplot(gs[i // n_cols, 1 + i % n_cols]) for i in range(len(ups))]
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
    means = means[[policy_family(m) is not None for m in means.index]]
    for ax, up in zip(axes[1:], ups, strict=True):
        if not {up, quality_metric} <= set(means.columns):
            ax.set_axis_off()
            continue
        d = means[[up, quality_metric]].dropna()
        for m, r in d.iterrows():
            ax.scatter(r[up], r[quality_metric], color=_FAMILY_COLOURS[_family(m)], s=40,
                       edgecolor="black", linewidth=0.4, zorder=3)
        ax.margins(0.15)
        _place_labels(ax, d[up].to_numpy(float), d[quality_metric].to_numpy(float),
                      list(d.index))
        ra = agreement_over_rms(per_user, [up], quality_metric, ci=ci,
                                n_boot=min(n_boot, 300), seed=seed)
        ra = ra[(ra["statistic"] == "kendall_tau") & (ra["family"] != "all")]
        lines = []
        for t in ra.itertuples():
            ci_txt = (f" [{t.ci_low:.2f}, {t.ci_high:.2f}]" if np.isfinite(t.ci_low) else "")
            tau = "n/a" if not np.isfinite(t.estimate) else f"{t.estimate:.2f}"
            lines.append(f"{t.family.replace('_', '-')}: tau = {tau}{ci_txt}, "
                         f"{int(t.n_points)} RMs")
        ax.set_title("\n".join(lines) or "no reward-model points", fontsize=8.5)
        ax.set_xlabel(up.replace("_", " "))
        ax.set_ylabel(quality_metric)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="s", ls="", color=c, label=f)
               for f, c in _FAMILY_COLOURS.items()
               if any(_family(m) == f for m in s["method"])]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.035, 1, 1))
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
