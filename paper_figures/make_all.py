"""Regenerate every kind of figure of the paper from score tables.

Usage::

    python paper_figures/make_all.py                      # the embedded demo table
    python paper_figures/make_all.py A.parquet B.parquet --names LaMP-4 LaMP-5 --out figs/

Each table is one task (one panel column in the multi-task figures), fitted once with
:class:`ttp_diag.BestOfN`; every figure and table below is drawn from that fit. Besides the PNGs
(Figs. 1-6, A4-A9) it writes the tables behind them as CSV (atomically): per-task diagnostics
and prediction error for both curve shapes (Table A12), variance-based selectors (Table A10)
and the collapse / hacking rates by label-spread half (Tables A13, A14).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="*", help="score tables (default: the demo table)")
    parser.add_argument("--names", nargs="+", default=None, help="task names, one per table")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"),
                        help="output folder (default paper_figures/out)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--base", default="score_det",
                        help="score column of the failure-mode figures (default %(default)s)")
    parser.add_argument("--new", default="score_prob",
                        help="score column compared with --base (default %(default)s)")
    parser.add_argument("--reward-label", default=None)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)

    import pandas as pd

    from ttp_diag.analysis import risk_report, selector_table
    from ttp_diag.bestofn import BestOfN
    from ttp_diag.cli.figures import load_tasks
    from ttp_diag.datasets import demo_or_table
    from ttp_diag.full_report import REPORT_SHAPES, variance_column
    from ttp_diag.io import atomic_write
    from ttp_diag.plots.gallery import write_all_figures

    start = time.perf_counter()
    if args.tables:
        tables = load_tasks(args.tables, args.names)
        label = args.reward_label or "Reward"
    else:
        table, source = demo_or_table(None)
        demo = source.startswith("embedded demo")
        name = (args.names or ["HuffPost demo" if demo else "simulation"])[0]
        tables = {name: table}
        label = args.reward_label or ("ROUGE (R1+RL)/2" if demo else "Reward")
        print(f"using the {source}")
    fits = {task: BestOfN(shape=REPORT_SHAPES, split=args.split, n_boot=args.n_boot).fit(t)
            for task, t in tables.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    var = next((v for t in tables.values() if (v := variance_column(t, args.new))), None)
    paths = write_all_figures(fits, out, shapes=REPORT_SHAPES, base=args.base, new=args.new,
                              var=var, reward_label=label, n_boot=args.n_boot, progress=True)

    a12, a10, a13, a14 = [], [], [], []
    for task, fit in fits.items():
        a12.append(fit.summary.assign(task=task))
        v = variance_column(fit.table_, args.new)
        if args.new in fit.scores_ and v is not None:
            a10.append(selector_table(fit.table_, args.new, v, split=None,
                                      ns=[n for n in (1, 5, 10, 15, 20, 30) if n <= fit.ns_[-1]])
                       .assign(task=task))
        rep = risk_report(tables[task], fit.scores_, eval_split=args.split,
                          diagnostics=fit.diagnostics_)
        a13.append(rep.collapse_table.assign(task=task))
        a14.append(rep.hacking_table.assign(task=task))
    for name, frames in (("table_a12_diagnostics", a12), ("table_a10_variance_selectors", a10),
                         ("table_a13_collapse_by_half", a13), ("table_a14_hacking_by_half", a14)):
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            path = atomic_write(out / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
            paths.append(str(path))
            print(f"  wrote {path}")
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f} s in {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
