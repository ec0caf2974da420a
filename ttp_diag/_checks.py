"""Argument checks shared by every public function, so that one bad value gets one message.

Each check returns the cleaned value (a plain ``float`` / ``int`` / ``None``) and raises
:class:`ValueError` (or :class:`TypeError` for a wrong type) naming the argument, the value and
the fix. Analysis layers call these instead of repeating ad-hoc ``if not 0 < ci < 1`` tests, so
``ci=1.5`` or ``ci=0`` is rejected alike by ``bon_curve``, ``calibrate``, ``diagnose``, ...
"""

from __future__ import annotations

import numbers

import numpy as np


def check_ci(ci, *, name: str = "ci", allow_none: bool = True) -> float | None:
    """A confidence level in the open interval (0, 1); ``None`` means "no interval".

    Examples
    --------
    >>> check_ci(0.95)
    0.95
    >>> check_ci(None) is None
    True
    >>> check_ci(95)
    Traceback (most recent call last):
    ...
    ValueError: ci must be a confidence level in (0, 1), e.g. 0.95; got 95 (did you mean 0.95?).
    """
    if ci is None:
        if allow_none:
            return None
        raise ValueError(f"{name} must be a confidence level in (0, 1), e.g. 0.95; got None.")
    if isinstance(ci, (bool, np.bool_)) or not isinstance(ci, numbers.Real):
        raise TypeError(f"{name} must be a confidence level in (0, 1), e.g. 0.95; got "
                        f"{type(ci).__name__} {ci!r}.")
    value = float(ci)
    if not (np.isfinite(value) and 0.0 < value < 1.0):
        hint = f" (did you mean {value / 100:g}?)" if 1.0 < value < 100.0 else ""
        raise ValueError(f"{name} must be a confidence level in (0, 1), e.g. 0.95; got "
                         f"{ci!r}{hint}.")
    return value


def check_n_boot(n_boot, *, name: str = "n_boot", minimum: int = 1) -> int:
    """A whole number of bootstrap replicates, at least ``minimum``.

    Examples
    --------
    >>> check_n_boot(1000)
    1000
    >>> check_n_boot(0)
    Traceback (most recent call last):
    ...
    ValueError: n_boot must be a whole number >= 1 of bootstrap replicates (e.g. 1000); got 0.
    """
    if isinstance(n_boot, (bool, np.bool_)) or not isinstance(n_boot, numbers.Integral):
        if isinstance(n_boot, numbers.Real) and float(n_boot).is_integer():
            n_boot = int(n_boot)
        else:
            raise TypeError(f"{name} must be a whole number >= {minimum} of bootstrap "
                            f"replicates (e.g. 1000); got {type(n_boot).__name__} {n_boot!r}.")
    if n_boot < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum} of bootstrap replicates "
                         f"(e.g. 1000); got {n_boot!r}.")
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
    ValueError: seed must be a non-negative integer or None; got -1.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer or None; got "
                        f"{type(seed).__name__} {seed!r}.")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative integer or None; got {seed!r}.")
    return int(seed)
