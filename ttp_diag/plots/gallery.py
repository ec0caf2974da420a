"""Every kind of paper figure for one or more score tables, written as PNGs.

Each task is fitted once (:class:`ttp_diag.BestOfN`); every figure is drawn from that fit.

Examples
--------
>>> import tempfile, ttp_diag as td
>>> from ttp_diag.plots.gallery import write_all_figures
>>> t = td.simulate_score_table(n_users=8, n_queries=3, n_candidates=6, seed=0)
>>> paths = write_all_figures(t, tempfile.mkdtemp(), shapes=("gaussian",), n_boot=20)
>>> len(paths)
9
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ttp_diag.plots._common import REWARD_LABEL
from ttp_diag.plots.figures import (
    Tables,
    as_fits,
    collapse_panels,
    confidence_bands,
    correlation_distributions,
    failure_modes,
    hacking_panels,
    linearity_figure,
    oracle_scaling,
    predicted_vs_observed,
    scaling_curves,
    sub_gaussian_figure,
    task_panel,
)
from ttp_diag.plots.style import savefig

__all__ = ["write_all_figures"]


def _safe_name(task: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in task) or "table"


def write_all_figures(tables: Tables, out_dir: str | Path, *,
                      scores: Sequence[str] | None = None, ns: Sequence[int] | None = None,
                      shapes: Sequence[str] = ("sqrt_log", "gaussian"),
                      base: str | None = None, new: str | None = None, var: str | None = None,
                      split: str | None = "val",
                      training_baseline: float | Mapping[str, float] | None = None,
                      reward_label: str = REWARD_LABEL, n_boot: int = 1000, seed: int | None = 0,
                      progress: bool | Callable[[str], object] = False) -> list[str]:
    """Draw every kind of paper figure for the given score tables and save the PNGs.

    Multi-task figures (1/3, 2, 4, 5, A5, A8, A9) get one panel column per task; per-table
    figures (6, A4, A6, A7) are written once per task with the task name in the file name.
    The failure-mode figures (6, A8, A9) need ``base`` and ``new`` (two score columns, e.g.
    a deterministic and a probabilistic reward model) and are skipped, with a message, for
    tables that lack them.

    Parameters
    ----------
    tables : DataFrame, BestOfN, or dict of str -> either
    out_dir : str or Path
    scores, ns, split, training_baseline, reward_label
        As in the individual figure functions.
    shapes : sequence of str, default ("sqrt_log", "gaussian")
        Curve shapes: Fig. 2 draws all; Figs. 5 and A5 are written once per shape.
    base, new, var : str, optional
        Columns of the failure-mode figures (``var``: ``new``'s predicted variance).
    n_boot, seed : int
        Bootstrap replicates and seed of Fig. A4.
    progress : bool or callable, default False
        Print one line per figure written (a callable receives the line instead).

    Returns
    -------
    list of str
        Paths of the PNGs written.
    """
    from ttp_diag._checks import check_n_boot

    n_boot = check_n_boot(n_boot, ci=0.95)  # Fig. A4's bands are 95% intervals
    fits = as_fits(tables, scores, ns, split=split, shape=tuple(shapes), n_boot=n_boot)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    say = progress if callable(progress) else (print if progress else (lambda _: None))

    def save(fig: object, name: str) -> None:
        path = savefig(fig, out / f"{name}.png")
        written.append(path)
        say(f"  wrote {path}")

    save(scaling_curves(fits, training_baseline=training_baseline, reward_label=reward_label),
         "fig1_3_scaling_curves")
    save(oracle_scaling(fits, shapes=shapes, training_baseline=training_baseline,
                        reward_label=reward_label), "fig2_oracle_scaling")
    save(correlation_distributions(fits), "fig4_correlation_distributions")
    for shape in shapes:
        save(task_panel(fits, shape=shape, reward_label=reward_label),
             f"fig5_task_panel_{shape}")
        save(predicted_vs_observed(fits, shape=shape, reward_label=reward_label),
             f"figA5_predicted_vs_observed_{shape}")
    has_pair = {k: base is not None and new is not None and base in f.table_.columns
                and new in f.table_.columns for k, f in fits.items()}
    pair = {k: f for k, f in fits.items() if has_pair[k]}
    if pair:
        save(collapse_panels(pair, base, new), "figA8_collapse_panels")
        save(hacking_panels(pair, base, new, var), "figA9_hacking_panels")
    elif base is None or new is None:
        say("  skipped Figs. 6, A8, A9: pass base= and new= (two score columns to compare)")
    else:
        say(f"  skipped Figs. 6, A8, A9: no table has both {base!r} and {new!r}")
    for task, fit in fits.items():
        suffix = f"_{_safe_name(task)}" if len(fits) > 1 or task else ""
        if has_pair[task]:
            save(failure_modes(fit, base, new, var, task=task), f"fig6_failure_modes{suffix}")
        save(confidence_bands(fit, n_boot=n_boot, seed=seed, reward_label=reward_label),
             f"figA4_confidence_bands{suffix}")
        save(confidence_bands(fit, n_boot=n_boot, seed=seed, gain=True,
                              reward_label=reward_label), f"figA4_gain_bands{suffix}")
        save(sub_gaussian_figure(fit.table_, split=None), f"figA6_sub_gaussian{suffix}")
        save(linearity_figure(fit.table_, fit.scores_, split=None),
             f"figA7_linearity{suffix}")
    return written
