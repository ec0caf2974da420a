"""Argument parsing shared by the ``ttp-diag`` subcommands.

The checks themselves live in :mod:`ttp_diag._checks` (one home); the helpers here apply them
to flags, naming the flag (``--n-boot``, not ``n_boot``) in the message.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable

from ttp_diag._checks import check_ci, check_n_boot, check_names, check_seed
from ttp_diag.exceptions import ConfigError


def split_list(values: Iterable[object] | None, *, flag: str | None = None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; ``None`` stays ``None``.

    With ``flag`` (the flag was given), an empty list (``--scores ,``) and a repeated name
    (``--scores a,a``) are refused naming the flag.

    Examples
    --------
    >>> split_list(["a,b", "c"])
    ['a', 'b', 'c']
    >>> split_list([","], flag="--scores")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: --scores is empty (got ','); give at least one name, ...
    """
    if values is None:
        return None
    values = list(values)
    out = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
    if flag is not None:
        if not out:
            raise ConfigError(f"{flag} is empty (got {' '.join(map(str, values))!r}); give at "
                              f"least one name, e.g. {flag} a,b.")
        return check_names(out, flag, what="name")
    return out or None


def parse_ns(values: Iterable[object] | None, *, flag: str = "--ns") -> list[int] | None:
    """``["1,5", "10"]`` -> ``[1, 5, 10]`` (sorted, unique, each >= 1); ``None`` stays None.

    A flag given with no number in it (``--ns ,``) is refused, not read as "the default".

    Examples
    --------
    >>> parse_ns(["10,1", "5"])
    [1, 5, 10]
    >>> parse_ns([","])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: --ns is empty (got ','); give candidate counts, ...
    """
    if values is None:
        return None
    values = list(values)
    items = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
    if not items:
        raise ConfigError(f"{flag} is empty (got {' '.join(map(str, values))!r}); give "
                          f"candidate counts, e.g. {flag} 1,5,10.")
    try:
        ns = [int(x) for x in items]
    except ValueError:
        raise ConfigError(f"{flag} must be whole numbers, e.g. {flag} 1 5 10 or {flag} 1,5,10; "
                          f"got {' '.join(items)!r}.") from None
    if any(n < 1 for n in ns):
        raise ConfigError(f"{flag} values must be >= 1 (N is a number of candidates); got {ns}.")
    return sorted(set(ns))


def check_cli_bootstrap(args: argparse.Namespace) -> None:
    """Check ``--n-boot``, ``--ci`` and ``--seed`` (where the subcommand has them) at the
    boundary, with the same rules as the API (:func:`ttp_diag._checks.check_n_boot`); an
    interval at the default level 0.95 counts when the subcommand draws bands without ``--ci``.
    """
    ci = check_ci(getattr(args, "ci", None), name="--ci")
    if ci is None and getattr(args, "_bands_ci", None) is not None:
        ci = args._bands_ci
    if getattr(args, "n_boot", None) is not None:
        args.n_boot = check_n_boot(args.n_boot, name="--n-boot", ci=ci)
    if getattr(args, "seed", None) is not None:
        args.seed = check_seed(args.seed, name="--seed")


def check_float_flag(value: float | None, flag: str, **kw) -> float | None:
    """A finite number for ``flag`` (argparse's ``float`` also takes nan and inf); see
    :func:`ttp_diag._checks.check_real` for the bounds."""
    from ttp_diag._checks import check_real

    return check_real(value, flag, allow_none=True, **kw)


def add_map_flag(p: argparse.ArgumentParser) -> None:
    """The ``--map FIELD=COLUMN ...`` flag of the commands that read a score table (analyze,
    demo, risk): read with :func:`ttp_diag.mapping.parse_map` and ``read_table(columns=...)``."""
    p.add_argument("--map", nargs="+", default=None, metavar="FIELD=COLUMN",
                   help="read a table in another layout: user=COL (or const:NAME, "
                        "prefix:COL:SEP), query=COL, candidate=COL, reward=COL, split=COL, "
                        "text=COL, scores.NAME=COL, var.NAME=COL; list columns (one row per "
                        "prompt) become one row per candidate (docs: bring your own table)")


def add_set_flag(p: argparse.ArgumentParser, of: str, example: str) -> None:
    """The ``--set MODEL.PARAM=VALUE`` flag of ``zoo`` and ``evaluate`` (read with
    :func:`parse_sets`); ``of`` names whose settings it sets, ``example`` shows one."""
    p.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                   help=f"a setting of {of}, e.g. --set {example} (repeatable; values parsed "
                        "as JSON, else kept as strings)")


def parse_sets(items, models) -> dict[str, dict]:
    """``["genarm.beta=2.0"]`` -> ``{"genarm": {"beta": 2.0}}``, checked against the registry.

    The ``--set MODEL.PARAM=VALUE`` flag of ``ttp-diag zoo`` and ``ttp-diag evaluate``;
    VALUE is read as JSON (``2.0``, ``true``, ``[1, 2]``), else as text; ``models`` are the
    models the command runs.

    Examples
    --------
    >>> parse_sets(["genarm.beta=2.0", "lore.n_bases=3"], ["genarm", "lore"])
    {'genarm': {'beta': 2.0}, 'lore': {'n_bases': 3}}
    """
    from ttp_diag.gen.reward_models import REGISTRY

    out: dict[str, dict] = {}
    for item in items:
        key, sep, val = str(item).partition("=")
        name, dot, param = key.partition(".")
        if not sep or not dot or name not in REGISTRY:
            raise ConfigError(f"--set {item!r}: expected MODEL.PARAM=VALUE with MODEL one of "
                              f"{sorted(REGISTRY)}, e.g. --set genarm.beta=2.0")
        if param not in REGISTRY[name]._param_names():
            raise ConfigError(f"--set {item!r}: {name} has no setting {param!r}; valid: "
                              f"{sorted(REGISTRY[name]._param_names())}")
        if name not in models:
            raise ConfigError(f"--set {item!r}: {name} is not among the models this command "
                              f"runs ({list(models)})")
        try:
            v = json.loads(val)
        except json.JSONDecodeError:
            v = val
        out.setdefault(name, {})[param] = v
    return out
