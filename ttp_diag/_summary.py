"""The one result convention (lifelines/pingouin style), defined once.

Every result object (:class:`ttp_diag.BestOfN`, :class:`ttp_diag.Diagnostics`,
:class:`ttp_diag.Calibration`, the results of :mod:`ttp_diag.analysis`) subclasses
:class:`Result`, which gives it

- ``summary``: a tidy :class:`pandas.DataFrame` (one row per quantity or score column), built
  afresh on each read, so changing it never changes the result;
- ``str(result)`` and ``print_summary()``: the same numbers as text;

and, where a picture fits, ``plot(ax=None)`` returning the axes (the panel functions live in
:mod:`ttp_diag.plots`, which imports the result types for typing only).

Examples
--------
>>> class Mean(Result):
...     def __init__(self, x):
...         self.x = x
...     def _summary_frame(self):
...         return [{"quantity": "mean", "estimate": self.x}]
...     def _text(self):
...         return f"mean = {self.x:g}"
>>> m = Mean(2.5)
>>> str(m), m.summary.loc[0, "estimate"]
('mean = 2.5', np.float64(2.5))
"""

from __future__ import annotations

from typing import Any

__all__ = ["Result"]


class Result:
    """Base of the result objects: subclasses define ``_summary_frame()`` (a DataFrame or a
    list of row dicts) and ``_text()`` (and ``plot`` where a picture fits)."""

    def _summary_frame(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def summary(self) -> Any:
        """Tidy DataFrame of the result's numbers (a new frame on each read)."""
        import pandas as pd

        return pd.DataFrame(self._summary_frame()).copy()

    def __str__(self) -> str:
        return self._text()

    def print_summary(self) -> None:
        """Print the result as text."""
        print(self._text())
