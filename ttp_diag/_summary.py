"""The tidy summary frame every result object returns as ``.summary``.

``SummaryFrame`` is a plain :class:`pandas.DataFrame` (one row per quantity) that remembers the
result's text form. Until this release ``Diagnostics.summary`` was a *method* returning text, so
callers wrote ``diag.summary()``; calling the frame still returns that text, with a
``DeprecationWarning``, for one release. Use ``print(diag)`` or ``diag.print_summary()``.
"""

from __future__ import annotations

import warnings

import pandas as pd


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


def summary_frame(rows: list[dict], text: str) -> SummaryFrame:
    """A :class:`SummaryFrame` from a list of row dicts and the text form of the result."""
    frame = SummaryFrame(pd.DataFrame(rows))
    frame._text = text
    return frame
