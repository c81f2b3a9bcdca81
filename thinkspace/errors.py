"""One error style for every ``thinkspace`` subcommand.

Bad input (a missing or malformed file, a wrong key or value) ends a command with ONE line,
``thinkspace <command>: error: <what is wrong, naming the file/line/key and what was expected>``,
and exit code 2. Everything else (a genuine bug) keeps its traceback. ``--debug`` anywhere on the
command line (or ``THINKSPACE_DEBUG=1``) shows the traceback of bad input too.

Code that detects bad input raises one of :data:`INPUT_ERRORS` with a message that names the
place; :func:`run_reporting_errors` turns it into the line above. The argparse tools build their
parsers with :class:`ToolParser`, so a bad argument takes the same road (no usage text).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

#: exception types that mean "the input is wrong", not "the code is wrong" (UnicodeDecodeError,
#: json and yaml errors are ValueErrors or are translated to them where files are read)
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError, ImportError)

#: exit code of bad input, as argparse uses for bad arguments
BAD_INPUT = 2

#: exit code of a command stopped by Ctrl-C (128 + SIGINT), as a shell reports it
INTERRUPTED = 130


def wants_debug(argv: list[str]) -> tuple[bool, list[str]]:
    """``(debug?, argv without --debug)``: ``--debug`` or ``THINKSPACE_DEBUG=1`` keep tracebacks."""
    debug = "--debug" in argv or os.environ.get("THINKSPACE_DEBUG", "") not in ("", "0")
    return debug, [a for a in argv if a != "--debug"]


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line.

    A ``KeyError`` gives its text unquoted; an error re-raised from a DataLoader worker (whose
    message carries the worker's traceback) gives the original error's last line.
    """
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) > 1 and "Original Traceback" in text:
        last = lines[-1]
        return last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith(("Error", "Exception")) \
            else last
    return " ".join(lines)


#: jsonargparse lines that only say which union member was tried
_PARSER_SCAFFOLDING = ("Errors:", "Subtypes:", "Does not validate against any of the Union subtypes",
                       "Given value type:", "Expected a <class 'NoneType'>")


def parser_error_summary(stderr: str) -> str:
    """jsonargparse's error output (usage, tip and an indented tree of union members tried) as one line.

    Keeps the key (``Parser key "model.objectives"``), the reasons (``Problem with given class_path
    'x.Nope': module 'x' has no attribute 'Nope'``, ``Expected a typing.Literal[...]``) and the first
    given value; drops the usage text and the tree's scaffolding.
    """
    start = stderr.rfind("error:")
    lines = [line.strip().lstrip("- ").strip() for line in stderr[max(start, 0):].strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return stderr.strip()
    kept = [lines[0].removeprefix("error:").strip()]
    for previous, line in zip(lines, lines[1:]):
        if line.startswith(_PARSER_SCAFFOLDING) or line.startswith(("usage:", "tip:")):
            continue
        if line.startswith("Given value:"):
            if not any(k.startswith("Given value:") for k in kept):
                kept.append(line)
            continue
        if line in kept:
            continue
        if kept[-1].endswith(":"):  # a heading and its reason read as one phrase
            kept[-1] = f"{kept[-1]} {line}"
        else:
            kept.append(line)
    return "; ".join(kept)


def run_reporting_errors(command: str, run: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """``run(argv)``'s exit code; bad input (:data:`INPUT_ERRORS`) printed as one line, exit code 2.

    ``command`` names the subcommand in the message (``thinkspace ask: error: ...``).
    """
    debug, argv = wants_debug(argv)
    try:
        return int(run(argv) or 0)
    except INPUT_ERRORS as error:
        if debug:
            raise
        print(f"thinkspace {command}: error: {one_line(error)}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C outside a training step (fit saves and exits 130 by itself)
        if debug:
            raise
        print(f"thinkspace {command}: interrupted (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED
    except SystemExit as stop:  # argparse (message printed) or a tool's own SystemExit("message")
        if isinstance(stop.code, str):
            print(f"thinkspace {command}: error: {stop.code}", file=sys.stderr)
            return BAD_INPUT
        return int(stop.code or 0)


class ToolParser(argparse.ArgumentParser):
    """argparse for the ``thinkspace`` tools: a bad argument raises ``ValueError`` (argparse's own
    message, e.g. ``argument --scenes: invalid int value: 'x'``) for :func:`run_reporting_errors`
    to print as one line with exit code 2, instead of printing the usage text and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)
