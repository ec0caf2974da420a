"""The result convention of the analyses; defined once in :mod:`ttp_diag._summary`."""

from ttp_diag._summary import Result, SummaryFrame, summary_frame

__all__ = ["Result", "SummaryFrame", "summary_frame"]
