"""``ttp-diag sweep``: reward-model ablations over a finished run (the first paper's appendix B).

Each ``--param NAME=V1,V2,...`` adds one point per value: a run folder
``OUT/NAME=V`` that reuses the parent run's data, prompts, candidates and labels and trains
and scores its own reward models. Finished points are skipped, so the same command resumes.
At the end ``OUT/sweep_results.csv`` holds one row per point, reward model and N: the
Best-of-N utility with its bootstrap interval over users and the diagnostics alpha, beta and
rho_eff (``ttp_diag.analysis.sweeps.sweep_table``).

Parameters: ``lora_rank``, ``data_pct`` (percent of each user's training queries),
``loss`` (``mse``, ``mse+contrastive``, ``nll``, ``nll+contrastive``), ``pooling``
(``mean``, ``last``), ``head`` (``mlp``, ``linear``), ``use_lora``, ``contrastive``, or any
constructor setting of the LoRA reward models.

Examples
--------
::

    ttp-diag sweep --run-dir runs/hp6 --param lora_rank=2,4,8,16 --out runs/hp6_sweep
    ttp-diag sweep --run-dir runs/hp6 --param data_pct=10,25,50,100 \\
        --param pooling=mean,last --param loss=mse,nll,nll+contrastive --out runs/hp6_sweep
"""

from __future__ import annotations

import argparse

from ttp_diag.exceptions import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="reward-model ablations over a finished run, one run folder per point "
             "(needs the gen extra)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-dir", required=True,
                   help="the parent `ttp-diag run` folder (labels done)")
    p.add_argument("--param", action="append", required=True, metavar="NAME=V1,V2",
                   help="a swept setting and its values; repeat for several parameters")
    p.add_argument("--out", required=True, help="sweep folder (one run folder per point)")
    p.add_argument("--rm-kinds", default="prob",
                   help="reward models each point trains (default prob; `loss` picks its own)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--ci", type=float, default=0.95, help="bootstrap interval level")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap resamples over users (default %(default)s)")
    p.add_argument("--split", default="val", help="split the curves are computed on")
    p.add_argument("--no-progress", action="store_true", help="print no progress lines")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import logging
    import os
    from pathlib import Path

    from ttp_diag._checks import check_int
    from ttp_diag.cli._args import check_cli_bootstrap

    # checked before the points are trained (hours), not when the table is made at the end
    check_cli_bootstrap(args)
    check_int(args.threads, "--threads", what="a number of threads", allow_none=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        from ttp_diag.gen.sweep import run_sweep
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"`ttp-diag sweep` needs the gen extra: pip install 'ttp-diag[gen]' ({exc})"
        ) from exc
    from ttp_diag.analysis.sweeps import sweep_table
    from ttp_diag.io import atomic_write

    kinds = [k.strip() for k in args.rm_kinds.split(",") if k.strip()]
    over = {"progress": not args.no_progress}
    if args.threads:
        over["num_threads"] = args.threads
    run_sweep(args.run_dir, args.out, args.param, rm_kinds=kinds, **over)
    table = sweep_table(args.out, split=args.split, ci=args.ci, n_boot=args.n_boot)
    path = atomic_write(Path(args.out) / "sweep_results.csv",
                        lambda p: table.to_csv(p, index=False))
    top = table[table["n"] == table["n"].max()]
    for r in top.itertuples():
        if r.rm in ("random", "oracle"):
            continue
        point = f"{r.param}={r.value}"
        print(f"{point:<24} {r.rm:<12} N={r.n:<3} utility {r.utility:.4f} "
              f"[{r.ci_low:.4f}, {r.ci_high:.4f}]  alpha {r.alpha:.2f} beta {r.beta:.2f} "
              f"rho_eff {r.rho_eff:.2f}")
    for ref in ("random", "oracle"):
        r = top[top["rm"] == ref].head(1)
        if len(r):
            print(f"{ref:<37} N={int(r['n'].iloc[0]):<3} utility {r['utility'].iloc[0]:.4f}")
    if table.attrs.get("missing"):
        print(f"not finished: {', '.join(table.attrs['missing'])}")
    print(f"results: {path}")
    return 0
