"""A sweep's report inputs in one small file, kept with the results and reported again later.

A sweep directory holds gigabytes of checkpoints and event files, and only kilobytes the
report reads: ``sweep.json`` and, per run, ``run.json``, ``status.json``, ``metrics_*.json``
and the per-question answers ``questions_*.csv``. ``thinkspace sweep --archive DIR`` packs
those into ``report_inputs.tar.gz`` (byte-identical for identical inputs: sorted members,
zero times and owners), small enough to commit beside the tables it produced (the study's
are under ``docs/ablations/``). ``thinkspace sweep --report FILE.tar.gz`` unpacks one and
writes the report from it, so a table can be rewritten with a new statistic long after the
runs' directories are gone (issue 34: the study's could not be).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from thinkspace.utils.file_modes import atomic_write

#: what the report reads, relative to the sweep directory (``*`` is one run directory)
REPORT_INPUTS = ("sweep.json", "*/run.json", "*/status.json", "*/metrics_*.json", "*/questions_*.csv")
#: the archive's default name inside the sweep directory
ARCHIVE_NAME = "report_inputs.tar.gz"


def is_report_input(name: str) -> bool:
    """Whether ``name`` (a ``/``-separated path relative to the sweep directory) is one of
    :data:`REPORT_INPUTS`: one directory level at most (``*`` matches no ``/``), and no
    absolute path, empty, ``.`` or ``..`` part (nothing can land outside the directory)."""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return False
    return any(len(parts) == pattern.count("/") + 1 and fnmatch.fnmatchcase(name, pattern)
               for pattern in REPORT_INPUTS)


def report_inputs(out: str | Path) -> list[Path]:
    """The files of sweep directory ``out`` the report reads, sorted by relative path."""
    out = Path(out)
    found = {p for pattern in REPORT_INPUTS for p in out.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.relative_to(out).as_posix())


def write_archive(out: str | Path, to: str | Path | None = None) -> tuple[Path, int]:
    """Pack the report inputs of sweep directory ``out`` into ``to`` (default
    ``out/report_inputs.tar.gz``), atomically; returns the path and the number of files.

    Raises:
        ValueError: when ``out`` holds no run (no ``*/run.json``).
    """
    out = Path(out)
    files = report_inputs(out)
    if not any(p.name == "run.json" for p in files):
        raise ValueError(f"sweep --archive: {out} holds no runs (no */run.json); nothing to archive")
    to = Path(to) if to is not None else out / ARCHIVE_NAME
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(out).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # no clock, no owner: same inputs, same bytes
            tar.addfile(info, io.BytesIO(data))
    with atomic_write(to) as tmp, tmp.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                                       mtime=0) as packed:
        packed.write(buffer.getvalue())
    return to, len(files)


def read_archive(archive: str | Path, into: str | Path) -> Path:
    """Unpack ``archive`` into the new directory ``into`` and return it.

    Only report inputs are accepted: every member must be a regular file whose name is one of
    :data:`REPORT_INPUTS` (so no absolute path, ``..``, link or stray file can land anywhere);
    the files are unpacked into a temporary directory beside ``into`` and renamed into place
    at the end, so a bad archive leaves nothing behind.

    Raises:
        ValueError: naming the archive and the member, or ``into`` when it exists already.
    """
    archive, into = Path(archive), Path(into)
    if into.exists():
        raise ValueError(f"sweep --report {archive}: {into} exists already; give --out a new directory (or "
                         f"`--report {into}` to report an unpacked archive again)")
    if not archive.is_file():
        raise ValueError(f"sweep --report {archive}: no such file")
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.", dir=into.parent))
    try:
        try:
            with tarfile.open(archive, mode="r:gz") as tar:
                for member in tar:
                    _unpack(tar, member, staging, archive)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ValueError(f"sweep --report {archive}: not a readable gzipped tar archive ({e})") from e
        if not any(staging.glob("*/run.json")):
            raise ValueError(f"sweep --report {archive}: the archive holds no runs (no */run.json)")
        os.replace(staging, into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return into


def _unpack(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, archive: Path) -> None:
    """Write one member under ``staging``, or refuse it (see :func:`read_archive`)."""
    if not member.isfile() or not is_report_input(member.name):
        raise ValueError(f"sweep --report {archive}: member {member.name!r} is not a report input "
                         f"(expected regular files named {', '.join(REPORT_INPUTS)})")
    target = staging / member.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(tar.extractfile(member).read())
