"""The SLURM launcher: each run (all its stages) one job, submitted through submitit.

The job runs :class:`RunJob`, which executes the run's stages as the sequential runner
does (``thinkspace fit`` and ``thinkspace test`` in subprocesses): with ``gpus_per_node``
G, srun starts G tasks per node, every task runs the stages, and each stage's process
finds ``SLURM_NTASKS``/``SLURM_PROCID`` and becomes one rank of Lightning's SLURM
environment (DDP/FSDP start inside the job as they do from ``srun``). Rank 0 writes the
logs and ``status.json``.

Job ids are appended to ``run.json`` (``"jobs"``). Each invocation of the sweep asks
``sacct`` (one call) for the state of every run's last job and submits only runs that are
neither done nor queued/running. On preemption or the time limit SLURM signals the job
(``--signal USR2@90``); submitit calls :meth:`RunJob.checkpoint`, whose new submission
resumes the fit from ``checkpoints/last.ckpt`` (``--ckpt_path``), and requeues the job
under the same id.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable

from thinkspace.sweep.grid import RunSpec, Sweep
from thinkspace.sweep.files import write_json
from thinkspace.sweep.runner import execute, read_info, read_status
from thinkspace.sweep.slurm_settings import SlurmSettings

#: sacct states of a job that is still in the queue or on a node: its run is not submitted again
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING", "SUSPENDED")
RUNNING = ("RUNNING", "COMPLETING", "RESIZING", "STAGE_OUT", "SIGNALING")


def _submitit():
    try:
        import submitit
    except ImportError as e:
        raise ImportError("thinkspace sweep --launcher slurm needs submitit: pip install 'thinkspace[slurm]' "
                          "(or pip install submitit)") from e
    return submitit


class RunJob:
    """One run as a submitit job: picklable, checkpointable.

    Args:
        sweep, spec, configs, run_dir: as for :func:`thinkspace.sweep.runner.execute`.
    """

    def __init__(self, sweep: Sweep, spec: RunSpec, configs: list[str], run_dir: str | Path) -> None:
        self.sweep, self.spec, self.configs, self.run_dir = sweep, spec, configs, Path(run_dir)

    def __call__(self) -> dict[str, Any]:
        rank = _global_rank()
        if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or threading.current_thread() is not threading.main_thread():
            return execute(self.sweep, self.spec, self.configs, self.run_dir, record=rank == 0)
        # SLURM stops a preempted job with SIGTERM to all its processes: the stage then dies, and
        # that is no failure of the run (submitit's own handler, which ignores SIGTERM, still runs)
        received: list[int] = []
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            received.append(signum)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            return execute(self.sweep, self.spec, self.configs, self.run_dir, record=rank == 0,
                           stopping=lambda: bool(received))
        finally:
            signal.signal(signal.SIGTERM, previous)

    def checkpoint(self) -> Any:
        """submitit's preemption/timeout hook: the same run again. Its fit resumes from
        ``checkpoints/last.ckpt`` (``stage_argv`` passes ``--ckpt_path`` when it exists) and
        stages that finished are skipped."""
        return _submitit().helpers.DelayedSubmission(RunJob(self.sweep, self.spec, self.configs, self.run_dir))


def _global_rank() -> int:
    try:
        return int(_submitit().JobEnvironment().global_rank)
    except RuntimeError:  # not inside a submitit job (called directly)
        return 0


def require_commands(*names: str) -> None:
    """Raises:
        ValueError: naming the SLURM commands missing from PATH (not on a cluster's login node)."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise ValueError(f"--launcher slurm: {', '.join(missing)} not found on PATH; run the sweep on a SLURM login "
                         "node (or set slurm.cluster: debug to run each job here, one after another)")


def make_executor(settings: SlurmSettings, folder: str | Path) -> Any:
    """A submitit executor with the settings' resources (the job name is set per run)."""
    submitit = _submitit()
    if settings.cluster == "slurm":
        require_commands("sbatch", "srun")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=settings.cluster,
                                     slurm_max_num_timeout=settings.max_requeues)
    executor.update_parameters(
        timeout_min=settings.timeout_min, nodes=settings.nodes, tasks_per_node=settings.tasks_per_node,
        gpus_per_node=settings.gpus_per_node or None, cpus_per_task=settings.cpus_per_task,
        mem_gb=settings.mem_gb, slurm_partition=settings.partition, slurm_account=settings.account,
        slurm_qos=settings.qos, slurm_constraint=settings.constraint, slurm_setup=settings.setup or None,
        slurm_additional_parameters=settings.additional or None)
    return executor


