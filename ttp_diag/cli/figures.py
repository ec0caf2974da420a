"""``ttp-diag figures``: every kind of paper figure from one or more score tables."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
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
                   help="candidate counts (default: 1 .. smallest pool)")
    p.add_argument("--shapes", nargs="+", default=["sqrt_log", "gaussian"],
                   choices=["sqrt_log", "gaussian", "kl"], help="curve shapes to draw")
    p.add_argument("--split", default="val", help="split to analyse (default %(default)s)")
    p.add_argument("--training-baseline", nargs="+", type=float, default=None,
                   help="utility of a training-based baseline, one per table (dotted line)")
    p.add_argument("--reward-label", default="Reward", help="y-axis label of the curves")
    p.set_defaults(func=run)


def load_tasks(paths, names=None) -> dict:
    """``{task name: table}`` from file paths (names default to the file stems)."""
    from ttp_diag.io import read_table

    if names is not None and len(names) != len(paths):
        raise ValueError(f"--names has {len(names)} name(s) for {len(paths)} table(s); give "
                         f"one name per table.")
    names = names or [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be distinct, got {names}; pass --names.")
    return {n: read_table(p) for n, p in zip(names, paths)}


def run(args) -> int:
    from ttp_diag.cli._args import parse_ns, split_list
    from ttp_diag.plots.figures import write_all_figures

    tasks = load_tasks(args.tables, args.names)
    base = None
    if args.training_baseline is not None:
        if len(args.training_baseline) != len(tasks):
            raise ValueError(f"--training-baseline needs one value per table ({len(tasks)}); "
                             f"got {len(args.training_baseline)}.")
        base = dict(zip(tasks, args.training_baseline))
    print(f"ttp-diag figures: {len(tasks)} table(s): {', '.join(tasks)}")
    paths = write_all_figures(tasks, args.out, scores=split_list(args.scores),
                              ns=parse_ns(args.ns), shapes=tuple(args.shapes),
                              split=args.split, training_baseline=base,
                              reward_label=args.reward_label)
    print(f"wrote {len(paths)} figures to {Path(args.out).resolve()}")
    return 0
