"""``ttp-diag run``: data -> candidates -> labels -> reward models -> scores.

Settings come from a JSON/TOML config file (``--config``), from flags, or both (flags
win). Every stage is cached in the run folder, so the same command resumes a stopped run.

Examples
--------
::

    ttp-diag run --data users.jsonl.gz --task lamp4 --model smollm2 --n 16 \\
        --users 10 --max-samples 36 --temperature 0.7 --run-dir runs/demo
    ttp-diag run --config run.json --until candidates
"""

from __future__ import annotations

import argparse

# flag -> RunConfig field
_FLAGS = {
    "task": "task",
    "data": "data_path",
    "data_format": "data_format",
    "outputs": "outputs_path",
    "users": "top_k_users",
    "max_samples": "max_samples_per_user",
    "val_fraction": "val_fraction",
    "min_items": "min_items",
    "retrieval_k": "retrieval_k",
    "policy": "policy",
    "backend": "backend",
    "model": "model",
    "device": "device",
    "dtype": "dtype",
    "n": "n",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_new_tokens": "max_new_tokens",
    "batch_size": "batch_size",
    "seed": "seed",
    "order": "order",
    "time_budget": "candidate_time_budget_s",
    "threads": "num_threads",
    "rm_backbone": "rm_backbone",
    "label": "label",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the generation pipeline (needs the gen extra)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="JSON or TOML file with RunConfig settings")
    p.add_argument("--run-dir", required=True, help="run folder (stages are cached here)")
    p.add_argument(
        "--until",
        default="scores",
        choices=["data", "prompts", "candidates", "labels", "rms", "scores"],
    )
    p.add_argument(
        "--task", help="lamp4, lamp5, longlamp_abstract, longlamp_review, longlamp_topic"
    )
    p.add_argument("--data", help="input file (JSONL users, LaMP questions or a LongLaMP export)")
    p.add_argument("--data-format", choices=["jsonl", "lamp", "longlamp"])
    p.add_argument("--outputs", help="LaMP outputs file (with --data-format lamp)")
    p.add_argument("--users", type=int, help="top-k users by number of items")
    p.add_argument("--max-samples", type=int, help="latest items kept per user")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--min-items", type=int)
    p.add_argument("--retrieval-k", type=int)
    p.add_argument("--policy", choices=["rag", "persona", "persona_rag"])
    p.add_argument("--backend", choices=["transformers", "vllm", "tiny"])
    p.add_argument("--model", help="local model directory, .gguf file, or 'smollm2'")
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--n", type=int, help="samples per query")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--batch-size", type=int, help="prompts per backend call")
    p.add_argument("--seed", type=int)
    p.add_argument("--order", choices=["given", "val_first"])
    p.add_argument(
        "--time-budget", type=float, help="seconds of candidate generation before stopping"
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="continue with the queries that have candidates",
    )
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--label", choices=["rouge", "minilm"], help="the reward label (default rouge)")
    p.add_argument("--extra-labels", help="comma-separated extra reward columns, e.g. minilm")
    p.add_argument("--rm-kinds", help="comma-separated subset of global,det,prob")
    p.add_argument("--rm-backbone", help="reward-model backbone directory (default MiniLM)")
    p.add_argument("--rm-epochs", type=int)
    p.add_argument("--tensor-parallel-size", type=int, help="vLLM tensor parallelism")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def build_config(args):
    """Merge a config file and flags into a RunConfig (flags win)."""
    import dataclasses

    from ttp_diag.gen.pipeline import RunConfig, load_config

    cfg = load_config(args.config) if args.config else RunConfig()
    changes = {}
    for flag, fieldname in _FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            changes[fieldname] = v
    if args.allow_partial:
        changes["allow_partial"] = True
    if args.no_progress:
        changes["progress"] = False
    if args.extra_labels:
        changes["extra_labels"] = [k.strip() for k in args.extra_labels.split(",") if k.strip()]
    if args.rm_kinds:
        changes["rm_kinds"] = [k.strip() for k in args.rm_kinds.split(",") if k.strip()]
    if args.rm_epochs is not None:
        changes["rm_settings"] = {**cfg.rm_settings, "epochs": args.rm_epochs}
    if args.tensor_parallel_size is not None:
        changes["backend_kwargs"] = {
            **cfg.backend_kwargs,
            "tensor_parallel_size": args.tensor_parallel_size,
        }
    return dataclasses.replace(cfg, **changes)


def _run(args) -> int:
    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        from ttp_diag.gen.pipeline import format_summary, run_pipeline
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError(
            f"`ttp-diag run` needs the gen extra: pip install 'ttp-diag[gen]' ({exc})"
        ) from exc
    cfg = build_config(args)
    summary = run_pipeline(cfg, args.run_dir, until=args.until)
    print(format_summary(summary))
    print(f"run folder: {args.run_dir}")
    return 0
