"""The ``ttp-diag`` command line: thin subcommands over the public API.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Heavy imports (torch, the
``gen`` subpackage) happen inside ``func``, never at module import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order shown in ``ttp-diag --help``.
_SUBCOMMANDS = [
    "ttp_diag.cli.analyze",
    "ttp_diag.cli.run", "ttp_diag.cli.evaluate",
    "ttp_diag.cli.demo", "ttp_diag.cli.figures", "ttp_diag.cli.risk",
]


def build_parser() -> argparse.ArgumentParser:
    from ttp_diag import __version__

    parser = argparse.ArgumentParser(
        prog="ttp-diag",
        description="Best-of-N scaling diagnostics for test-time personalization.",
    )
    parser.add_argument("--version", action="version", version=f"ttp-diag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:
        # Errors raised at the API boundary already say what is wrong and how to fix it.
        print(f"ttp-diag: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