def job_states(job_ids: list[str]) -> dict[str, str]:
    """The sacct state of each SLURM job (``UNKNOWN`` for a job sacct has no record of), in one call.

    Asks ``sacct`` itself (SLURM's public interface) rather than submitit's internal watcher:
    ``sacct -o JobID,State --parsable2 --noheader -j ID,...`` prints ``ID|STATE`` per job and
    step (``ID.batch``, skipped); a state may carry a reason (``CANCELLED by 123``).

    Raises:
        ValueError: ``sacct`` is not on PATH.
        RuntimeError: ``sacct`` failed (its message).
    """
    if not job_ids:
        return {}
    require_commands("sacct")
    wanted = [str(job_id) for job_id in job_ids]
    done = subprocess.run(["sacct", "-o", "JobID,State", "--parsable2", "--noheader", "-j", ",".join(wanted)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sacct failed (exit {done.returncode}): {done.stderr.strip()}")
    states = {}
    for line in done.stdout.splitlines():
        fields = line.split("|")
        if len(fields) >= 2 and fields[0] in wanted and fields[1].strip():
            states[fields[0]] = fields[1].split()[0]
    return {job_id: states.get(str(job_id), "UNKNOWN") for job_id in job_ids}


def last_job(run_dir: Path) -> dict[str, Any] | None:
    jobs = read_info(run_dir).get("jobs") or []
    return jobs[-1] if jobs else None


def run_state(status: dict[str, Any] | None, job: dict[str, Any] | None, job_state: str | None) -> str:
    """What ``--status`` shows for a run: ``done``, ``queued``, ``running``, ``failed``,
    ``unknown`` (sacct has no record of its job), ``stopped`` (its job ended, e.g. preempted,
    timed out, cancelled, without a result) or ``not submitted``."""
    if status and status.get("state") == "done":
        return "done"
    if job is not None and job.get("cluster", "slurm") == "slurm" and job_state is not None:
        if job_state in QUEUED:
            return "queued"
        if job_state in RUNNING:
            return "running"
        if job_state == "UNKNOWN" and not status:
            return "unknown"
    if status and status.get("state") == "failed":
        return "failed"
    return "stopped" if job is not None else "not submitted"


def record_job(run_dir: Path, job_id: str, cluster: str) -> None:
    """Append a submitted job to the run's ``run.json``."""
    info = read_info(run_dir)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    info["jobs"] = [*(info.get("jobs") or []), {"id": str(job_id), "cluster": cluster, "submitted": now}]
    write_json(run_dir / "run.json", info)


def launch(sweep: Sweep, settings: SlurmSettings, runs: list[tuple[RunSpec, Path]], configs: list[str], out: Path,
           max_runs: int | None = None, resubmit_unknown: bool = False, submit: bool = True,
           echo: Callable[[str], Any] = print) -> dict[str, int]:
    """Show every run's state and submit the runs that need a job (all when ``submit``).

    Returns:
        the number of runs per state, after submitting (``submitted`` for new jobs;
        ``failed`` counts runs whose debug-cluster job failed in this call).
    """
    jobs = {spec.name: last_job(run_dir) for spec, run_dir in runs}
    states = job_states(sorted({j["id"] for j in jobs.values() if j and j.get("cluster", "slurm") == "slurm"}))
    executor = None
    counts: dict[str, int] = {}
    submitted = 0
    for spec, run_dir in runs:
        job = jobs[spec.name]
        state = run_state(read_status(run_dir), job, states.get(job["id"]) if job else None)
        needs_job = state in ("failed", "stopped", "not submitted") or (state == "unknown" and resubmit_unknown)
        where = f" (job {job['id']}{', ' + states[job['id']] if job['id'] in states else ''})" if job else ""
        if not (submit and needs_job) or (max_runs is not None and submitted >= max_runs):
            hint = "; --resubmit-unknown submits it again" if state == "unknown" else ""
            echo(f"[sweep] {spec.name}: {state}{where}{hint}")
            counts[state] = counts.get(state, 0) + 1
            continue
        if executor is None:
            executor = make_executor(settings, settings.folder or out / ".submitit" / "%j")
        executor.update_parameters(name=f"thinkspace-{spec.name}"[:120])
        submission = executor.submit(RunJob(sweep, spec, configs, run_dir))
        record_job(run_dir, submission.job_id, settings.cluster)
        submitted += 1
        echo(f"[sweep] {spec.name}: submitted job {submission.job_id}" + (f" (was {state})" if job else ""))
        if settings.cluster == "debug":  # the debug executor runs the job here, when asked for its result
            result = submission.result()
            state = result.get("state", "failed")
            counts[state] = counts.get(state, 0) + 1
        else:
            counts["submitted"] = counts.get("submitted", 0) + 1
    return counts


def slurm_log_hint(out: Path, settings: SlurmSettings) -> str:
    folder = settings.folder or str(out / ".submitit" / "%j")
    return f"job logs: {os.path.join(folder, '%j_0_log.out').replace('%j', '<job id>')}"
