"""Ablation sweeps: grids of config overrides run one after another, results tabulated."""

from thinkspace.sweep.grid import RunSpec, Sweep, expand, load_sweep, run_name
from thinkspace.sweep.metrics import MetricsFile
from thinkspace.sweep.report import write_report

__all__ = ["RunSpec", "Sweep", "expand", "load_sweep", "run_name", "MetricsFile", "write_report"]
