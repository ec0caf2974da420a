"""The ``ttp-diag`` command line: thin subcommands over the public API.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Heavy imports (torch, the
``gen`` subpackage) happen inside ``func``, never at module import.

Errors: every package error, ``ValueError`` and ``OSError`` is printed as one line,
``ttp-diag: error: <what is wrong and the fix>``, with a distinct exit code per error class
(table in :mod:`ttp_diag.exceptions`; 2 is a usage error, 130 an interrupt).
``python -m ttp_diag`` runs the same command line.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import re
import signal
import sys
import threading
import warnings

from ttp_diag.exceptions import EXIT_INTERRUPTED, TtpDiagError, exit_code

# Order is the order shown in ``ttp-diag --help``.
_SUBCOMMANDS = [
    "ttp_diag.cli.analyze",
    "ttp_diag.cli.run",
    "ttp_diag.cli.merge",
    "ttp_diag.cli.evaluate",
    "ttp_diag.cli.sweep", "ttp_diag.cli.lora_policy", "ttp_diag.cli.zoo",
    "ttp_diag.cli.demo", "ttp_diag.cli.figures", "ttp_diag.cli.risk",
    "ttp_diag.cli.plan",
]


def build_parser() -> argparse.ArgumentParser:
    from ttp_diag import __version__

    parser = argparse.ArgumentParser(
        prog="ttp-diag",
        description="Best-of-N scaling diagnostics for test-time personalization.",
    )
    parser.add_argument("--version", action="version", version=f"ttp-diag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


# What to do about the operating system's refusals, which name the path but not the fix.
_OS_HINTS = [
    (FileExistsError, "a file stands where a folder is needed; choose another path or move it"),
    (NotADirectoryError, "a file stands where a folder is needed; choose another path or move it"),
    (IsADirectoryError, "a folder stands where a file is needed; give the file's path"),
    (FileNotFoundError, "check the path"),
    (PermissionError, "check the permissions of that path, or choose another"),
]
_ERRNO_HINTS = {
    errno.ENOSPC: "free disk space or choose a folder on another disk",
    errno.EROFS: "the file system is read-only; choose a writable folder",
}


# The API's names for settings that have a command-line flag: a CLI user is told the flag.
_CLI_WORDS = [
    (re.compile(r"pass pool='clip'|pool='clip'"), "pass --pool clip"),
    (re.compile(r"pass scores=\[\.\.\.\]|scores=\[\.\.\.\]"), "pass --scores ..."),
    (re.compile(r"\bn_boot must\b"), "--n-boot must"),
    (re.compile(r"check_range=False"), "a table checked by hand (check_range=False in Python)"),
]


def cli_words(msg: str) -> str:
    """An error message with the API's setting names replaced by the command-line flags.

    Examples
    --------
    >>> cli_words("Use ns <= 3, or pass pool='clip' to use the whole pool")
    'Use ns <= 3, or pass --pool clip to use the whole pool'
    """
    for pat, flag in _CLI_WORDS:
        msg = pat.sub(flag, msg)
    return msg


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings reach a command-line user as one plain line each, once per message."""
    text = " ".join(str(message).split())
    if text in _SEEN_WARNINGS:
        return
    _SEEN_WARNINGS.add(text)
    print(f"ttp-diag: warning: {cli_words(text)}", file=file or sys.stderr)


_SEEN_WARNINGS: set[str] = set()


def _one_line(exc: BaseException) -> str:
    msg = cli_words(" ".join(str(exc).split()) or type(exc).__name__)
    if isinstance(exc, OSError) and not isinstance(exc, TtpDiagError):
        # "[Errno 28] No space left on device: 'x'": keep the OS's words, name the kind, add
        # what to do.
        msg = f"{type(exc).__name__}: {msg}"
        hint = _ERRNO_HINTS.get(exc.errno) or next(
            (h for cls, h in _OS_HINTS if isinstance(exc, cls)), None
        )
        if hint:
            msg += f" ({hint})"
    return f"ttp-diag: error: {msg}"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (table in :mod:`ttp_diag.exceptions`).

    Package errors (:class:`~ttp_diag.exceptions.TtpDiagError`), ``ValueError`` and
    ``OSError`` become one line on stderr, ``ttp-diag: error: ...``, and their exit code; a
    traceback would only bury the message, which already names the file/column and the fix.
    Set ``TTP_DIAG_TRACEBACK=1`` to get the traceback anyway. Anything else is a bug and
    propagates with its traceback. Warnings are one line each, ``ttp-diag: warning: ...``.
    Ctrl-C ends with exit code 130 and one line, also when the interrupt was swallowed on
    the way (``Exception ignored ...``); files are written atomically, so none is partial.
    """
    with _interrupts() as state:
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            if not getattr(args, "func", None):
                parser.print_help()
                return 2
            _SEEN_WARNINGS.clear()
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                code = int(args.func(args) or 0)
        except KeyboardInterrupt:
            return _interrupted()
        except (TtpDiagError, ValueError, OSError) as exc:
            if os.environ.get("TTP_DIAG_TRACEBACK"):
                raise
            print(_one_line(exc), file=sys.stderr)
            return exit_code(exc)
        # An interrupt swallowed on the way (raised inside a finaliser, a callback or a
        # worker, "Exception ignored ..."), still means the user asked to stop.
        return _interrupted() if state["hit"] else code


def _interrupted() -> int:
    print("ttp-diag: interrupted (Ctrl-C); files already written are complete, run the same "
          "command again to redo the rest", file=sys.stderr)
    return EXIT_INTERRUPTED


@contextlib.contextmanager
def _interrupts():
    """Ctrl-C raises KeyboardInterrupt as usual, but is also recorded, and an interrupt that
    surfaces where it cannot propagate (``Exception ignored ...``) is recorded silently; after
    the command, further Ctrl-C are ignored while the interpreter shuts down, so the exit code
    and the one line are the last word."""
    state = {"hit": False}

    def on_sigint(signum, frame):
        state["hit"] = True
        raise KeyboardInterrupt

    def unraisable(info):
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
            state["hit"] = True
            return
        old_hook(info)

    main_thread = threading.current_thread() is threading.main_thread()
    old_handler = signal.getsignal(signal.SIGINT) if main_thread else None
    old_hook = sys.unraisablehook
    if main_thread:
        signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = unraisable
    try:
        yield state
    finally:
        sys.unraisablehook = old_hook
        if main_thread:
            # the command is over: an interrupt now would only cut the shutdown short
            signal.signal(signal.SIGINT,
                          signal.SIG_IGN if _is_console_run() else old_handler)


def _is_console_run() -> bool:
    """Whether this process is the ``ttp-diag`` / ``python -m ttp_diag`` command itself (and
    not a caller of :func:`main`, whose own Ctrl-C handling is restored)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return ((spec is not None and str(spec.name).startswith("ttp_diag"))
            or os.path.basename(sys.argv[0] or "") == "ttp-diag")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
