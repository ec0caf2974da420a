"""The one result convention (lifelines/pingouin style) and its tidy summary frame.

Every result object has ``summary`` (a tidy :class:`pandas.DataFrame`, one row per quantity or
score column), ``str(result)`` / ``print_summary()`` (the same numbers as text) and, where a
picture fits, ``plot(ax=None)`` returning the axes.

``SummaryFrame`` is a plain :class:`pandas.DataFrame` (one row per quantity) that remembers the
result's text form. Until this release ``Diagnostics.summary`` was a *method* returning text, so
callers wrote ``diag.summary()``; calling the frame still returns that text, with a
``DeprecationWarning``, for one release. Use ``print(diag)`` or ``diag.print_summary()``.
"""

from __future__ import annotations

import warnings

import pandas as pd

__all__ = ["Result", "SummaryFrame", "summary_frame"]


class SummaryFrame(pd.DataFrame):
    """A tidy summary DataFrame; calling it returns the old text summary (deprecated)."""

    _metadata = ["_text"]

    @property
    def _constructor(self):
        # derived frames (slices, copies) are ordinary DataFrames
        return pd.DataFrame

    def __call__(self) -> str:
        warnings.warn(
            "summary is now a tidy DataFrame (an attribute, not a method); `.summary()` returning "
            "text is deprecated and will be removed in the next release: use str(result) or "
            "result.print_summary().", DeprecationWarning, stacklevel=2)
        return getattr(self, "_text", "")


def summary_frame(rows: list[dict] | pd.DataFrame, text: str) -> SummaryFrame:
    """A :class:`SummaryFrame` from row dicts (or a frame) and the text form of the result."""
    frame = SummaryFrame(pd.DataFrame(rows))
    object.__setattr__(frame, "_text", text)
    return frame


class Result:
    """Mixin of the result objects: subclasses define ``_summary_frame()`` and ``_text()``
    (and ``plot`` where a picture fits)."""

    def _summary_frame(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def _text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def summary(self) -> SummaryFrame:
        """Tidy DataFrame of the result's numbers (calling it is deprecated: text)."""
        return summary_frame(self._summary_frame(), self._text())

    def __str__(self) -> str:
        return self._text()

    def print_summary(self) -> None:
        """Print the result as text."""
        print(self._text())
