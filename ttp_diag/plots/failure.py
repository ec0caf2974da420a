"""Failure-mode figures: label std of collapsed users, rescue of hacked queries, variance vs
error (Fig. 6) and their cross-task versions (Figs. A8, A9).

Each function takes a score table or a fitted :class:`ttp_diag.BestOfN` (whose diagnostics are
reused), and the two score columns to compare: ``base`` (e.g. a deterministic reward model) and
``new`` (e.g. a probabilistic one); ``var`` is ``new``'s predicted-variance column.

Examples
--------
>>> import ttp_diag as td
>>> from ttp_diag.plots import failure
>>> t = td.simulate_score_table(n_users=10, n_queries=4, n_candidates=8, seed=0)
>>> len(failure.failure_modes(t, "score_det", "score_prob", "var_prob").axes)
4
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ttp_diag.bestofn import BestOfN
from ttp_diag.diagnostics import Diagnostics
from ttp_diag.plots._common import RHO_Q, RHO_U, THRESHOLD_COLOR, Tables, as_tasks
from ttp_diag.plots._common import color as _color
from ttp_diag.plots._common import fmt_p as _fmt_p
from ttp_diag.plots._common import legend_below as _legend_below
from ttp_diag.plots._common import legend_top as _legend_top
from ttp_diag.plots._common import panel_letter as _panel_letter
from ttp_diag.plots._common import title as _title
from ttp_diag.plots.style import CATEGORY_COLORS, new_figure, rm_color, rm_label, styled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["collapse_panels", "failure_modes", "hacking_panels"]


def _table_and_diags(table: pd.DataFrame | BestOfN, base: str, new: str, split: str | None,
                     collapse_threshold: float) -> tuple[pd.DataFrame, Diagnostics, Diagnostics]:
    """The analysed rows and the diagnostics of ``base`` and ``new``, reused from a fit."""
    import ttp_diag as td

    if isinstance(table, BestOfN):
        table._check_fitted()
        t = table.table_
        missing = [s for s in (base, new) if s not in t.columns]
        if missing:
            raise ValueError(f"the fitted table has no column {missing[0]!r}; pass base=/new= "
                             f"naming two of its score columns ({', '.join(table.scores_)}).")
        same = table.collapse_threshold == collapse_threshold
        diags = [table.diagnostics_[s] if same and s in table.diagnostics_ else
                 td.diagnose(t, s, split=None, validate=False,
                             collapse_threshold=collapse_threshold) for s in (base, new)]
        return t, diags[0], diags[1]
    t = td.validate_score_table(table, scores=[base, new], split=split)
    d_base, d_new = (td.diagnose(t, s, split=None, validate=False,
                                 collapse_threshold=collapse_threshold) for s in (base, new))
    return t, d_base, d_new


# --------------------------------------------------------------------------- Fig 6 panels
def _panel_label_std(ax, res, *, title="Label std: collapsed vs normal users"):
    pu = res.per_user
    groups = [("collapsed", f"collapsed\n({RHO_U} < {res.collapse_threshold:g})", "#4D4D4D"),
              ("normal", f"normal\n({RHO_U} > {res.normal_threshold:g})", "#5E81AC")]
    data = [pu.loc[pu.group == g, "label_std"].to_numpy() for g, _, _ in groups]
    present = [d.size > 0 for d in data]
    if any(present):
        bp = ax.boxplot([d if d.size else [np.nan] for d in data], positions=[0, 1], widths=0.5,
                        showfliers=False, patch_artist=True,
                        medianprops=dict(color="black", linewidth=1.5))
        for patch, (_, _, c) in zip(bp["boxes"], groups, strict=True):
            patch.set_facecolor(c)
            patch.set_alpha(0.3)
        rng = np.random.default_rng(0)
        for k, (d, (_, _, c)) in enumerate(zip(data, groups, strict=True)):
            ax.scatter(k + rng.uniform(-0.12, 0.12, d.size), d, color=c, s=12, alpha=0.8,
                       label=f"{groups[k][0]} users (n={d.size})")
    ax.set_xticks([0, 1], [lab for _, lab, _ in groups])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel("Std of true reward per user")
    ax.set_xlabel(f"Users grouped by {RHO_U} under {rm_label(res.score, short=True)} RM")
    if res.n_collapsed and res.n_normal:
        txt = f"Mann-Whitney {_fmt_p(res.mannwhitney_p)}, Welch t {_fmt_p(res.welch_p)}"
    else:
        txt = "one group is empty: no test"
    ax.set_title(f"{title}\n{txt}")
    if any(present):
        _legend_top(ax)


def _user_rho(table, user, score):
    g = table[table["user_id"] == user]
    x, y = g[score].to_numpy(float), g["reward"].to_numpy(float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _panel_user_hist(ax, table, user, scores, *, title=None, bins=20):
    g = table[table["user_id"] == user]
    series = [("reward", "True reward", "#333333")] + [
        (s, rm_label(s, short=True) + " RM", _color(s, scores)) for s in scores]
    values = [g[c].to_numpy(float) for c, _, _ in series]
    lo = min(v.min() for v in values)
    hi = max(v.max() for v in values)
    edges = np.linspace(lo, hi + 1e-12 if hi == lo else hi, bins + 1)
    for (col, lab, color), v in zip(series, values, strict=True):
        if col != "reward":
            lab = f"{lab} ($\\rho$ = {_user_rho(table, user, col):+.2f})"
        ax.hist(v, bins=edges, histtype="stepfilled" if col == "reward" else "step",
                alpha=0.35 if col == "reward" else 1.0, linewidth=1.8, color=color, label=lab)
    ax.set_xlabel("True reward / predicted score")
    ax.set_ylabel("Candidates")
    ax.set_title(title or f"Scores of user {user}")
    _legend_top(ax, loc="upper right")


def _panel_rescue(ax, res):
    pq = res.per_query
    labels = {
        "rescued": f"rescued: {rm_label(res.base, short=True)} < 0 ≤ "
                   f"{rm_label(res.new, short=True)} ({res.rescued_rate:.0%})",
        "harmed": f"harmed ({res.harmed_rate:.0%})",
        "both_positive": f"both ≥ 0 ({res.both_positive_rate:.0%})",
        "both_negative": f"both < 0 ({res.both_negative_rate:.0%})",
    }
    for cat in ("both_positive", "both_negative", "harmed", "rescued"):
        d = pq[pq.category == cat]
        ax.scatter(d["rho_base"], d["rho_new"], s=10, alpha=0.75, color=CATEGORY_COLORS[cat],
                   label=labels[cat])
    ax.axvline(0, color="#999999", linewidth=1)
    ax.axhline(0, color="#999999", linewidth=1)
    ax.plot([-1, 1], [-1, 1], color="#bbbbbb", linestyle="--", linewidth=1)
    ax.axvspan(-1.05, 0, ymin=0.5, ymax=1, color=CATEGORY_COLORS["rescued"], alpha=0.07)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(f"{RHO_Q} under {rm_label(res.base)}")
    ax.set_ylabel(f"{RHO_Q} under {rm_label(res.new)}")
    ax.set_title(f"Per-query correlation ({res.n_queries} queries)")
    _legend_below(ax, ncols=2)


def _panel_var_error(ax, res):
    d = res.data
    ax.scatter(d["variance"], d["abs_error"], s=5, alpha=0.3, color=rm_color(res.score),
               rasterized=True, label=f"{res.unit}s (n={res.n})")
    ax.set_xlabel(f"Predicted variance ({res.var})")
    ax.set_ylabel(f"|{rm_label(res.score, short=True)} score - true reward|")
    ax.set_title(f"Variance vs error: Spearman r = {res.spearman_r:.2f}")
    _legend_top(ax)


def _pick_collapsed_user(diag_base, diag_new, user=None):
    if user is not None:
        return user
    pu = diag_base.per_user
    col = pu[pu["collapsed"]]
    if col.empty:
        return None
    # the collapsed user whose rho_u is the median of the collapsed group: representative
    order = col["rho_u"].rank(method="first")
    return col.loc[(order - (len(col) + 1) / 2).abs().idxmin(), "user_id"]


@styled
def failure_modes(table: pd.DataFrame | BestOfN, base: str, new: str, var: str | None = None,
                  *, split: str | None = "val", user: Any = None,
                  collapse_threshold: float = 0.1, normal_threshold: float | str = "auto",
                  task: str = "") -> Figure:
    """Failure-mode panel (Fig. 6).

    (a) label std of collapsed vs normal users under ``base`` with Mann-Whitney / Welch
    p-values (normal: rho_u > 0.5 as in the paper when at least two users reach it, else every
    non-collapsed user; see :func:`ttp_diag.analysis.label_std_by_collapse`);
    (b) score histogram of a collapsed user (default: the collapsed user with the median
    rho_u, i.e. representative, not the best example) with each model's correlation;
    (c) per-query rho_q under ``base`` vs ``new`` with the rescue quadrant shaded;
    (d) predicted variance vs absolute error with Spearman r (skipped when ``var`` is absent).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ttp_diag.analysis import label_std_by_collapse, rescue_analysis, variance_error_correlation

    t, d_base, d_new = _table_and_diags(table, base, new, split, collapse_threshold)
    fig, axes = new_figure(2, 2, figsize=(9.6, 7.6))
    ls = label_std_by_collapse(diagnostics=d_base, collapse_threshold=collapse_threshold,
                               normal_threshold=normal_threshold)
    _panel_label_std(axes[0, 0], ls, title="(a) " + _title(task, "label std by collapse"))
    u = _pick_collapsed_user(d_base, d_new, user)
    if u is None:
        axes[0, 1].text(0.5, 0.5, f"no user collapses under {rm_label(base)}\n"
                        f"(rho_u < {collapse_threshold:g})", ha="center", va="center",
                        transform=axes[0, 1].transAxes)
        axes[0, 1].set_title("(b) collapsed user: none")
        axes[0, 1].set_xlabel("True reward / predicted score")
        axes[0, 1].set_ylabel("Candidates")
    else:
        _panel_user_hist(axes[0, 1], t, u, [base, new],
                         title=f"(b) collapsed user {u}")
    rescue = rescue_analysis(diagnostics=(d_base, d_new))
    _panel_rescue(axes[1, 0], rescue)
    axes[1, 0].set_title("(c) " + axes[1, 0].get_title())
    if var is not None and var in t.columns:
        ve = variance_error_correlation(t, new, var, split=None)
        _panel_var_error(axes[1, 1], ve)
        axes[1, 1].set_title("(d) " + axes[1, 1].get_title())
    else:
        axes[1, 1].text(0.5, 0.5, f"no variance column {var!r}", ha="center", va="center",
                        transform=axes[1, 1].transAxes)
        axes[1, 1].set_title("(d) variance vs error: n/a")
        axes[1, 1].set_xlabel("Predicted variance")
        axes[1, 1].set_ylabel("Absolute error")
    return fig


@styled
def collapse_panels(tables: Tables, base: str, new: str, *, split: str | None = "val",
                    collapse_threshold: float = 0.1, normal_threshold: float | str = "auto",
                    bins: int = 20) -> Figure:
    """Cross-task user-level collapse (Fig. A8): one column per task.

    Row 1: label std of collapsed vs normal users under ``base`` (p-values). Row 2: true
    rewards and both models' scores pooled over collapsed users, with each model's Pearson
    correlation over those candidates. Row 3: the same for normal users.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ttp_diag.analysis import label_std_by_collapse

    tasks = as_tasks(tables)
    fig, axes = new_figure(3, len(tasks), figsize=(4.6 * len(tasks), 9.9))
    for i, (task, table) in enumerate(tasks.items()):
        t, d, _ = _table_and_diags(table, base, new, split, collapse_threshold)
        res = label_std_by_collapse(diagnostics=d, collapse_threshold=collapse_threshold,
                                    normal_threshold=normal_threshold)
        _panel_label_std(axes[0, i], res,
                         title=_panel_letter(i) + _title(task, "label std by collapse"))
        groups = res.per_user.set_index("user_id")["group"]
        for row, grp in ((1, "collapsed"), (2, "normal")):
            ax = axes[row, i]
            users = groups.index[groups == grp]
            g = t[t["user_id"].isin(users)]
            ax.set_title(_title(task, f"{grp} users (n={len(users)})"))
            ax.set_xlabel("True reward / predicted score")
            ax.set_ylabel("Candidates")
            if g.empty:
                ax.text(0.5, 0.5, f"no {grp} users", ha="center", va="center",
                        transform=ax.transAxes)
                continue
            cols = [("reward", "True reward", "#333333"), (base, None, _color(base, [base, new])),
                    (new, None, _color(new, [base, new]))]
            vals = [g[c].to_numpy(float) for c, _, _ in cols]
            lo, hi = min(v.min() for v in vals), max(v.max() for v in vals)
            edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
            for (c, lab, color), v in zip(cols, vals, strict=True):
                if c != "reward":
                    r = np.corrcoef(v, g["reward"])[0, 1] if np.ptp(v) > 0 else np.nan
                    lab = f"{rm_label(c, short=True)} RM ($\\rho$ = {r:+.2f})"
                ax.hist(v, bins=edges, histtype="stepfilled" if c == "reward" else "step",
                        alpha=0.35 if c == "reward" else 1.0, color=color, linewidth=1.8,
                        label=lab)
            _legend_top(ax, loc="upper right")
    return fig


# --------------------------------------------------------------------------- Fig A9
@styled
def hacking_panels(tables: Tables, base: str, new: str, var: str | None = None, *,
                   split: str | None = "val", bins: int = 20) -> Figure:
    """Cross-task query-level hacking (Fig. A9): one column per task.

    Row 1: rho_q under ``base`` vs ``new`` (rescue quadrant). Row 2: predicted variance vs
    absolute error (Spearman r). Rows 3-4: rho_q histograms of each model with the share of
    negative correlations.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ttp_diag.analysis import rescue_analysis, variance_error_correlation

    tasks = as_tasks(tables)
    fig, axes = new_figure(4, len(tasks), figsize=(4.6 * len(tasks), 12.6))
    edges = np.linspace(-1, 1, bins + 1)
    for i, (task, table) in enumerate(tasks.items()):
        t, d_base, d_new = _table_and_diags(table, base, new, split, 0.1)
        res = rescue_analysis(diagnostics=(d_base, d_new))
        _panel_rescue(axes[0, i], res)
        axes[0, i].set_title(_panel_letter(i) + _title(task, "per-query correlation"))
        if var is not None and var in t.columns:
            _panel_var_error(axes[1, i], variance_error_correlation(t, new, var, split=None))
            axes[1, i].set_title(_title(task, axes[1, i].get_title()))
        else:
            axes[1, i].text(0.5, 0.5, f"no variance column {var!r}", ha="center", va="center",
                            transform=axes[1, i].transAxes)
            axes[1, i].set_xlabel("Predicted variance")
            axes[1, i].set_ylabel("Absolute error")
            axes[1, i].set_title(_title(task, "variance vs error: n/a"))
        for row, (s, col) in zip((2, 3), ((base, "rho_base"), (new, "rho_new")), strict=True):
            ax = axes[row, i]
            v = res.per_query[col].to_numpy()
            ax.hist(v, bins=edges, color=_color(s, [base, new]), alpha=0.75,
                    label=f"{rm_label(s)}: {np.mean(v < 0):.1%} negative")
            ax.axvline(0, color=THRESHOLD_COLOR, linestyle=":", linewidth=2)
            ax.set_xlabel(f"{RHO_Q} (per-query correlation)")
            ax.set_ylabel("Queries")
            ax.set_title(_title(task, f"{RHO_Q} of {rm_label(s, short=True)} RM"))
            _legend_top(ax)
    return fig


