"""One live run per run directory: ``RUN_DIR/run.lock`` names the process that owns it.

Two ``thinkspace fit`` into one ``--run_dir`` used to both run, overwriting each other's
``config.yaml`` and ``last.ckpt`` and mixing their TensorBoard events. Now the first takes the lock
(a JSON file: pid, host, start time, the process's own start tick and the command) and the second
is refused in one line naming the holder (exit code 2). A lock whose process is gone (a run killed
with SIGKILL) is stale: the next run says so in one line and takes it over. A lock held on another
host cannot be checked from here and is honoured (the refusal says to delete it if that run is
gone), except by the same SLURM job requeued (same ``SLURM_JOB_ID``): its old incarnation has ended.

Under several processes (DDP, FSDP, ``torchrun``, ``srun``) only the process of global rank 0 takes
the lock (:func:`is_rank_zero_process`); the others started for the same run must not refuse.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_NAME = "run.lock"

#: environment variables that carry a process's rank under Lightning's launcher, torchrun and SLURM
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


class RunDirLocked(ValueError):
    """The run directory is owned by another live run (a ``ValueError``: reported as one line, exit 2)."""


@dataclass
class Holder:
    """Who holds a run directory's lock."""

    pid: int
    host: str
    started: str  # local time, ``YYYY-mm-dd HH:MM:SS``
    proc_start: int | None = None  # the process's start tick (/proc/PID/stat field 22): tells a reused pid apart
    command: str = ""
    job: str | None = None  # SLURM_JOB_ID: a requeued job (same id, maybe another node) replaces its old self

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"


def is_rank_zero_process(env: dict[str, str] | None = None) -> bool:
    """Whether this process is global rank 0 of its run: every rank variable that is set says 0
    (a process started alone sets none of them)."""
    env = os.environ if env is None else env
    return all(env.get(name, "0").strip() in ("", "0") for name in RANK_VARIABLES)


def process_start(pid: int) -> int | None:
    """The start tick of process ``pid`` (Linux), ``None`` where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name; 22nd overall


def is_alive(holder: Holder) -> bool:
    """Whether the holder's process still runs. Only a process on this host can be checked; one on
    another host counts as alive (its lock is honoured)."""
    if holder.host != socket.gethostname():
        # the same SLURM job again (requeued after preemption, perhaps on another node): its old run is gone
        return not (holder.job is not None and holder.job == os.environ.get("SLURM_JOB_ID"))
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    start = process_start(holder.pid)
    return holder.proc_start is None or start is None or start == holder.proc_start


def read_holder(path: Path) -> Holder | None:
    """The holder a lock file names; ``None`` when there is no lock (or it vanished while read)."""
    try:
        data = json.loads(path.read_text())
        return Holder(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise RunDirLocked(f"lock file {path} is not a thinkspace lock ({error}); if no run uses "
                           f"{path.parent}, delete it") from None


def live_holder(run_dir: str | Path) -> Holder | None:
    """The live run holding ``run_dir``, else ``None`` (no lock, or a stale one)."""
    holder = read_holder(Path(run_dir) / LOCK_NAME)
    return holder if holder is not None and is_alive(holder) else None


class RunLock:
    """The lock of one run directory, held by this process until :meth:`release` (or its exit)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def acquire(self, say=lambda line: print(line, file=sys.stderr, flush=True)) -> RunLock:
        """Take the lock; a stale one is taken over with a one-line notice through ``say``.

        Raises:
            RunDirLocked: naming the directory, the live holder and what to do.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = Holder(pid=os.getpid(), host=socket.gethostname(), started=time.strftime("%Y-%m-%d %H:%M:%S"),
                    proc_start=process_start(os.getpid()), command=" ".join(sys.argv)[:500],
                    job=os.environ.get("SLURM_JOB_ID"))
        for _ in range(3):  # a stale lock removed, or one vanishing between our tries: try again
            if self._create(me):
                self.held = True
                atexit.register(self.release)
                return self
            holder = read_holder(self.path)
            if holder is None:
                continue
            if holder.pid == me.pid and holder.host == me.host:  # this process took it before (in-process reuse)
                self.held = True
                return self
            if is_alive(holder):
                unsure = "" if holder.host == me.host else (f" (a run on another host cannot be checked from here: if "
                                                            f"it no longer runs, delete {self.path})")
                raise RunDirLocked(f"run dir {self.path.parent} is in use by a live run ({holder.describe()}; lock "
                                   f"{self.path}); wait for it to end, stop it, or give this run another --run_dir"
                                   + unsure)
            say(f"thinkspace: run dir {self.path.parent}: taking over the lock of a run that no longer runs "
                f"({holder.describe()})")
            self.path.unlink(missing_ok=True)
        raise RunDirLocked(f"run dir {self.path.parent}: could not take its lock {self.path} (other runs keep "
                           "taking it); give this run another --run_dir")

    def _create(self, me: Holder) -> bool:
        """Write the lock in one step: a complete file linked into place, or nothing if one is there."""
        temporary = self.path.with_name(f".{LOCK_NAME}.{me.pid}")
        temporary.write_text(json.dumps(asdict(me)) + "\n")
        try:
            os.link(temporary, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the lock if this process holds it (idempotent)."""
        if not self.held:
            return
        self.held = False
        holder = None
        try:
            holder = read_holder(self.path)
        except RunDirLocked:
            pass
        if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
            self.path.unlink(missing_ok=True)
