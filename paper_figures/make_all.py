"""Regenerate every kind of figure of the paper from score tables.

Usage::

    python paper_figures/make_all.py                      # the embedded demo table
    python paper_figures/make_all.py A.parquet B.parquet --names LaMP-4 LaMP-5 --out figs/

Each table is one task (one panel column in the multi-task figures). Besides the PNGs
(Figs. 1-6, A4-A9) it writes the tables behind them as CSV: per-task diagnostics and
prediction error for both curve shapes (Table A12), variance-based selectors (Table A10) and
the collapse / hacking rates by label-spread half (Tables A13, A14).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="*", help="score tables (default: the demo table)")
    parser.add_argument("--names", nargs="+", default=None, help="task names, one per table")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"),
                        help="output folder (default paper_figures/out)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--reward-label", default=None)
    args = parser.parse_args(argv)

    import pandas as pd

    import ttp_diag as td
    from ttp_diag.analysis import risk_report, selector_table
    from ttp_diag.cli.demo import _diagnostics_table, load_table
    from ttp_diag.cli.figures import load_tasks
    from ttp_diag.plots.figures import default_ns, resolve_pool, write_all_figures

    start = time.perf_counter()
    if args.tables:
        tasks = load_tasks(args.tables, args.names)
        label = args.reward_label or "Reward"
    else:
        table, source = load_table(None)
        name = (args.names or ["HuffPost demo" if "demo" in source else "simulation"])[0]
        tasks = {name: table}
        label = args.reward_label or ("ROUGE (R1+RL)/2" if "demo" in source else "Reward")
        print(f"using the {source}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_all_figures(tasks, out, split=args.split, reward_label=label)

    a12, a10, a13, a14 = [], [], [], []
    for task, table in tasks.items():
        scores = td.score_columns(table)
        val = td.validate_score_table(table, scores=scores, split=args.split)
        ns = default_ns(val, split=None)
        curves = td.bon_curves(val, ["random", "oracle", *scores], ns, split=None,
                               pool=resolve_pool(val, ns))
        oracle = curves.loc[curves.selector == "oracle", "utility"].to_numpy()
        mu_random = float(curves.loc[curves.selector == "random", "utility"].iloc[0])
        cals = {s: td.calibrate(ns, oracle, shape=s, mu=mu_random)
                for s in ("sqrt_log", "gaussian")}
        diags = {s: td.diagnose(val, s, split=None, validate=False) for s in scores}
        tab, _ = _diagnostics_table(curves, diags, cals, ns, scores)
        a12.append(tab.assign(task=task))
        if "score_prob" in scores and "var_prob" in val.columns:
            a10.append(selector_table(val, split=None, ns=[n for n in (1, 5, 10, 15, 20, 30)
                                                           if n <= ns[-1]]).assign(task=task))
        rep = risk_report(table, scores, eval_split=args.split, diagnostics=diags)
        a13.append(rep.collapse_table.assign(task=task))
        a14.append(rep.hacking_table.assign(task=task))
    for name, frames in (("table_a12_diagnostics", a12), ("table_a10_variance_selectors", a10),
                         ("table_a13_collapse_by_half", a13), ("table_a14_hacking_by_half", a14)):
        if frames:
            path = out / f"{name}.csv"
            pd.concat(frames, ignore_index=True).to_csv(path, index=False)
            paths.append(str(path))
            print(f"  wrote {path}")
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f} s in {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
