"""Regenerate every kind of figure of the paper from score tables.

Usage::

    python paper_figures/make_all.py                      # the embedded demo table
    python paper_figures/make_all.py A.parquet B.parquet --names LaMP-4 LaMP-5 --out figs/

Each table is one task (one panel column in the multi-task figures), fitted once with
:class:`ttp_diag.BestOfN`; every figure and table below is drawn from that fit. Besides the PNGs
(Figs. 1-6, A4-A9) it writes the tables behind them as CSV (atomically): per-task diagnostics
and prediction error for both curve shapes (Table A12), variance-based selectors (Table A10)
and the collapse / hacking rates by label-spread half (Tables A13, A14).

Appendix B figures, from run folders (each skipped, with the reason printed, when its input
is not given)::

    python paper_figures/make_all.py --skip-main --out figs/ \
        --policy-runs RAG=runs/hp6 Persona=runs/hp6_persona Persona+RAG=runs/hp6_prag \
        --lora-run runs/hp6_lora --sweep-dir runs/hp6_sweep

* Fig. A1 (``--policy-runs NAME=DIR ...``, plus ``--lora-run`` as a panel): Best-of-N curves
  per selector for each policy family; ``table_a1_policy_curves.csv``.
* Fig. A2 (``--lora-run DIR``, a ``python -m ttp_diag.gen.lora_policy`` folder): the selectors
  on the LoRA policy (solid) against the base policy (dashed: ``--lora-base``, default the
  first ``--policy-runs`` entry).
* Fig. A3 (``--sweep-dir DIR``, a ``ttp-diag sweep --out`` folder): utility vs N per sweep
  point; ``table_a3_ablations.csv``.
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
    parser.add_argument("--policy-runs", nargs="+", default=None, metavar="NAME=DIR",
                        help="Fig. A1: run folders (or score tables) of the policy families")
    parser.add_argument("--lora-run", default=None, metavar="DIR",
                        help="Figs. A1/A2: folder (or score table) of the per-user LoRA policy")
    parser.add_argument("--lora-base", default=None, metavar="NAME",
                        help="Fig. A2: the --policy-runs entry drawn dashed (default: first)")
    parser.add_argument("--sweep-dir", default=None, help="Fig. A3: a `ttp-diag sweep` folder")
    parser.add_argument("--skip-main", action="store_true",
                        help="only the appendix B figures (A1-A3)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = appendix_b(args, out)
    if args.skip_main:
        print(f"{len(paths)} files in {time.perf_counter() - start:.1f} s in {out.resolve()}")
        return 0
    paths += main_figures(args, out)
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f} s in {out.resolve()}")
    return 0


def _score_table(where: str):
    """A run folder's ``scores.parquet``, or a score table file given directly."""
    from ttp_diag.io import read_table

    p = Path(where)
    f = p / "scores.parquet" if p.is_dir() else p
    if not f.is_file():
        raise FileNotFoundError(f"{f} not found; give a finished run folder or a score table")
    t = read_table(f, what="score table")
    size = t.groupby("query_id")["query_id"].transform("size")
    if (size < 2).any():  # duplicates removed down to one text: nothing to select from
        print(f"  {f}: left out {t.loc[size < 2, 'query_id'].nunique()} query(ies) with a "
              "single distinct candidate")
        t = t[size >= 2]
    return t


def appendix_b(args, out: Path) -> list[str]:
    """Figs. A1-A3 from the run folders named by the options; skipped ones are printed."""
    from ttp_diag.io import atomic_write
    from ttp_diag.plots.style import savefig

    label = args.reward_label or "ROUGE (R1+RL)/2"
    paths: list[str] = []

    def write_csv(frame, name):
        path = atomic_write(out / name, lambda p: frame.to_csv(p, index=False))
        paths.append(str(path))
        print(f"  wrote {path}")

    policies = {}
    for spec in args.policy_runs or []:
        name, sep, where = spec.partition("=")
        if not sep or not name or not where:
            raise SystemExit(f"--policy-runs {spec!r}: write NAME=DIR, e.g. RAG=runs/hp6")
        policies[name] = _score_table(where)
    lora = _score_table(args.lora_run) if args.lora_run else None
    if policies or lora is not None:
        import pandas as pd

        from ttp_diag.analysis.sweeps import curve_table
        from ttp_diag.plots.policies import lora_policy_curves, policy_families

        fam = dict(policies)
        if lora is not None:
            fam["Per-user LoRA"] = lora
        fig = policy_families(fam, split=args.split, n_boot=args.n_boot, reward_label=label)
        paths.append(savefig(fig, out / "figA1_policy_families.png"))
        print(f"  wrote {paths[-1]}")
        write_csv(pd.concat([curve_table(t, split=args.split, n_boot=args.n_boot)
                             .assign(policy=k) for k, t in fam.items()], ignore_index=True),
                  "table_a1_policy_curves.csv")
        if lora is not None and policies:
            base = args.lora_base or next(iter(policies))
            if base not in policies:
                raise SystemExit(f"--lora-base {base!r} is not a --policy-runs name "
                                 f"({sorted(policies)})")
            fig = lora_policy_curves(policies[base], lora, split=args.split,
                                     n_boot=args.n_boot, base_name=f"{base} policy",
                                     reward_label=label)
            paths.append(savefig(fig, out / "figA2_lora_policy.png"))
            print(f"  wrote {paths[-1]}")
        else:
            print("Fig. A2 skipped: it needs --lora-run and a base policy in --policy-runs")
    else:
        print("Figs. A1 and A2 skipped: no --policy-runs or --lora-run given")
    if args.sweep_dir:
        import pandas as pd

        from ttp_diag.analysis.sweeps import sweep_table
        from ttp_diag.plots.ablations import ablation_curves

        csv = Path(args.sweep_dir) / "sweep_results.csv"
        res = (pd.read_csv(csv) if csv.is_file() else
               sweep_table(args.sweep_dir, split=args.split, n_boot=args.n_boot))
        fig = ablation_curves(res, reward_label=label)
        paths.append(savefig(fig, out / "figA3_ablations.png"))
        print(f"  wrote {paths[-1]}")
        write_csv(res, "table_a3_ablations.csv")
    else:
        print("Fig. A3 skipped: no --sweep-dir given")
    return paths


def main_figures(args, out: Path) -> list[str]:
    """Figs. 1-6 and A4-A9 with their tables (the score tables given, or the demo)."""
    import pandas as pd

    from ttp_diag.analysis import risk_report, selector_table
    from ttp_diag.bestofn import BestOfN
    from ttp_diag.cli.figures import load_tasks
    from ttp_diag.datasets import demo_or_table
    from ttp_diag.full_report import REPORT_SHAPES, variance_column
    from ttp_diag.io import atomic_write
    from ttp_diag.plots.gallery import write_all_figures

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
    return paths


if __name__ == "__main__":
    sys.exit(main())
