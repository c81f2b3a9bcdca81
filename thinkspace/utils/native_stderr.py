"""Hold back what native (C/C++) code writes to the process's stderr, file descriptor 2.

Python's ``sys.stderr`` redirection does not reach libraries such as decord and FFmpeg, which
write ``[mov,mp4,...] moov atom not found`` and ``ERROR opening: ...`` lines straight to fd 2
before raising an exception that thinkspace turns into one clear line.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


class Captured:
    """What was written to fd 2 inside :func:`native_stderr` (``text``, set on exit)."""

    text: str = ""


@contextmanager
def native_stderr() -> Iterator[Captured]:
    """Send fd 2 to a temporary file for the block; ``Captured.text`` holds what was written.

    The caller decides what to do with it: drop it when the block's error already says it, or
    write it out (:func:`replay`) when the block succeeded.
    """
    captured = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


def replay(captured: Captured) -> None:
    """Write held-back text to stderr after all (a block that succeeded hides nothing)."""
    if captured.text:
        sys.stderr.write(captured.text)
        sys.stderr.flush()


def last_reason(text: str) -> str | None:
    """The text after the last ``": "`` of the last non-empty line (FFmpeg's reason), if any."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].rsplit(": ", 1)[-1] if lines and ": " in lines[-1] else None
