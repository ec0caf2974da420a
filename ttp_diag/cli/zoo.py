"""``ttp-diag zoo``: train, adapt and evaluate the reward-model zoo by the second paper's
protocol (section 3.1) on a score table (default: the demo's 10 HuffPost users).

Training users' pairs train each model; each adaptation user is then adapted from their
support pairs only (shared parameters frozen) and evaluated on their held-out query pairs;
training users are evaluated on pairs from their val-split pools. Prompt (the article) and
response (the headline) are separate all the way through. Writes ``zoo_results.csv``,
``zoo_table.md`` (the table of ``docs/zoo.md``), ``verdict.md`` (the verdict, also printed
first: :func:`ttp_diag.verdict.zoo_verdict`), ``settings.json`` and one folder per model;
rerunning the same command resumes (finished models are reused). See
:mod:`ttp_diag.gen.reward_models.zoo`.

Examples
--------
::

    ttp-diag zoo --out runs/zoo
    ttp-diag zoo --out runs/zoo_lm --models genarm --set genarm.max_train_pairs=200
"""

from __future__ import annotations

import argparse

from ttp_diag.cli._args import add_set_flag


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "zoo",
        help="reward-model zoo by the adaptation protocol: held-out accuracy, alpha, beta, "
             "rho_eff, Best-of-N gain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--table", default=None,
                   help="score table (.parquet/.csv) with user_id, query_id, cand_id, split, "
                        "reward, text and body (the query input; looked up in the HuffPost set "
                        "by query_id when absent). Default: the demo table")
    p.add_argument("--out", default="runs/zoo", help="output folder (resumable)")
    p.add_argument("--models", default=None,
                   help="comma-separated registered names (default: the whole zoo)")
    p.add_argument("--task", default="lamp4")
    p.add_argument("--adapt-frac", type=float, default=0.3,
                   help="share of users who are adaptation users (default 0.3)")
    p.add_argument("--support-frac", type=float, default=0.5,
                   help="share of an adaptation user's queries in the support set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="leave out the reference rows of the table's own score_* columns")
    add_set_flag(p, "a --models family", "genarm.max_train_pairs=200")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import pandas as pd

    import ttp_diag as td
    from ttp_diag.cli._args import parse_sets, split_list
    from ttp_diag.gen.reward_models.zoo import ZOO, run_zoo

    models = split_list([args.models]) if args.models else list(ZOO)
    settings = parse_sets(args.set, models)
    import torch

    torch.set_num_threads(int(args.threads))
    if args.table is None:
        table = td.load_demo()
    elif str(args.table).endswith(".csv"):
        table = pd.read_csv(args.table)
    else:
        table = pd.read_parquet(args.table)
    ref = [c for c in table.columns if c.startswith("score_")] if args.reference else []
    res = run_zoo(table, args.out, models=models, settings=settings, task=args.task,
                  adapt_frac=args.adapt_frac, support_frac=args.support_frac, seed=args.seed,
                  reference_cols=ref, log=lambda s: print(s, flush=True))
    from pathlib import Path

    from ttp_diag.io import atomic_write_text
    from ttp_diag.verdict import verdict_markdown, zoo_verdict

    v = zoo_verdict(res)
    print(v, flush=True)
    atomic_write_text(Path(args.out) / "verdict.md", verdict_markdown(v, "Zoo verdict"))
    print(f"{len(res)} model(s): {args.out}/zoo_results.csv, {args.out}/zoo_table.md, "
          f"{args.out}/verdict.md")
    return 0
