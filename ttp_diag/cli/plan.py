"""``ttp-diag plan``: users, queries and candidates an experiment needs (``td.plan_sample``)."""

from __future__ import annotations

import argparse

from ttp_diag.exceptions import ConfigError

_LAW_KEYS = ("alpha", "beta", "rho_plus", "rho_minus", "rho_collapsed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="plan an experiment: power of the package's tests by users, queries, candidates",
        description="Simulate experiments of every design of a grid (users x queries per user "
                    "x candidates per query) from a pilot score table (or from stated law "
                    "parameters) and analyse each with the package's own tests: Best-of-N gain "
                    "over random, the difference of two reward models, the law's prediction, "
                    "collapse and hacking. Prints the power of each design with its Monte "
                    "Carlo interval, the cheapest design reaching the target power and its "
                    "CPU/GPU hours.",
    )
    p.add_argument("table", nargs="?", default=None,
                   help="pilot score table (.parquet or .csv); 'demo' for the embedded demo "
                        "table; leave out to plan from --law-a/--law-b")
    p.add_argument("--a", default=None,
                   help="score column of the model of interest (default score_prob)")
    p.add_argument("--b", default=None,
                   help="score column it is compared with (default score_det; 'none': no "
                        "comparison)")
    p.add_argument("--law-a", default=None, metavar="K=V,...",
                   help="without a table: the law of model a, e.g. "
                        "alpha=0,beta=0.1,rho_plus=0.6,rho_minus=-0.15")
    p.add_argument("--law-b", default=None, metavar="K=V,...", help="the same for model b")
    p.add_argument("--sigma", type=float, default=0.05,
                   help="without a table: within-query reward spread (default %(default)s)")
    p.add_argument("--n", type=int, default=None,
                   help="Best-of-N size (default: the smallest --candidates value)")
    p.add_argument("--users", nargs="+", default=["10,20,40,80,160"],
                   help="users per design (default 10,20,40,80,160)")
    p.add_argument("--queries", nargs="+", default=None,
                   help="queries per user (default: the pilot's median; 10 without a table)")
    p.add_argument("--candidates", nargs="+", default=None,
                   help="candidates per query (default: the pilot's median pool; 16 without)")
    p.add_argument("--questions", nargs="+", default=None,
                   help="subset of gain,difference,prediction,collapse,hacking (default all)")
    p.add_argument("--failure", nargs="+", default=None,
                   help="models whose collapse/hacking are planned (default a and b)")
    p.add_argument("--collapse-rate", type=float, default=None,
                   help="plan collapse for this share of collapsed users instead of the "
                        "pilot's fitted rate")
    p.add_argument("--conservative", type=float, default=None,
                   help="plan gains/differences for the one-sided limit at this level (e.g. "
                        "0.8) of the pilot's estimate instead of the estimate itself")
    p.add_argument("--target", type=float, default=0.8, help="target power (default 0.8)")
    p.add_argument("--test-level", type=float, default=0.05,
                   help="significance level of every test (default 0.05)")
    p.add_argument("--share", type=float, default=0.25,
                   help="margin of the prediction question (default 0.25)")
    p.add_argument("--n-sims", type=int, default=200,
                   help="simulated experiments per design (default 200)")
    p.add_argument("--split", default="val", help="pilot split (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="folder for power.csv, recommended.csv, plan.txt and power.png")
    p.set_defaults(func=run)


def _law(text: str | None, flag: str):
    from ttp_diag.simulate import SimulatedRM

    if text is None:
        return None
    kw = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _LAW_KEYS:
            raise ConfigError(f"{flag} takes K=V pairs with K in {', '.join(_LAW_KEYS)}, e.g. "
                              f"{flag} alpha=0,beta=0.1,rho_plus=0.6; got {item!r}.")
        try:
            kw[key] = float(value)
        except ValueError:
            raise ConfigError(f"{flag}: {key} must be a number; got {value!r}.") from None
    return SimulatedRM(**kw)


def _ints(values, flag: str):
    from ttp_diag.cli._args import split_list

    items = split_list(values)
    if items is None:
        return None
    try:
        return [int(v) for v in items]
    except ValueError:
        raise ConfigError(f"{flag} must be whole numbers, e.g. {flag} 10,20,40; got "
                          f"{' '.join(items)!r}.") from None


def run(args: argparse.Namespace) -> int:
    from ttp_diag.analysis.planner_sample import plan_sample
    from ttp_diag.cli._args import split_list

    settings = {"users": _ints(args.users, "--users"), "n": args.n, "target": args.target,
                "test_level": args.test_level, "share": args.share, "n_sims": args.n_sims,
                "seed": args.seed, "split": args.split, "sigma": args.sigma,
                "collapse_rate": args.collapse_rate, "conservative": args.conservative}
    for key, flag in (("queries", "--queries"), ("candidates", "--candidates")):
        v = _ints(getattr(args, key), flag)
        if v is not None:
            settings[key] = v
    if args.questions is not None:
        settings["questions"] = split_list(args.questions)
    if args.failure is not None:
        settings["failure"] = split_list(args.failure)
    if args.table is None:
        if args.law_a is None:
            raise ConfigError("give a pilot table (or 'demo'), or the law of model a with "
                              "--law-a alpha=...,beta=...,rho_plus=...,rho_minus=...")
        if args.a is not None or args.b is not None:
            raise ConfigError("--a/--b name score columns of a pilot table; without a table "
                              "use --law-a/--law-b.")
        pilot, a, b = None, _law(args.law_a, "--law-a"), _law(args.law_b, "--law-b")
    else:
        if args.law_a is not None or args.law_b is not None:
            raise ConfigError("--law-a/--law-b are for planning without a pilot table; drop "
                              "them or the table.")
        if args.table == "demo":
            from ttp_diag.datasets import load_demo

            pilot = load_demo()
        else:
            from ttp_diag.io import read_table

            pilot = read_table(args.table)
        a = args.a or "score_prob"
        b = None if (args.b or "").lower() == "none" else (args.b or "score_det")
    out = None
    if args.out is not None:
        from ttp_diag._checks import check_output_dir

        out = check_output_dir(args.out, "--out")
    plan = plan_sample(pilot, a, b, **settings)
    print(plan)
    if out is not None:
        from ttp_diag.io import atomic_write_csv, atomic_write_text
        from ttp_diag.plots import savefig
        from ttp_diag.plots.planner import power_figure

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(plan.power_, out / "power.csv", index=False)
        atomic_write_csv(plan.recommended_, out / "recommended.csv", index=False)
        atomic_write_text(out / "plan.txt", str(plan) + "\n")
        savefig(power_figure(plan), out / "power.png")
        print(f"wrote power.csv, recommended.csv, plan.txt and power.png to {out.resolve()}")
    return 0
