"""How many threads torch uses on a CPU run when the user has not said (``OMP_NUM_THREADS``).

torch's default is one intra-op thread per core. Its OpenMP workers spin at every barrier, so
when another process holds one of those cores each parallel region waits for a thread that is
not running: on 2 cores with one busy neighbour the quickstart ran 7.5x slower than with one
thread. Half the usable cores (at least one) leaves room for a neighbour, for the DataLoader
workers and for the main process's Python; measured in ``benchmarks/cpu_threads.py`` and
``docs/benchmarks.md``.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_cpu_threads(cores: int) -> int:
    """The thread count of a CPU run on ``cores`` usable cores: half of them, at least one."""
    return max(1, cores // 2)


def runs_on_cpu(accelerator: object) -> bool:
    """Whether Lightning's ``trainer.accelerator`` setting puts the run on the CPU."""
    import torch  # here: the sweep's launcher counts cores without loading torch
    name = getattr(accelerator, "__class__", type(None)).__name__ if not isinstance(accelerator, str) else accelerator
    if name in ("cpu", "CPUAccelerator"):
        return True
    return name in ("auto", "None", "NoneType") and not torch.cuda.is_available() and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


def set_cpu_threads(accelerator: object, environ: dict[str, str] | None = None) -> str | None:
    """Set torch's thread count for a CPU run unless ``OMP_NUM_THREADS`` is set.

    Returns:
        the one line that says so (``None`` when nothing was changed: not a CPU run, or the
        user chose with ``OMP_NUM_THREADS``).
    """
    environ = os.environ if environ is None else environ
    if environ.get("OMP_NUM_THREADS") or not runs_on_cpu(accelerator):
        return None
    import torch

    cores = usable_cores()
    threads = default_cpu_threads(cores)
    torch.set_num_threads(threads)
    return (f"thinkspace: CPU run with {threads} torch thread{'s' if threads > 1 else ''} on {cores} cores "
            "(half, so a busy neighbour does not stall it); set OMP_NUM_THREADS to choose")


def cpu_processes_warning(accelerator: object, devices: object, cores: int | None = None) -> str | None:
    """The line that warns when a CPU run starts more processes than there are usable cores.

    On the CPU, ``trainer.devices N`` starts N processes; with more processes than cores they take
    turns on the cores and every gradient all-reduce waits for the one not running.

    Args:
        accelerator, devices: Lightning's ``trainer.accelerator`` and ``trainer.devices`` settings.
        cores: usable cores (default: :func:`usable_cores`).

    Returns:
        the warning, or ``None``: not a CPU run, ``devices`` not a count, or no more processes than cores.
    """
    if isinstance(devices, bool) or not (isinstance(devices, int) or str(devices).isdigit()):
        return None  # "auto", a list of ids: Lightning resolves those itself
    wanted = int(devices)
    cores = usable_cores() if cores is None else cores
    if wanted <= cores or not runs_on_cpu(accelerator):
        return None
    return (f"thinkspace: warning: trainer.devices {wanted} starts {wanted} CPU processes on {cores} "
            f"core{'s' if cores > 1 else ''}; they take turns on the cores and run slower than "
            f"{cores} would: set trainer.devices to at most {cores}")
