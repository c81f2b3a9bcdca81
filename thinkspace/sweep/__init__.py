"""Ablation sweeps: grids of config overrides run locally or as SLURM jobs, results tabulated."""

from thinkspace.utils.lazy_exports import lazy_exports
from thinkspace.sweep.grid import RunSpec, Sweep, expand, load_sweep, run_name
from thinkspace.sweep.results import write_report

__all__ = ["RunSpec", "Sweep", "expand", "load_sweep", "run_name", "MetricsFile", "QuestionsFile", "write_report"]


# the callbacks import lightning; a SLURM job unpickling its run needs none of it
__getattr__ = lazy_exports(__name__, {"MetricsFile": "thinkspace.sweep.metrics_file",
                                      "QuestionsFile": "thinkspace.sweep.questions"})
