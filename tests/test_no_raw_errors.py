"""Every error a user can trigger is a package error (ttp_diag.exceptions), not a raw one.

A ``raise ValueError(...)`` / ``KeyError`` / ``TypeError`` in the package source fails this
test unless its line carries ``# internal`` (an invariant a user cannot reach). The scanner
is itself checked on planted lines, so the test cannot pass vacuously.
"""

import re
from pathlib import Path

import ttp_diag

PACKAGE = Path(ttp_diag.__file__).parent
RAW = re.compile(r"\braise\s+(ValueError|KeyError|TypeError)\b")


def raw_raises(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each raw raise not marked ``# internal``."""
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)
            if RAW.search(line.split("#", 1)[0]) and "# internal" not in line]


def test_scanner_finds_planted_raw_raises():
    text = ("def f(x):\n"
            "    if x:\n"
            "        raise ValueError(f'x={x}')\n"
            "    raise KeyError('k')  # internal\n"
            "    raise TypeError\n"
            "    raise ConfigError('fine')  # mentions raise ValueError( in a comment\n"
            "    raise ConfigTypeError('fine')\n")
    assert raw_raises(text) == [(3, "raise ValueError(f'x={x}')"), (5, "raise TypeError")]


def test_package_raises_only_package_errors():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50  # the whole package is scanned, gen/ included
    found = [f"{path.relative_to(PACKAGE.parent)}:{i}: {line}"
             for path in files for i, line in raw_raises(path.read_text(encoding="utf-8"))]
    assert not found, ("raise a class from ttp_diag/exceptions.py (ConfigError, ConfigTypeError, "
                       "ScoreTableError, ...) or mark an unreachable invariant '# internal':\n"
                       + "\n".join(found))
