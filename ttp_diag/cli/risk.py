"""``ttp-diag risk``: a-priori collapse and hacking risk from labels, and realised rates."""

from __future__ import annotations

import argparse

from ttp_diag.cli._args import add_map_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "risk",
        help="a-priori collapse/hacking risk from training labels (Tables A13, A14)",
        description="Per-user label std and per-query candidate-quality spread from the "
                    "training labels alone (no reward model needed), split into low/high "
                    "halves; with score columns, the realised collapse and hacking rates of "
                    "each half. Writes CSVs, risk_report.md and a self-contained "
                    "risk_report.html.",
    )
    p.add_argument("table", help="score table (.parquet, .csv or .jsonl)")
    add_map_flag(p)
    p.add_argument("--out", required=True,
                   help="output folder (created; when it exists, report files of the same name "
                        "are replaced and a note says so, as with `ttp-diag demo`)")
    p.add_argument("--scores", nargs="+", default=None,
                   help="score columns to evaluate (default: every score_*; 'none' for the "
                        "label-only part)")
    p.add_argument("--label-split", default="train",
                   help="split whose labels define the user halves (default %(default)s)")
    p.add_argument("--eval-split", default="val",
                   help="split whose rho_u / rho_q are evaluated (default %(default)s)")
    p.add_argument("--collapse-threshold", type=float, default=0.1,
                   help="rho_u below which a user counts as collapsed (the paper's tau_c; "
                        "default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ttp_diag._checks import check_output_dir, output_dir_note
    from ttp_diag.analysis import risk_report
    from ttp_diag.cli._args import split_list
    from ttp_diag.io import read_table

    out = check_output_dir(args.out, "--out")
    note = output_dir_note(out, "--out")
    if note:
        print(note, file=sys.stderr)
    from ttp_diag.mapping import parse_map

    table = read_table(args.table, columns=parse_map(args.map))
    scores = split_list(args.scores)
    if scores is not None and [s.lower() for s in scores] == ["none"]:
        scores = []
    rep = risk_report(table, scores, label_split=args.label_split, eval_split=args.eval_split,
                      collapse_threshold=args.collapse_threshold)
    images = []
    if len(rep.collapse_table):
        from ttp_diag.plots.figures import risk_figure
        from ttp_diag.report import figure_png_bytes

        images.append(("Collapse and hacking rates by half (Tables A13/A14)",
                       figure_png_bytes(risk_figure(rep))))
    files = rep.save(out, images=images)
    print(rep)
    print(f"wrote {len(files)} files to {out.resolve()}")
    return 0
