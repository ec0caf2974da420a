"""``ttp-diag demo``: the whole diagnosis of one score table, as one HTML report.

A thin command over :func:`ttp_diag.full_report.full_report` (which fits one
:class:`ttp_diag.BestOfN` and draws everything from it). Default table: the embedded demo.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from ttp_diag.cli._args import (
    add_map_flag,
    check_cli_bootstrap,
    check_float_flag,
    parse_ns,
    split_list,
)

#: The paper's pair of reward models compared by the failure-mode analyses; used only when
#: --base/--new are not given and the table has both columns.
PAPER_PAIR = ("score_det", "score_prob")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="full diagnosis of a score table (default: the embedded demo) into an HTML report",
        description="Exact Best-of-N curves with theory overlays, the oracle calibration, a "
                    "diagnostics table for both curve shapes, failure modes, the a-priori "
                    "risk report and the assumption checks, written as one self-contained "
                    "HTML report plus PNGs and CSVs.",
    )
    p.add_argument("--table", default=None,
                   help="score table (.parquet or .csv); default: the embedded demo table")
    add_map_flag(p)
    p.add_argument("--out", default="ttp_diag_out",
                   help="output folder (default %(default)s; when it exists, report files of "
                        "the same name are replaced and a note says so)")
    p.add_argument("--export-table", default=None, metavar="PATH",
                   help="write the score table (default: the embedded demo table) to PATH "
                        "(.parquet or .csv) and stop, e.g. to try `ttp-diag analyze PATH`")
    p.add_argument("--scores", nargs="+", default=None,
                   help="score columns (space or comma separated; default: every score_*)")
    p.add_argument("--ns", nargs="+", default=None,
                   help="candidate counts (default: 1 .. median pool size)")
    p.add_argument("--split", default="val", help="split to analyse (default %(default)s)")
    p.add_argument("--base", default=None,
                   help="score column whose failures are analysed (default: score_det when the "
                        "table has score_det and score_prob, the paper's pair)")
    p.add_argument("--new", default=None,
                   help="score column compared with --base (default: score_prob, see --base)")
    p.add_argument("--var", default=None,
                   help="predicted-variance column of --new (default: var_<rm> of --new when "
                        "the table has it)")
    p.add_argument("--reward-label", default=None,
                   help="y-axis label of the curves (default: 'ROUGE (R1+RL)/2' for the demo "
                        "table, 'Reward' otherwise)")
    p.add_argument("--cost-per-candidate", type=float, default=1.5,
                   help="generation cost per candidate for the compute planner, in seconds "
                        "(default %(default)s: the paper's ~1.5 s)")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap replicates for the confidence bands (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    p.add_argument("--plan-sims", type=int, default=200,
                   help="simulated experiments per design of the planner section (default "
                        "%(default)s; 0 leaves the section out)")
    p.add_argument("--eval-dir", default=None,
                   help="evaluation folder of `ttp-diag evaluate` to summarise and link in the "
                        "report (default: <folder of --table>/eval when it exists; 'none' "
                        "to leave it out)")
    p.set_defaults(func=run, _bands_ci=0.95)


def find_eval_dir(table_path: str | None, eval_dir: str | None) -> Path | None:
    """The evaluation folder the report links to: ``--eval-dir``, else ``eval/`` beside the
    table when ``ttp-diag evaluate`` wrote one there (its ``eval_summary.json`` exists).

    Examples
    --------
    >>> find_eval_dir(None, None) is None and find_eval_dir("x.parquet", "none") is None
    True
    """
    if eval_dir is not None:
        return None if eval_dir.lower() == "none" else Path(eval_dir)
    if table_path is None:
        return None
    cand = Path(table_path).resolve().parent / "eval"
    return cand if (cand / "eval_summary.json").is_file() else None


def export_table(table: Any, path: str, source: str = "score table") -> int:
    """Write ``table`` to ``path`` (Parquet, or CSV by the suffix) atomically; print what next.

    Examples
    --------
    >>> import tempfile, pathlib, ttp_diag as td
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "demo.parquet"
    >>> export_table(td.load_demo(), str(p))  # doctest: +ELLIPSIS
    wrote score table (5332 rows, 10 users) to ...demo.parquet
    try: ttp-diag analyze ...demo.parquet
    0
    """
    from ttp_diag.exceptions import InputFileError
    from ttp_diag.io import atomic_write_csv, atomic_write_parquet

    dest = Path(path)
    suffix = dest.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputFileError(f"--export-table {path!r}: give a file name ending in .parquet "
                             f"or .csv (e.g. --export-table demo.parquet).")
    if dest.is_dir():
        raise InputFileError(f"--export-table {path!r} is a folder; give a file name, e.g. "
                             f"{str(dest / 'demo.parquet')!r}.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    (atomic_write_parquet if suffix == ".parquet" else atomic_write_csv)(table, dest)
    print(f"wrote {source} ({len(table)} rows, {table['user_id'].nunique()} users) to {dest}")
    print(f"try: ttp-diag analyze {dest}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ttp_diag.datasets import demo_or_table, demo_provenance
    from ttp_diag.full_report import full_report

    check_cli_bootstrap(args)  # the bands are 95% intervals: at least 20 draws
    check_float_flag(args.cost_per_candidate, "--cost-per-candidate", low=0, low_open=True,
                     what="a cost in seconds")
    scores = split_list(args.scores, flag="--scores") if args.scores is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, source = demo_or_table(args.table)
    for w in caught:
        print(f"notice: {w.message}", file=sys.stderr)
    if args.map:
        from ttp_diag.mapping import map_columns, parse_map

        table = map_columns(table, **parse_map(args.map))
    for flag, col in (("--var", args.var), ("--base", args.base), ("--new", args.new)):
        if col is not None and col not in table.columns:
            from ttp_diag.exceptions import ScoreTableError

            raise ScoreTableError(f"{flag} {col!r} is not a column of the table (columns: "
                             f"{', '.join(map(str, table.columns))}); pass an existing column "
                             f"or leave {flag} out.")
    if args.export_table:
        return export_table(table, args.export_table, source)
    from ttp_diag._checks import check_output_dir, output_dir_note

    note = output_dir_note(check_output_dir(args.out, "--out"), "--out")
    if note:
        print(note, file=sys.stderr)
    is_demo = args.table is None and source.startswith("embedded demo")
    label = args.reward_label or ("ROUGE (R1+RL)/2" if is_demo else "Reward")
    base, new = args.base, args.new
    if base is None and new is None and all(c in table.columns for c in PAPER_PAIR):
        base, new = PAPER_PAIR
    provenance = demo_provenance() if is_demo else None
    full_report(table, args.out, scores=scores, ns=parse_ns(args.ns),
                split=args.split, base=base, new=new, var=args.var, source=source,
                reward_label=label, cost_per_candidate=args.cost_per_candidate,
                n_boot=args.n_boot, seed=args.seed, provenance=provenance,
                eval_dir=find_eval_dir(args.table, args.eval_dir),
                plan_sims=args.plan_sims, progress=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from ttp_diag.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
