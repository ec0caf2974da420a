"""``ttp-diag figures``: every kind of paper figure from one or more score tables.

Each table is fitted once (:class:`ttp_diag.BestOfN`) and every figure is drawn from that fit
(:func:`ttp_diag.plots.gallery.write_all_figures`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ttp_diag.exceptions import ConfigError, ScoreTableError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "figures",
        help="draw every kind of paper figure from score tables (one panel column per table)",
        description="Figures 1-6 and A4-A9 of the paper from score tables: scaling curves, "
                    "oracle calibration, correlation distributions, the three-row task panel, "
                    "failure modes, predicted vs observed, assumption checks. Each table is "
                    "one task; its name is the file stem unless --names is given.",
    )
    p.add_argument("tables", nargs="+", help="score tables (.parquet or .csv)")
    p.add_argument("--out", required=True, help="output folder for the PNGs")
    p.add_argument("--names", nargs="+", default=None, help="task names, one per table")
    p.add_argument("--scores", nargs="+", default=None,
                   help="score columns (default: every score_* column)")
    p.add_argument("--ns", nargs="+", default=None,
                   help="candidate counts (default: 1 .. median pool size)")
    p.add_argument("--shapes", nargs="+", default=["sqrt_log", "gaussian"],
                   choices=["sqrt_log", "gaussian", "kl"], help="curve shapes to draw")
    p.add_argument("--split", default="val", help="split to analyse (default %(default)s)")
    p.add_argument("--base", default="score_det",
                   help="score column whose failures Figs. 6, A8, A9 analyse (default "
                        "%(default)s, the paper's deterministic user RM; skipped when absent)")
    p.add_argument("--new", default="score_prob",
                   help="score column compared with --base (default %(default)s)")
    p.add_argument("--var", default=None,
                   help="predicted-variance column of --new (default: var_<rm> of --new)")
    p.add_argument("--training-baseline", nargs="+", type=float, default=None,
                   help="utility of a training-based baseline, one per table (dotted line)")
    p.add_argument("--reward-label", default="Reward", help="y-axis label of the curves")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap replicates of Fig. A4 (default %(default)s)")
    p.set_defaults(func=run, _bands_ci=0.95)


def load_tasks(paths: Sequence[str | Path],
               names: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """``{task name: table}`` from file paths (names default to the file stems)."""
    from ttp_diag.io import read_table

    if names is not None and len(names) != len(paths):
        raise ConfigError(f"--names has {len(names)} name(s) for {len(paths)} table(s); give "
                          f"one name per table.")
    names = list(names) if names else [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise ConfigError(f"task names must be distinct, got {names}; pass --names.")
    return {n: read_table(p) for n, p in zip(names, paths, strict=True)}


def run(args: argparse.Namespace) -> int:
    from ttp_diag.cli._args import check_cli_bootstrap, parse_ns, split_list
    from ttp_diag.full_report import variance_column
    from ttp_diag.plots.gallery import write_all_figures
    from ttp_diag.table import score_columns

    check_cli_bootstrap(args)  # Fig. A4's bands are 95% intervals: at least 20 draws
    from ttp_diag._checks import check_output_dir

    out = check_output_dir(args.out, "--out")
    tasks = load_tasks(args.tables, args.names)
    scores = split_list(args.scores, flag="--scores") if args.scores is not None else None
    for task, t in tasks.items():
        if scores is None and not score_columns(t):
            raise ScoreTableError(f"table {task!r} has no score_* column (columns: "
                                  f"{', '.join(map(str, t.columns))}); add one per reward model or "
                                  f"name the columns to plot with --scores.")
    from ttp_diag.cli._args import check_float_flag

    for v in args.training_baseline or []:
        check_float_flag(v, "--training-baseline", what="a utility")
    base = None
    if args.training_baseline is not None:
        if len(args.training_baseline) != len(tasks):
            raise ConfigError(f"--training-baseline needs one value per table ({len(tasks)}); "
                              f"got {len(args.training_baseline)}.")
        base = dict(zip(tasks, args.training_baseline, strict=True))
    var = args.var
    if var is not None and not any(var in t.columns for t in tasks.values()):
        raise ConfigError(f"--var {var!r} is not a column of any table; pass an existing "
                          f"predicted-variance column or leave --var out.")
    if var is None:
        var = next((v for t in tasks.values() if (v := variance_column(t, args.new))), None)
    print(f"ttp-diag figures: {len(tasks)} table(s): {', '.join(tasks)}")
    paths = write_all_figures(tasks, out, scores=scores, ns=parse_ns(args.ns),
                              shapes=tuple(args.shapes), base=args.base, new=args.new, var=var,
                              split=args.split, training_baseline=base,
                              reward_label=args.reward_label, n_boot=args.n_boot,
                              progress=True)
    print(f"wrote {len(paths)} figures to {out.resolve()}")
    return 0
