"""Argument checks shared by every public function, so that one bad value gets one message.

Each check returns the cleaned value (a plain ``float`` / ``int`` / ``None``) and raises
:class:`~ttp_diag.exceptions.ConfigError` (a :class:`ValueError`; for a wrong type its
subclass :class:`~ttp_diag.exceptions.ConfigTypeError`, also a :class:`TypeError`) naming
the argument, the value and the fix. Analysis layers call these instead of
repeating ad-hoc ``if not 0 < ci < 1`` tests, so ``ci=1.5`` or ``ci=0`` is rejected alike by
``bon_curve``, ``calibrate``, ``diagnose``, ...

Bootstrap settings have two more rules, the same everywhere ``n_boot`` exists:

* an interval at level ``ci`` needs at least :func:`min_boot_draws` draws (ceil(1 / (1 - ci)),
  and never fewer than :data:`MIN_BOOT_DRAWS`): with fewer, on average less than one draw
  falls outside the interval, so its ends are just the extreme draws and the stated level
  means nothing (one draw gives a zero-width "90% interval");
* :func:`check_boot_memory` estimates the memory of the draws before anything is allocated
  and refuses, with the number, what the machine cannot hold.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .exceptions import ConfigError, ConfigTypeError, InputFileError

#: Fewest bootstrap draws behind any interval (see the module docstring).
MIN_BOOT_DRAWS = 10


def check_ci(ci, *, name: str = "ci", allow_none: bool = True) -> float | None:
    """A confidence level in the open interval (0, 1); ``None`` means "no interval".

    Examples
    --------
    >>> check_ci(0.95)
    0.95
    >>> check_ci(None) is None
    True
    >>> check_ci(95)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: ci must be a confidence level in (0, 1), ... 0.95?).
    """
    if ci is None:
        if allow_none:
            return None
        raise ConfigError(f"{name} must be a confidence level in (0, 1), e.g. 0.95; got None.")
    if isinstance(ci, (bool, np.bool_)) or not isinstance(ci, numbers.Real):
        raise ConfigTypeError(f"{name} must be a confidence level in (0, 1), e.g. 0.95; got "
                        f"{type(ci).__name__} {ci!r}.")
    value = float(ci)
    if not (np.isfinite(value) and 0.0 < value < 1.0):
        hint = f" (did you mean {value / 100:g}?)" if 1.0 < value < 100.0 else ""
        raise ConfigError(f"{name} must be a confidence level in (0, 1), e.g. 0.95; got "
                         f"{ci!r}{hint}.")
    return value


def min_boot_draws(ci: float | None) -> int:
    """The fewest bootstrap draws for an interval at level ``ci``: ceil(1 / (1 - ci)), at
    least :data:`MIN_BOOT_DRAWS` (``ci=None``: no interval, 1).

    Examples
    --------
    >>> min_boot_draws(0.9), min_boot_draws(0.95), min_boot_draws(0.99), min_boot_draws(None)
    (10, 20, 100, 1)
    """
    if ci is None:
        return 1
    return max(MIN_BOOT_DRAWS, math.ceil(round(1.0 / (1.0 - float(ci)), 9)))


def check_n_boot(n_boot, *, name: str = "n_boot", minimum: int = 1,
                 ci: float | None = None) -> int:
    """A whole number of bootstrap replicates, at least ``minimum``; with a level ``ci``, at
    least :func:`min_boot_draws` too, with the reason in the message.

    Examples
    --------
    >>> check_n_boot(1000)
    1000
    >>> check_n_boot(0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: n_boot must be a whole number >= 1 of bootstrap ...; got 0.
    >>> check_n_boot(1, ci=0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: n_boot=1 draws cannot give a 90% interval: it needs ...
    """
    if isinstance(n_boot, (bool, np.bool_)) or not isinstance(n_boot, numbers.Integral):
        if isinstance(n_boot, numbers.Real) and float(n_boot).is_integer():
            n_boot = int(n_boot)
        else:
            raise ConfigTypeError(f"{name} must be a whole number >= {minimum} of bootstrap "
                            f"replicates (e.g. 1000); got {type(n_boot).__name__} {n_boot!r}.")
    if n_boot < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum} of bootstrap replicates "
                         f"(e.g. 1000); got {n_boot!r}.")
    need = min_boot_draws(ci)
    if n_boot < need:
        raise ConfigError(
            f"{name}={n_boot} draws cannot give a {100 * float(ci):g}% interval: it needs at "
            f"least {need} draws (ceil(1/(1-ci)), at least {MIN_BOOT_DRAWS}), else less than "
            f"one draw falls outside it and its ends are just the extreme draws; use "
            f"{name}=1000 or more (or no interval).")
    return int(n_boot)


def check_seed(seed, *, name: str = "seed") -> int | None:
    """A seed for :func:`numpy.random.default_rng`: a non-negative integer or ``None``.

    Examples
    --------
    >>> check_seed(0)
    0
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: seed must be a non-negative integer or None; got -1.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ConfigTypeError(f"{name} must be a non-negative integer or None; got "
                        f"{type(seed).__name__} {seed!r}.")
    if seed < 0:
        raise ConfigError(f"{name} must be a non-negative integer or None; got {seed!r}.")
    return int(seed)


def _memory_limit_bytes() -> int:
    """Half the machine's physical memory (``TTP_DIAG_MAX_BOOT_GIB`` overrides, in GiB)."""
    env = os.environ.get("TTP_DIAG_MAX_BOOT_GIB")
    if env:
        return int(float(env) * 2**30)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def check_boot_memory(n_boot: int, values_per_draw: int, *, name: str = "n_boot",
                      what: str = "bootstrap draws") -> int:
    """Refuse ``n_boot`` draws whose arrays (``values_per_draw`` 8-byte numbers each) would
    not fit in half the machine's memory, before anything is allocated; return ``n_boot``.

    Examples
    --------
    >>> check_boot_memory(1000, 50)
    1000
    >>> check_boot_memory(10**10, 50)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: n_boot=10000000000 bootstrap draws need about 3725.3 GiB ...
    """
    need = int(n_boot) * max(int(values_per_draw), 1) * 8
    limit = _memory_limit_bytes()
    if need > limit:
        per = max(int(values_per_draw), 1) * 8
        raise ConfigError(
            f"{name}={int(n_boot)} {what} need about {need / 2**30:.1f} GiB of memory "
            f"({per} bytes per draw), more than the {limit / 2**30:.1f} GiB allowed (half of "
            f"this machine's memory; TTP_DIAG_MAX_BOOT_GIB overrides); use {name}=1000 to "
            f"10000, or at most {max(limit // per, 1)}.")
    return int(n_boot)


def check_real(value, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, what: str = "a number",
               allow_none: bool = False) -> float | None:
    """A finite real number within [low, high] (open ends with ``low_open``/``high_open``).

    Examples
    --------
    >>> check_real(0.5, "share", low=0, high=1, low_open=True, what="a share of the gap")
    0.5
    >>> check_real(float("nan"), "rho_total", low=-1, high=1, what="a correlation")
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: rho_total must be a correlation in [-1, 1]; got nan.
    """
    if value is None and allow_none:
        return None
    lo_b, hi_b = "(" if low_open else "[", ")" if high_open else "]"
    rng = ("" if low is None and high is None else
           f" in {lo_b}{'-inf' if low is None else f'{low:g}'}, "
           f"{'inf' if high is None else f'{high:g}'}{hi_b}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be {what}{rng}; got {type(value).__name__} "
                              f"{value!r}.")
    v = float(value)
    bad = (not np.isfinite(v)
           or (low is not None and (v <= low if low_open else v < low))
           or (high is not None and (v >= high if high_open else v > high)))
    if bad:
        raise ConfigError(f"{name} must be {what}{rng}; got {value!r}.")
    return v


def check_int(value, name: str, *, minimum: int = 1, what: str = "a whole number",
              allow_none: bool = False) -> int | None:
    """A whole number >= ``minimum`` (floats equal to a whole number are accepted).

    Examples
    --------
    >>> check_int(3.0, "users")
    3
    >>> check_int(0, "users", what="a number of users")
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: users must be a number of users >= 1; got 0.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be {what} >= {minimum}; got {type(value).__name__} "
                        f"{value!r}.")
    if not (np.isfinite(float(value)) and float(value).is_integer()) or value < minimum:
        raise ConfigError(f"{name} must be {what} >= {minimum}; got {value!r}.")
    return int(value)


def check_names(names: str | Iterable[str], name: str, *, what: str = "column",
                allow_empty: bool = False) -> list[str]:
    """A list of distinct names, non-empty unless ``allow_empty`` (a string is one name).

    Examples
    --------
    >>> check_names("score_a", "scores")
    ['score_a']
    >>> check_names(["score_a", "score_a"], "scores")
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: scores names 'score_a' twice; give each column once.
    """
    out = [names] if isinstance(names, str) else list(names)
    if not out and not allow_empty:
        raise ConfigError(f"{name} is empty; give at least one {what}.")
    seen: set = set()
    dup = [n for n in out if n in seen or seen.add(n)]
    if dup:
        twice = ", ".join(repr(d) for d in dict.fromkeys(dup))
        raise ConfigError(f"{name} names {twice} twice; give each {what} once.")
    return out


def check_ns(ns: Sequence | np.ndarray, name: str = "ns") -> list[int]:
    """Candidate counts: a non-empty list of whole numbers >= 1, kept in the given order.

    Examples
    --------
    >>> check_ns([1, 4, 16])
    [1, 4, 16]
    >>> check_ns([])
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.ConfigError: ns is empty; give candidate counts N >= 1, e.g. ns=[1, 4, 16].
    """
    if isinstance(ns, (str, bytes)) or not isinstance(ns, (Sequence, np.ndarray, range)):
        if isinstance(ns, numbers.Real):
            ns = [ns]
        else:
            raise ConfigTypeError(f"{name} must be a list of candidate counts N >= 1, e.g. "
                            f"{name}=[1, 4, 16]; got {type(ns).__name__} {ns!r}.")
    vals = list(np.asarray(ns, dtype=object).ravel())
    if not vals:
        raise ConfigError(f"{name} is empty; give candidate counts N >= 1, e.g. "
                          f"{name}=[1, 4, 16].")
    return [int(check_int(v, f"{name} value", what="a candidate count N")) for v in vals]


def check_output_dir(path: str | os.PathLike, what: str = "the output folder") -> Path:
    """Refuse an output folder that names an existing file, with one line saying so.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "out.txt"; _ = f.write_text("x")
    >>> check_output_dir(f, "--out")
    Traceback (most recent call last):
    ...
    ttp_diag.exceptions.InputFileError: --out '...out.txt' is an existing file, not a folder; ...
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"{what} {str(out)!r} is an existing file, not a folder; choose "
                             f"another path (a folder, created if missing).")
    return out


def output_dir_note(path: str | os.PathLike, what: str = "--out") -> str | None:
    """One line for a command-line user when the output folder exists and holds files: the
    commands that write reports (``demo``, ``risk``) replace files of the same name and keep the
    others. None when the folder is new or empty.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> output_dir_note(d) is None
    True
    >>> _ = (d / "report.html").write_text("x")
    >>> output_dir_note(d, "--out")  # doctest: +ELLIPSIS
    "note: --out '...' exists (1 file): report files of the same name are replaced, ..."
    """
    out = Path(path)
    if not out.is_dir():
        return None
    n = sum(1 for _ in out.iterdir())
    if not n:
        return None
    return (f"note: {what} {str(out)!r} exists ({n} file{'s' if n != 1 else ''}): report files "
            f"of the same name are replaced, other files are kept.")
