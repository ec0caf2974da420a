"""``ttp-diag lora-policy``: Best-of-N candidates from a per-user LoRA policy (Fig. A2).

Fine-tunes the run's policy with LoRA on each user's train items, samples ``n`` candidates per
val query, labels them like the run and scores them with the run's trained reward models; one
file per user, resumable. ``paper_figures/make_all.py --lora-run OUT`` draws Fig. A2 from it.
See :mod:`ttp_diag.gen.lora_policy`.

Examples
--------
::

    ttp-diag lora-policy runs/parent runs/lora --epochs 2
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lora-policy",
        help="candidates from a per-user LoRA policy, scored by a run's reward models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", help="a finished `ttp-diag run` folder (reward models trained)")
    p.add_argument("out", help="output folder (scores.parquet, users/)")
    p.add_argument("--epochs", type=int, default=2,
                   help="LoRA training epochs per user (default %(default)s)")
    p.add_argument("--lr", type=float, default=5e-4,
                   help="LoRA learning rate (default %(default)s)")
    p.add_argument("--r", type=int, default=8, help="LoRA rank")
    p.add_argument("--n", type=int, default=None, help="candidates per query (default: run's)")
    p.add_argument("--max-support", type=int, default=32,
                   help="most training items per user (default %(default)s)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import os
    from pathlib import Path

    from ttp_diag.gen.lora_policy import lora_policy_run

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t = lora_policy_run(args.run_dir, args.out, epochs=args.epochs, lr=args.lr, r=args.r,
                        n=args.n, max_support=args.max_support)
    print(f"{len(t)} candidates of {t['query_id'].nunique()} queries: "
          f"{Path(args.out) / 'scores.parquet'}")
    return 0
