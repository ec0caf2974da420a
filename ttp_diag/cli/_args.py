"""Argument parsing shared by the ``ttp-diag`` subcommands."""

from __future__ import annotations

from collections.abc import Iterable


def split_list(values: Iterable[object] | None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; ``None`` stays ``None``."""
    if values is None:
        return None
    out = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
    return out or None


def parse_ns(values: Iterable[object] | None) -> list[int] | None:
    """``["1,5", "10"]`` -> ``[1, 5, 10]`` (sorted, unique, each >= 1); ``None`` stays None."""
    items = split_list(values)
    if items is None:
        return None
    try:
        ns = [int(x) for x in items]
    except ValueError:
        raise ValueError(f"--ns must be whole numbers, e.g. --ns 1 5 10 or --ns 1,5,10; got "
                         f"{' '.join(items)!r}.") from None
    if any(n < 1 for n in ns):
        raise ValueError(f"--ns values must be >= 1; got {ns}.")
    return sorted(set(ns))
