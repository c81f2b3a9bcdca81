"""The ``slurm:`` section of a sweep file: the resources of each run's job.

::

    slurm:
      partition: gpu          # sbatch --partition (default: the cluster's)
      timeout_min: 2880       # sbatch --time, minutes (required)
      nodes: 1                # sbatch --nodes; must equal the config's trainer.num_nodes
      gpus_per_node: 8        # sbatch --gpus-per-node; must equal trainer.devices; 0 for CPU jobs
      cpus_per_task: 10       # sbatch --cpus-per-task: per GPU (one task per GPU)
      mem_gb: 480             # sbatch --mem, per node
      account: null           # sbatch --account
      qos: null               # sbatch --qos
      constraint: null        # sbatch --constraint
      setup: [module load cuda/12.4, source .venv/bin/activate]   # shell lines before srun
      additional: {exclusive: true}   # any other #SBATCH flag, as submitit's slurm_additional_parameters
      max_requeues: 3         # requeues after the time limit (submitit's max_num_timeout); preemptions are free
      folder: null            # submitit's job files and logs (default OUT/.submitit/%j)
      cluster: slurm          # submitit's executor: slurm, or debug (each job in this process, to try a sweep)

Tasks per node are ``gpus_per_node`` (one process per GPU, as Lightning's SLURM
environment expects), or 1 for a CPU job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import yaml

CLUSTERS = ("slurm", "debug")


@dataclass
class SlurmSettings:
    """Resources and options of one run's job (see the module docstring)."""

    timeout_min: int
    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: list[str] = field(default_factory=list)
    additional: dict[str, Any] = field(default_factory=dict)
    max_requeues: int = 3
    folder: str | None = None
    cluster: str = "slurm"

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.gpus_per_node)


_POSITIVE = ("timeout_min", "nodes")
_COUNTS = ("gpus_per_node", "cpus_per_task", "max_requeues")
_TEXT = ("partition", "account", "qos", "constraint", "folder")


def parse_slurm(data: dict[str, Any], where: str) -> SlurmSettings:
    """Check and read a ``slurm:`` mapping.

    Raises:
        ValueError: naming ``where``, the key and what was expected, for an unknown key, a
            missing ``timeout_min``, or a value of the wrong type.
    """
    known = [f.name for f in fields(SlurmSettings)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: slurm: unknown key(s) {unknown}; expected some of {known} (other #SBATCH "
                         "flags go under slurm.additional)")
    if data.get("timeout_min") is None:
        raise ValueError(f"{where}: slurm.timeout_min is required: the job's time limit in minutes (sbatch --time)")
    for key in _POSITIVE + _COUNTS:
        value = data.get(key)
        low = 1 if key in _POSITIVE else 0
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ValueError(f"{where}: slurm.{key} must be an integer >= {low}, got {value!r}")
    for key in _TEXT:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{where}: slurm.{key} must be a string, got {data[key]!r}")
    mem = data.get("mem_gb")
    if mem is not None and (not isinstance(mem, int | float) or isinstance(mem, bool) or mem <= 0):
        raise ValueError(f"{where}: slurm.mem_gb must be a positive number of GB, got {mem!r}")
    setup = data.get("setup") or []
    if not isinstance(setup, list) or not all(isinstance(line, str) for line in setup):
        raise ValueError(f"{where}: slurm.setup must list shell lines, got {setup!r}")
    if not isinstance(data.get("additional") or {}, dict):
        raise ValueError(f"{where}: slurm.additional must map sbatch flags to values, got {data['additional']!r}")
    cluster = data.get("cluster") or "slurm"
    if cluster not in CLUSTERS:
        raise ValueError(f"{where}: slurm.cluster must be one of {list(CLUSTERS)}, got {cluster!r}")
    given = {k: v for k, v in data.items() if v is not None}
    given.update(setup=list(setup), additional=dict(data.get("additional") or {}), cluster=cluster)
    return SlurmSettings(**given)


def check_resources(settings: SlurmSettings, resolved: str, run: str) -> None:
    """The run's trainer must start one process per SLURM task: ``trainer.num_nodes`` equal to
    ``nodes`` and ``trainer.devices`` to ``gpus_per_node`` (or ``auto``/-1).

    Raises:
        ValueError: naming the run, both values and how to make them agree.
    """
    trainer = (yaml.safe_load(resolved) or {}).get("trainer") or {}
    num_nodes = int(trainer.get("num_nodes") or 1)
    if num_nodes != settings.nodes:
        raise ValueError(f"run {run}: trainer.num_nodes is {num_nodes} but slurm.nodes is {settings.nodes}; "
                         "Lightning counts its processes from both, so set them equal (e.g. under `fixed:`)")
    devices = trainer.get("devices", "auto")
    if str(devices) in ("auto", "-1"):
        return
    try:
        count = int(devices)
    except (TypeError, ValueError):
        count = len(devices) if isinstance(devices, list) else -1
    if count != settings.tasks_per_node:
        raise ValueError(f"run {run}: trainer.devices is {devices} but each node runs {settings.tasks_per_node} "
                         f"task(s) (slurm.gpus_per_node {settings.gpus_per_node}: one task per GPU, 1 for a CPU "
                         "job); Lightning's SLURM environment needs them equal")
