"""``ttp-diag evaluate``: does a reward model help generation? Every method on the same users.

Runs zero-shot, ICL (random / retrieved demonstrations), ARGS reward-guided decoding,
Best-of-N with reward models and LLM judges, and per-user LoRA fine-tuning on the
adaptation users of a finished ``ttp-diag run`` folder, and writes the tidy results, the
second paper's Tables 2/4/5/6 and a comparison figure under ``<run-dir>/eval/``. Every
stage is cached: the same command resumes a stopped evaluation.

Examples
--------
::

    ttp-diag evaluate --run-dir runs/hp6 \\
        --methods zero_shot,icl,icl_rag,args_global,args_prob,bon_prob,judge_pairwise,lora
    ttp-diag evaluate --run-dir runs/hp6 --methods icl,icl_rag --icl-k 0,1,2,4,8
    # a zoo family by the adaptation protocol: trained on the training users, adapted to each
    # adaptation user from its support pairs, then used like the run's reward models
    ttp-diag evaluate --run-dir runs/hp6 --adapt-models mpu_avg,lore \\
        --methods zero_shot,bon_mpu_avg,bon_lore,bon_prob --set lore.epochs=100
"""

from __future__ import annotations

import argparse

from ttp_diag.cli._args import add_set_flag


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="compare personalization methods on generation quality (needs the gen extra)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-dir", required=True, help="a finished `ttp-diag run` folder")
    p.add_argument("--methods", default="zero_shot,icl,icl_rag",
                   help="comma-separated: zero_shot, icl, icl_rag, args_<rm>, "
                        "args_<rm>_sampled, bon_<rm>, bon_random, bon_oracle, "
                        "judge_pointwise, judge_pairwise, lora, lora_bon_<rm>")
    p.add_argument("--icl-k", type=_ints, default=[4],
                   help="demonstrations per prompt; several values run one method each")
    p.add_argument("--lambda-grid", type=_floats, default=[0.0, 0.5, 1.0, 2.0, 5.0, 10.0],
                   help="ARGS reward weights tried on training users (each >= 0)")
    p.add_argument("--top-k", type=int, default=10, help="ARGS candidate tokens per step")
    p.add_argument("--args-reward-scale", choices=("query_sd", "raw"), default="query_sd",
                   help="ARGS reward divided by the RM's median within-query score sd "
                        "(default) or raw (the paper's)")
    p.add_argument("--train-users", type=float, default=0.34,
                   help="training users: a share in (0, 1) or a count")
    p.add_argument("--max-support", type=int, default=32,
                   help="latest support items kept per user")
    p.add_argument("--min-gap", type=float, default=0.1,
                   help="minimum reward gap of candidate pairs")
    p.add_argument("--lora-epochs", type=int, default=3,
                   help="epochs of the per-user LoRA fine-tuning (default %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="new tokens per generated answer (default: the task's)")
    p.add_argument("--adapt-models", default=None, metavar="NAMES",
                   help="comma-separated reward-model families (e.g. mpu_avg,lore) fitted on "
                        "the training users' pairs and adapted to each adaptation user from "
                        "its support pairs (shared parameters frozen); each adds the methods "
                        "bon_<name>, args_<name>, lora_bon_<name>")
    add_set_flag(p, "an --adapt-models family", "lore.epochs=100")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap resamples over users (default %(default)s)")
    p.add_argument("--ci", type=float, default=0.95,
                   help="confidence level of the intervals (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--no-progress", action="store_true", help="print no progress lines")
    p.set_defaults(func=_run)


def _check_args(args) -> None:
    """The flags' values, before any model is loaded (one line naming the flag)."""
    from ttp_diag._checks import check_int, check_real
    from ttp_diag.cli._args import check_cli_bootstrap

    check_cli_bootstrap(args)
    for flag, v, low in (("--threads", args.threads, 1), ("--top-k", args.top_k, 1),
                         ("--max-support", args.max_support, 1),
                         ("--lora-epochs", args.lora_epochs, 1),
                         ("--max-new-tokens", args.max_new_tokens, 1)):
        check_int(v, flag, minimum=low, allow_none=True)
    for k in args.icl_k:
        check_int(k, "--icl-k", minimum=0, what="a number of demonstrations")
    for lam in args.lambda_grid:
        check_real(lam, "--lambda-grid", low=0, what="a reward weight")
    if not args.lambda_grid:
        check_real(None, "--lambda-grid", what="a list of reward weights, e.g. 0,1,2")
    check_real(args.train_users, "--train-users", low=0, low_open=True,
               what="a share in (0, 1) or a count of users")
    check_real(args.min_gap, "--min-gap", low=0, what="a reward gap")


def write_eval_verdict(summary: dict) -> None:
    """Print the evaluation's verdict and write it as ``eval/verdict.md``
    (:func:`ttp_diag.verdict.eval_verdict` on ``summary_long`` and ``rho_eff_vs_accuracy``)."""
    from pathlib import Path

    from ttp_diag.full_report import evaluation_verdict
    from ttp_diag.io import atomic_write_text
    from ttp_diag.verdict import verdict_markdown

    out = summary["outputs"]
    eval_dir = Path(out["summary_long"]).parent.parent
    v = evaluation_verdict(eval_dir)
    print(v, flush=True)
    path = eval_dir / "verdict.md"
    atomic_write_text(path, verdict_markdown(v, "Evaluation verdict"))
    out["verdict"] = str(path)


def _run(args) -> int:
    from ttp_diag.cli._args import parse_sets, split_list
    from ttp_diag.gen.evaluation.results import run_evaluation
    from ttp_diag.gen.evaluation.runner import EvalConfig

    _check_args(args)
    adapt = split_list([args.adapt_models], flag="--adapt-models") if args.adapt_models else []
    adapt_settings = parse_sets(args.set, adapt)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    n_tr = args.train_users
    cfg = EvalConfig(methods=args.methods.split(","), icl_ks=args.icl_k,
                     lambda_grid=args.lambda_grid, args_top_k=args.top_k,
                     args_reward_scale=args.args_reward_scale,
                     n_train_users=int(n_tr) if n_tr >= 1 else n_tr,
                     max_support=args.max_support, min_gap=args.min_gap,
                     lora_epochs=args.lora_epochs, max_new_tokens=args.max_new_tokens,
                     n_boot=args.n_boot, ci=args.ci, seed=args.seed,
                     adapt_models=adapt, adapt_settings=adapt_settings,
                     progress=not args.no_progress)
    summary = run_evaluation(args.run_dir, cfg)
    write_eval_verdict(summary)
    print(f"evaluated {len(summary['methods'])} methods on {len(summary['adapt_users'])} "
          f"adaptation users in {summary['seconds']} s")
    for name, path in summary["outputs"].items():
        print(f"  {name}: {path}")
    return 0
