"""Files thinkspace writes get the permissions the user's umask gives, as ``open()`` would.

``safetensors.torch.save_file`` and ``tempfile.mkstemp`` create files with mode 0600, so a model
exported or a cache shard written for a team would be readable by its writer alone.
"""

from __future__ import annotations

import os
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
