"""The package's errors: one base class, one subclass per kind of failure, one exit code each.

Every error raised on purpose by :mod:`ttp_diag` derives from :class:`TtpDiagError`, so a
caller can catch the package's own failures with one ``except`` and let real bugs through.
Messages name the file, column or value at fault and the fix. Errors about bad *values* also
derive from :class:`ValueError` (and :class:`NotFittedError` from :class:`AttributeError`, as
in scikit-learn), so code written against the older ValueError-only contract keeps working.

The command line (:mod:`ttp_diag.cli`) prints any of them as one line,
``ttp-diag: error: <message>``, without a traceback, and exits with the class's code:

======================  ====  ===============================================================
error                   code  raised when
======================  ====  ===============================================================
(success)               0
TtpDiagError            1     any other package error; also a plain ``ValueError``
(usage)                 2     bad command-line flags (argparse's own code)
ScoreTableError         3     a score table breaks the contract (:mod:`ttp_diag.table`)
DataError               4     a malformed input record in a data file (:mod:`ttp_diag.gen.data`)
InputFileError          5     a file is missing, empty, of the wrong format or unreadable
CorruptFileError        6     a file fails its checksum or is truncated
ConfigError             7     inconsistent or invalid settings (also EvaluationInputError:
                              settings of ``ttp-diag evaluate`` that do not fit the data, and
                              EngineError: an engine such as Ray is not installed or its
                              address unreachable)
RunFolderError          8     a run folder is locked, belongs to other settings, or is damaged
NotFittedError          9     a model is used before ``fit``
TimeBudgetExceeded      75    a ``--time-budget`` ran out; the run resumes where it stopped
                              (EX_TEMPFAIL: job schedulers read it as "try again later")
(OSError)               11    the operating system refused (permissions, disk full, ...)
(interrupted)           130   Ctrl-C
======================  ====  ===============================================================

Examples
--------
>>> from ttp_diag.exceptions import ScoreTableError, TtpDiagError, exit_code
>>> issubclass(ScoreTableError, TtpDiagError) and issubclass(ScoreTableError, ValueError)
True
>>> exit_code(ScoreTableError("column 'reward' is missing"))
3
"""

from __future__ import annotations

__all__ = [
    "TtpDiagError",
    "ScoreTableError",
    "DataError",
    "InputFileError",
    "CorruptFileError",
    "ConfigError",
    "EvaluationInputError",
    "ConfigTypeError",
    "EngineError",
    "RunFolderError",
    "NotFittedError",
    "TimeBudgetExceeded",
    "exit_code",
    "EXIT_OS_ERROR",
    "EXIT_INTERRUPTED",
]

EXIT_OS_ERROR = 11
EXIT_INTERRUPTED = 130


class TtpDiagError(Exception):
    """Base class of every error :mod:`ttp_diag` raises on purpose."""

    exit_code: int = 1


class ScoreTableError(TtpDiagError, ValueError):
    """A score table breaks the contract; the message says where and how to fix it."""

    exit_code = 3


class DataError(TtpDiagError, ValueError):
    """A malformed input record; the message names the file, the record and the reason."""

    exit_code = 4


class InputFileError(TtpDiagError, ValueError):
    """A file is missing, empty, of the wrong format or unreadable; the message names it."""

    exit_code = 5


class CorruptFileError(InputFileError):
    """A file is damaged (checksum mismatch, truncated); the message names it and the fix."""

    exit_code = 6


class ConfigError(TtpDiagError, ValueError):
    """Invalid or inconsistent settings; the message names the setting and the fix."""

    exit_code = 7


class EvaluationInputError(ConfigError):
    """Bad input to the evaluation suite; the message names the value and the fix.

    A :class:`ttp_diag.exceptions.ConfigError` (so a :class:`~ttp_diag.exceptions.TtpDiagError`
    and a :class:`ValueError`): the evaluation's bad inputs are settings that do not fit the
    data (an unknown method, ``k`` larger than a support set, a negative lambda, a user with
    no support items), so ``ttp-diag evaluate`` exits with the settings code, 7.

    Examples
    --------
    >>> err = EvaluationInputError("lambda=-1; the reward weight must be >= 0")
    >>> isinstance(err, TtpDiagError), isinstance(err, ValueError), exit_code(err)
    (True, True, 7)
    """


class ConfigTypeError(ConfigError, TypeError):
    """A setting or argument of the wrong type (a string for a number, ...); a ConfigError
    (exit code 7) that is also a :class:`TypeError`, as Python code expects."""


class EngineError(ConfigError):
    """An execution engine cannot be used (Ray not installed, its address unreachable)."""


class RunFolderError(TtpDiagError, ValueError):
    """A run folder cannot be used (locked by another process, other settings, damaged)."""

    exit_code = 8


class NotFittedError(TtpDiagError, ValueError, AttributeError):
    """A model is used before ``fit`` (a ValueError and AttributeError, as in scikit-learn)."""

    exit_code = 9


class TimeBudgetExceeded(TtpDiagError, TimeoutError):
    """A time budget ran out; what was done is saved (the run folder is consistent) and the
    same command resumes."""

    exit_code = 75  # EX_TEMPFAIL from sysexits.h: "try again later"


def exit_code(exc: BaseException) -> int:
    """The command-line exit code for an exception (see the module's table).

    Examples
    --------
    >>> exit_code(ValueError("x")), exit_code(OSError("y")), exit_code(KeyboardInterrupt())
    (1, 11, 130)
    """
    if isinstance(exc, TtpDiagError):
        return int(type(exc).exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        return EXIT_OS_ERROR
    return 1
