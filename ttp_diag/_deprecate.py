"""Deprecated argument names (kept for one release, see ``docs/glossary.md``).

Examples
--------
>>> import warnings
>>> @renamed_kwargs(mean="score")
... def f(score=None):
...     return score
>>> with warnings.catch_warnings(record=True) as w:
...     warnings.simplefilter("always")
...     f(mean="score_prob"), w[0].category.__name__
('score_prob', 'DeprecationWarning')
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["renamed_kwargs"]


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept each old keyword (``old="new"``) with a DeprecationWarning, passing it on as the
    new one; giving both is an error."""

    def deco(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old}= (deprecated) and "
                                        f"{new}=; pass only {new}=.")
                    warnings.warn(f"{func.__name__}({old}=...) is deprecated; use {new}= "
                                  f"(see docs/glossary.md).", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco
