"""``ttp-diag run``: data -> candidates -> labels -> reward models -> scores.

Settings come from a JSON/TOML config file (``--config``), from flags, or both (flags
win). Every stage is cached in the run folder, so the same command resumes a stopped run.
The flags are built from the metadata of ``RunConfig``'s fields
(``ttp_diag.gen.run_config``): a new setting with a ``flag`` is a new flag.

Exit codes: 0 done; 7 bad settings (one line naming the flag); 8 the run folder cannot be
used, e.g. an input file (users file, model files, config) changed since the folder used it:
the message names the stage it invalidates, and ``--refresh`` recomputes from that stage on;
75 the candidate time budget (``--time-budget``) ran out: the folder is consistent, run the
same command again; 130 Ctrl-C.

Examples
--------
::

    ttp-diag run --data users.jsonl.gz --task lamp4 --model smollm2 --n 16 \\
        --users 10 --max-samples 36 --temperature 0.7 --run-dir runs/demo
    ttp-diag run --config run.json --until candidates
    ttp-diag run --config run.json --shard 0/3 --until labels --run-dir runs/x/shard-0
    ttp-diag run --config run.json --engine ray --ray-workers 8 --run-dir runs/x   # local Ray
    ttp-diag run --config run.json --engine ray --address 10.0.0.1:6379 --run-dir runs/x
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ttp_diag.exceptions import ConfigError, TimeBudgetExceeded

_STAGES = ["data", "prompts", "candidates", "labels", "rms", "scores"]


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _list(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def register(subparsers) -> None:
    # RunConfig's module is light (dataclasses only); torch loads inside the stages.
    from ttp_diag.gen.run_config import cli_fields

    p = subparsers.add_parser(
        "run",
        help="run the generation pipeline (needs the gen extra)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="JSON or TOML file with RunConfig settings")
    p.add_argument("--run-dir", required=True, help="run folder (stages are cached here)")
    p.add_argument("--until", default="scores", choices=_STAGES,
                   help="last stage to run (default %(default)s)")
    for f in cli_fields():
        md = f.metadata
        default = "" if f.default is dataclasses.MISSING else f" (default {f.default})"
        kw: dict = {"help": md.get("help") or f"RunConfig.{f.name}{default}",
                    "dest": _dest(md["flag"])}
        parse = md.get("parse")
        if parse == "bool":
            kw["action"] = "store_true"
            kw["default"] = None
        else:
            kw["type"] = {"int": int, "float": float, "list": _list}.get(parse or "", str)
            if md.get("choices"):
                kw["choices"] = list(md["choices"])
        p.add_argument(md["flag"], **kw)
    p.add_argument("--rm-epochs", type=int, help="reward-model training epochs")
    p.add_argument("--tensor-parallel-size", type=int, help="vLLM tensor parallelism")
    p.add_argument("--data-parallel-size", type=int, help="vLLM data parallelism")
    p.add_argument("--no-progress", action="store_true", help="print no progress lines")
    p.add_argument("--refresh", action="store_true",
                   help="an input file (users file, model files, config) changed since the "
                        "run folder used it: recompute from the first stage it feeds "
                        "(default: refuse, naming the stage)")
    p.set_defaults(func=_run)


def build_config(args):
    """Merge a config file and flags into a RunConfig (flags win)."""
    import dataclasses

    from ttp_diag.gen.run_config import RunConfig, cli_fields, load_config

    cfg = load_config(args.config) if args.config else RunConfig()
    changes = {}
    for f in cli_fields():
        v = getattr(args, _dest(f.metadata["flag"]), None)
        if v is not None:
            changes[f.name] = v
    if args.no_progress:
        changes["progress"] = False
    if args.rm_epochs is not None:
        changes["rm_settings"] = {**cfg.rm_settings, "epochs": args.rm_epochs}
    par = {
        k: getattr(args, k)
        for k in ("tensor_parallel_size", "data_parallel_size")
        if getattr(args, k, None) is not None
    }
    if par:
        changes["backend_kwargs"] = {**cfg.backend_kwargs, **par}
    return dataclasses.replace(cfg, **changes)


def _run(args) -> int:
    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        from ttp_diag.gen.pipeline import (
            EXIT_TIME_BUDGET,
            format_summary,
            run_pipeline,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"`ttp-diag run` needs the gen extra: pip install 'ttp-diag[gen]' ({exc})"
        ) from exc
    cfg = build_config(args)
    try:
        summary = run_pipeline(cfg, args.run_dir, until=args.until, refresh=args.refresh,
                               config_file=args.config)
    except TimeBudgetExceeded as exc:
        print(f"ttp-diag run: stopped: {exc} ({args.run_dir})", file=sys.stderr)
        return EXIT_TIME_BUDGET
    print(format_summary(summary))
    print(f"run folder: {args.run_dir}")
    return 0
