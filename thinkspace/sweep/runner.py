"""One run of a sweep: its stages, each in its own subprocess, and its directory.

The launchers decide where and how many at once: one after another or several at once on
this machine (``sweep/parallel.py``), or one SLURM job per run (``sweep/slurm.py``); all of
them run a run through :func:`execute`, so the guarantees below hold for each.

A run's directory ``OUT/<run name>/`` holds::

    run.json           # name, labels, overrides, base config files; "jobs": SLURM job ids, oldest first
    resolved.yaml      # the full resolved fit config (from the parser, before the run)
    config.yaml        # what the CLI itself saved (of its last invocation)
    checkpoints/last.ckpt, events.out.tfevents.*
    fit.log, test_<name>.log          # the subprocesses' output
    metrics_fit.json, metrics_test_<name>.json  # written by MetricsFile when a stage ends normally
    questions_test_<name>.csv  # per question of an evaluate stage: id, correct 0/1, answer, prediction
    status.json        # {"state": "done" | "failed" | "interrupted", "stage", "returncode", "error"}
    run.lock           # while a stage runs: the process that owns the directory (thinkspace.training.run_lock)

A run is finished when ``status.json`` says done; it is skipped. An interrupted fit
(a checkpoint but no ``metrics_fit.json``) resumes from ``checkpoints/last.ckpt``; a
failed or interrupted run is tried again the next time the sweep runs. A run whose directory is
locked by a live run (a ``thinkspace fit`` started by hand, another sweep) is reported and left
alone: nothing runs and nothing is written in it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from thinkspace.sweep.grid import RunSpec, Sweep
from thinkspace.sweep.files import questions_path, write_json, write_text
from thinkspace.sweep.overrides import as_arguments
from thinkspace.training.run_lock import live_holder


def stage_names(sweep: Sweep) -> list[str]:
    """``["fit", "test_<name>", ...]``: the stages of every run, in order."""
    return ["fit", *(f"test_{name}" for name in sweep.evaluate)]


def stage_argv(sweep: Sweep, spec: RunSpec, configs: list[str], run_dir: Path, stage: str) -> list[str]:
    """The command line of one stage of one run (``configs``: the base config files, stacked in order)."""
    metrics = {"class_path": "thinkspace.sweep.metrics_file.MetricsFile",
               "init_args": {"path": str(run_dir / f"metrics_{stage}.json")}}
    subcommand = "fit" if stage == "fit" else "test"
    files = [a for c in configs for a in ("--config", c)]
    argv = [*sweep.command, subcommand, *files, *as_arguments(spec.overrides), "--run_dir", str(run_dir),
            "--trainer.callbacks+", json.dumps(metrics)]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if stage == "fit":
        if checkpoint.exists():
            argv += ["--ckpt_path", str(checkpoint)]  # resume an interrupted fit
    else:
        questions = {"class_path": "thinkspace.sweep.questions.QuestionsFile",
                     "init_args": {"path": str(questions_path(run_dir, stage))}}
        argv += [*as_arguments(sweep.evaluate[stage.removeprefix("test_")]), "--ckpt_path", str(checkpoint),
                 "--trainer.callbacks+", json.dumps(questions)]
    return argv


#: set on Ctrl-C: the running stages were asked to stop (SIGINT), no new run or stage starts
INTERRUPTED = threading.Event()
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


def interrupt_stages() -> None:
    """Ctrl-C in the sweep: each running stage gets one SIGINT (it saves ``last.ckpt`` at the end of its
    step and exits 130); nothing new starts. The stages run in their own process group, so the
    terminal's Ctrl-C reaches them only through here, exactly once (a second SIGINT would stop a
    stage at once, without its checkpoint)."""
    INTERRUPTED.set()
    with _running_lock:
        for proc in _running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)


def run_stage(argv: list[str], log: Any, env: dict[str, str]) -> int:
    """One stage's process, its output into ``log``; its exit code. Ctrl-C while waiting (the
    sequential launcher's main thread) asks it to stop (:func:`interrupt_stages`) and waits for it."""
    if INTERRUPTED.is_set():
        return 130
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    with _running_lock:
        _running.add(proc)
    try:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            interrupt_stages()
            return proc.wait()
    finally:
        with _running_lock:
            _running.discard(proc)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "status.json"
    return json.loads(path.read_text()) if path.exists() else None


