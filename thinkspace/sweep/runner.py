"""Runs of a sweep, one after another, each in its own subprocess.

A run's directory ``OUT/<run name>/`` holds::

    run.json           # name, labels, overrides, base config, the command lines
    resolved.yaml      # the full resolved fit config (from the parser, before the run)
    config.yaml        # what the CLI itself saved (of its last invocation)
    checkpoints/last.ckpt, events.out.tfevents.*
    fit.log, test_<name>.log          # the subprocesses' output
    metrics_fit.json, metrics_<name>.json  # written by MetricsFile when a stage ends normally
    status.json        # {"state": "done" | "failed", "stage", "returncode", "error"}

A run is finished when ``status.json`` says done; it is skipped. An interrupted fit
(a checkpoint but no ``metrics_fit.json``) resumes from ``checkpoints/last.ckpt``; a
failed or interrupted run is tried again the next time the sweep runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from thinkspace.sweep.grid import RunSpec, Sweep
from thinkspace.sweep.metrics import write_json
from thinkspace.sweep.resolve import as_arguments


def stage_names(sweep: Sweep) -> list[str]:
    """``["fit", "test_<name>", ...]``: the stages of every run, in order."""
    return ["fit", *(f"test_{name}" for name in sweep.evaluate)]


def stage_argv(sweep: Sweep, spec: RunSpec, config: str, run_dir: Path, stage: str) -> list[str]:
    """The command line of one stage of one run."""
    metrics = {"class_path": "thinkspace.sweep.metrics.MetricsFile",
               "init_args": {"path": str(run_dir / f"metrics_{stage}.json")}}
    subcommand = "fit" if stage == "fit" else "test"
    argv = [*sweep.command, subcommand, "--config", config, *as_arguments(spec.overrides), "--run_dir", str(run_dir),
            "--trainer.callbacks+", json.dumps(metrics)]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if stage == "fit":
        if checkpoint.exists():
            argv += ["--ckpt_path", str(checkpoint)]  # resume an interrupted fit
    else:
        argv += [*as_arguments(sweep.evaluate[stage.removeprefix("test_")]), "--ckpt_path", str(checkpoint)]
    return argv


def read_status(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "status.json"
    return json.loads(path.read_text()) if path.exists() else None


def prepare_run(spec: RunSpec, config: str, run_dir: Path, resolved: str) -> None:
    """Write ``run.json`` and ``resolved.yaml``; refuse a run directory made with another config.

    Raises:
        ValueError: when the directory holds a run (finished or not) with another resolved
            config (the base config was edited): its results would be stale, and its
            checkpoint would resume a different run.
    """
    old = run_dir / "resolved.yaml"
    if old.exists() and old.read_text() != resolved:
        raise ValueError(f"run {run_dir} was made with another resolved config than {config} gives now (was the "
                         "base config edited?); write the sweep to a new --out or delete that run directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "run.json", {"name": spec.name, "labels": spec.labels, "overrides": spec.overrides,
                                      "seed": spec.seed, "config": config})
    tmp = run_dir / f".resolved.yaml.{os.getpid()}.tmp"
    tmp.write_text(resolved)
    os.replace(tmp, old)


def execute(sweep: Sweep, spec: RunSpec, config: str, run_dir: Path, echo: Any = print) -> dict[str, Any]:
    """Run every unfinished stage of one run; return its status (also in ``status.json``).

    A stage fails when its process exits non-zero or leaves no metrics file; the run
    stops there and is recorded as failed, with the end of its log.
    """
    status = read_status(run_dir)
    if status and status.get("state") == "done":
        echo(f"[sweep] {spec.name}: finished, skipped")
        return status
    start = time.monotonic()
    for stage in stage_names(sweep):
        if (run_dir / f"metrics_{stage}.json").exists():
            continue
        argv = stage_argv(sweep, spec, config, run_dir, stage)
        resumed = " (resumed from checkpoints/last.ckpt)" if "--ckpt_path" in argv and stage == "fit" else ""
        echo(f"[sweep] {spec.name}: {stage}{resumed}")
        log = run_dir / f"{stage}.log"
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(argv)}\n")
            handle.flush()
            code = subprocess.call(argv, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if code != 0 or not (run_dir / f"metrics_{stage}.json").exists():
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
