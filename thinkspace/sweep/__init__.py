"""Ablation sweeps: grids of config overrides run locally or as SLURM jobs, results tabulated."""

from typing import Any

from thinkspace.sweep.grid import RunSpec, Sweep, expand, load_sweep, run_name
from thinkspace.sweep.results import write_report

__all__ = ["RunSpec", "Sweep", "expand", "load_sweep", "run_name", "MetricsFile", "QuestionsFile", "write_report"]


def __getattr__(name: str) -> Any:
    # the callbacks import lightning; a SLURM job unpickling its run needs none of it
    if name == "MetricsFile":
        from thinkspace.sweep.metrics_file import MetricsFile

        return MetricsFile
    if name == "QuestionsFile":
        from thinkspace.sweep.questions import QuestionsFile

        return QuestionsFile
    raise AttributeError(f"module 'thinkspace.sweep' has no attribute {name!r}")