def read_info(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json`` (``{}`` when there is none yet)."""
    path = run_dir / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def prepare_run(spec: RunSpec, configs: list[str], run_dir: Path, resolved: str) -> None:
    """Write ``run.json`` and ``resolved.yaml``; refuse a run directory made with another config.

    Raises:
        ValueError: when the directory holds a run (finished or not) with another resolved
            config (the base config was edited): its results would be stale, and its
            checkpoint would resume a different run.
    """
    old = run_dir / "resolved.yaml"
    # compared as mappings: the same config written by another version of the dumper is the same run
    if old.exists() and yaml.safe_load(old.read_text()) != yaml.safe_load(resolved):
        raise ValueError(f"run {run_dir} was made with another resolved config than {', '.join(configs)} gives now (was the "
                         "base config edited?); write the sweep to a new --out or delete that run directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"name": spec.name, "labels": spec.labels, "overrides": spec.overrides, "seed": spec.seed, "config": configs}
    jobs = read_info(run_dir).get("jobs")
    if jobs:  # the jobs submitted for this run survive a new invocation of the sweep
        info["jobs"] = jobs
    write_json(run_dir / "run.json", info)
    write_text(old, resolved)


def execute(sweep: Sweep, spec: RunSpec, configs: list[str], run_dir: Path, echo: Any = print,
            env: dict[str, str] | None = None, record: bool = True,
            stopping: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run every unfinished stage of one run; return its status (also in ``status.json``).

    A stage fails when its process exits non-zero or leaves no metrics file; the run
    stops there and is recorded as failed, with the end of its log.

    Args:
        env: variables added to the stages' environment (the local launcher's share of
            CPU threads or GPUs).
        record: write ``status.json`` and the stage logs; False on the other tasks of a
            multi-task SLURM job (ranks 1..N-1 join each stage's processes, rank 0 records).
        stopping: True when the stage's end was the job being stopped (SLURM's SIGTERM on
            preemption): the run is then not recorded as failed, it resumes when run again.
    """
    status = read_status(run_dir)
    if status and status.get("state") == "done":
        echo(f"[sweep] {spec.name}: finished, skipped")
        return status
    holder = live_holder(run_dir) if record else None
    if holder is not None:  # another live run owns the directory: neither run it nor record anything in it
        echo(f"[sweep] {spec.name}: run dir {run_dir} is in use by a live run ({holder.describe()}); skipped, "
             "nothing written (run the sweep again once that run has ended)")
        return {"state": "locked", "holder": holder.describe()}
    if not record:
        return _join_stages(sweep, spec, configs, run_dir, env or {})
    start = time.monotonic()
    for stage in stage_names(sweep):
        if (run_dir / f"metrics_{stage}.json").exists():
            continue
        argv = stage_argv(sweep, spec, configs, run_dir, stage)
        resumed = " (resumed from checkpoints/last.ckpt)" if "--ckpt_path" in argv and stage == "fit" else ""
        echo(f"[sweep] {spec.name}: {stage}{resumed}")
        log = run_dir / f"{stage}.log"
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(argv)}\n")
            handle.flush()
            code = run_stage(argv, handle, {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
        if INTERRUPTED.is_set() and (code != 0 or not (run_dir / f"metrics_{stage}.json").exists()):
            # Ctrl-C: the stage saved last.ckpt and stopped (or never started); the run resumes next time
            status = {"state": "interrupted", "stage": stage, "returncode": code,
                      "seconds": round(time.monotonic() - start, 1)}
            write_json(run_dir / "status.json", status)
            echo(f"[sweep] {spec.name}: {stage} interrupted (exit {code}); it resumes when the sweep runs again")
            return status
        if code != 0 or not (run_dir / f"metrics_{stage}.json").exists():
            if stopping is not None and stopping():
                echo(f"[sweep] {spec.name}: {stage} stopped with its job (exit {code}); not a failure, it resumes "
                     "when the run is run again")
                return {"state": "stopped", "stage": stage, "returncode": code}
            tail = log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-15:]
            status = {"state": "failed", "stage": stage, "returncode": code,
                      "error": "\n".join(tail) if code != 0 else f"exit 0 but no metrics_{stage}.json was written",
                      "seconds": round(time.monotonic() - start, 1)}
            write_json(run_dir / "status.json", status)
            echo(f"[sweep] {spec.name}: {stage} FAILED (exit {code}); log: {log}")
            return status
    status = {"state": "done", "seconds": round(time.monotonic() - start, 1)}
    write_json(run_dir / "status.json", status)
    return status


def _join_stages(sweep: Sweep, spec: RunSpec, configs: list[str], run_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """A non-zero rank of a multi-task job: the same stages, stdout discarded (rank 0 logs
    and records; stderr goes to this task's job log); stops at the first stage that fails."""
    for stage in stage_names(sweep):
        if (run_dir / f"metrics_{stage}.json").exists():
            continue
        code = subprocess.call(stage_argv(sweep, spec, configs, run_dir, stage), stdout=subprocess.DEVNULL,
                               env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})
        if code != 0:
            return {"state": "failed", "stage": stage, "returncode": code}
    return {"state": "done"}
