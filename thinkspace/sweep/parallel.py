"""The local launcher: up to N runs at once on this machine, the CPU threads or GPUs split.

Each run still executes through :func:`thinkspace.sweep.runner.execute` (its stages in
subprocesses); a pool of N slots hands each run the environment of a free slot:

- CPU threads: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` (torch sizes its intra-op pool
  from them) set to ``cpus // N``, at least 1; a value the user exported is kept as it is
  (it is then the per-run budget). 2 cores, 2 runs: one thread each.
- GPUs: ``CUDA_VISIBLE_DEVICES`` split into N disjoint groups of ``gpus // N`` (of the
  devices visible to the sweep), so two runs never share a device.

With N = 1 nothing is changed: the runs see the sweep's own environment, as the
sequential runner always did.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from thinkspace.sweep.grid import RunSpec, Sweep
from thinkspace.sweep.runner import INTERRUPTED, execute, interrupt_stages
from thinkspace.training.cpu_threads import usable_cores

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def visible_gpus() -> list[str]:
    """The GPUs the sweep sees: ``CUDA_VISIBLE_DEVICES`` when set, else every device torch counts."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def split_resources(slots: int, cpus: int, gpus: list[str], threads: str | None = None) -> list[dict[str, str]]:
    """The environment of each of ``slots`` runs at once.

    Args:
        slots: runs at once (N).
        cpus: cores to share.
        gpus: device ids to share (empty without GPUs).
        threads: the user's own ``OMP_NUM_THREADS``, kept as every run's budget when given.

    Returns:
        one dict of environment variables per slot (``[{}]`` for one slot).

    Raises:
        ValueError: when there are GPUs but fewer than ``slots``.
    """
    if slots < 1:
        raise ValueError(f"--max-parallel must be at least 1, got {slots}")
    if slots == 1:
        return [{}]
    if gpus and len(gpus) < slots:
        raise ValueError(f"--max-parallel {slots} but {len(gpus)} GPU(s) visible ({','.join(gpus)}): each run "
                         f"needs a GPU of its own; lower --max-parallel to at most {len(gpus)}")
    per_run = threads or str(max(1, cpus // slots))
    per_gpu = len(gpus) // slots
    envs = []
    for i in range(slots):
        env = {name: per_run for name in THREAD_VARIABLES}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[i * per_gpu:(i + 1) * per_gpu])
        envs.append(env)
    return envs


def run_parallel(sweep: Sweep, jobs: list[tuple[RunSpec, Path]], configs: list[str], slots: int,
                 echo: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Execute ``jobs`` (run, its directory), up to ``slots`` at once; their statuses, in order.

    Raises:
        ValueError: from :func:`split_resources`, before any run starts.
    """
    envs = split_resources(slots, usable_cores(), visible_gpus() if slots > 1 else [],
                           os.environ.get("OMP_NUM_THREADS"))
    if slots > 1:
        echo(f"[sweep] up to {slots} runs at once, each with " + ", ".join(f"{k}={v}" for k, v in envs[0].items()
                                                                          if k != "CUDA_VISIBLE_DEVICES")
             + ("; GPUs " + " | ".join(e["CUDA_VISIBLE_DEVICES"] for e in envs) if "CUDA_VISIBLE_DEVICES" in envs[0]
                else ""))
    free: queue.Queue[dict[str, str]] = queue.Queue()
    for env in envs:
        free.put(env)
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            echo(line)

    def one(job: tuple[RunSpec, Path]) -> dict[str, Any]:
        spec, run_dir = job
        env = free.get()
        try:
            if INTERRUPTED.is_set():  # Ctrl-C came before this run started: it stays as it was
                return {"state": "not started"}
            return execute(sweep, spec, configs, run_dir, echo=say, env=env)
        finally:
            free.put(env)

    pool = ThreadPoolExecutor(max_workers=slots)
    futures = [pool.submit(one, job) for job in jobs]
    try:
        return [future.result() for future in futures]
    except KeyboardInterrupt:  # the main thread waits here: stop the running stages (they save), start none
        interrupt_stages()
        pool.shutdown(wait=True, cancel_futures=True)
        return [f.result() if f.done() and not f.cancelled() else {"state": "not started"} for f in futures]
    finally:
        pool.shutdown(wait=True)
