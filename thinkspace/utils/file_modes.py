"""How thinkspace writes files: atomically (:func:`atomic_write`), with the permissions the
user's umask gives, as ``open()`` would (:func:`apply_umask`).

``safetensors.torch.save_file`` and ``tempfile.mkstemp`` create files with mode 0600, so a model
exported or a cache shard written for a team would be readable by its writer alone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(*paths: str | Path) -> None:
    """Give every file in ``paths`` (directories: every file below them) mode ``0666 & ~umask``."""
    mode = 0o666 & ~current_umask()
    for path in map(Path, paths):
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            os.chmod(file, mode)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """A temporary file next to ``path`` for the block to write (by any means: ``write_text``,
    ``save_file``, ...), renamed onto ``path`` when the block ends: a reader sees the old file or
    the new one, never half of one, and concurrent writers never share a temporary file. The
    file gets the umask's mode; the parent directory is created; if the block raises, the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        apply_umask(tmp)  # mkstemp and safetensors create 0600
        os.replace(tmp, path)  # atomic on one filesystem
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
