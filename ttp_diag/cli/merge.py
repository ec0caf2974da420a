"""``ttp-diag merge``: join the run folders of a sharded run (``ttp-diag run --shard I/K``).

Checks that the shards agree on every setting but ``--shard``, that they are exactly
shards 0..K-1 of one K, and that their shared stages (examples, prompts) are identical;
then concatenates their candidate, label and score tables in the unsharded run's order
into a new run folder, which ``ttp-diag run --run-dir OUT`` continues (reward-model
training is one job). See ``ttp_diag.gen.shards`` for the layout.

Examples
--------
::

    ttp-diag merge runs/x/shard-0 runs/x/shard-1 runs/x/shard-2 --out runs/x/merged
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "merge",
        help="merge the run folders of a sharded `ttp-diag run`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shard_dirs", nargs="+", help="the shard run folders")
    p.add_argument("--out", required=True, help="new run folder for the merged run")
    p.set_defaults(func=_merge)


def _merge(args) -> int:
    from ttp_diag.gen.shards import merge_runs

    res = merge_runs(args.shard_dirs, args.out)
    tables = ", ".join(f"{k.removesuffix('.parquet')}: {v} rows" for k, v in res["tables"].items())
    print(f"merged {res['shards']} shards into {res['out_dir']} ({tables})")
    return 0
