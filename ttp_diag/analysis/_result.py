"""The one result convention of the analyses (lifelines/pingouin style).

Every result object has

* ``summary`` -- a tidy :class:`pandas.DataFrame` (one row per score column / quantity);
* ``str(result)`` and ``print_summary()`` -- the same numbers as readable text;
* ``plot(ax=None)`` -- the panel of the figure it belongs to (a new figure when ``ax`` is
  None), returning the axes.

Several results used to have a ``summary()`` *method* returning text. ``summary`` is now a
DataFrame that can still be called once more, for one release: ``result.summary()`` returns
the text with a :class:`DeprecationWarning` (use ``str(result)``).
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

__all__ = ["Result", "SummaryFrame"]


class SummaryFrame(pd.DataFrame):
    """A tidy summary DataFrame; calling it (the old ``summary()`` method) is deprecated."""

    _metadata = ["_text"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        # operations on the summary give plain DataFrames
        return pd.DataFrame

    def __call__(self) -> str:
        warnings.warn("summary() returning text is deprecated: summary is now a DataFrame; "
                      "use str(result) or result.print_summary() for the text.",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, "_text", "")


def summary_frame(frame: pd.DataFrame, text: str) -> SummaryFrame:
    out = SummaryFrame(frame)
    object.__setattr__(out, "_text", text)
    return out


class Result:
    """Mixin of the analysis results: subclasses define ``_summary_frame()`` and ``_text()``
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

    def _new_ax(self, ax: Any, figsize: tuple[float, float] = (5.2, 3.8)) -> Any:
        from ttp_diag.plots._common import new_axes

        return new_axes(ax, figsize)
