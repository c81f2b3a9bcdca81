"""The first line every timing benchmark prints: the machine, torch, the threads and the load at start
(a ratio is read against the load it was measured under; see BENCHMARKING.md)."""

from __future__ import annotations

import os
import platform

import torch


def machine_line(threads: int) -> str:
    """``machine: <arch> <N> cores; torch <version>, <threads> thread(s); load average <L> at start``."""
    return (f"machine: {platform.machine()} {os.cpu_count()} cores; torch {torch.__version__}, {threads} thread(s);"
            f" load average {os.getloadavg()[0]:.2f} at start")
