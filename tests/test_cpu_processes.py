"""More CPU processes than cores (``--trainer.devices 3`` on 2 cores) is said, once, before the run starts."""

from __future__ import annotations

import logging

import pytest
import torch
from cli_helpers import FAST, QUICKSTART

from thinkspace.training import cpu_threads
from thinkspace.training.cpu_threads import cpu_processes_warning

WARNING = ("thinkspace: warning: trainer.devices 3 starts 3 CPU processes on 2 cores; they take turns on the cores "
           "and run slower than 2 would: set trainer.devices to at most 2")


@pytest.mark.parametrize("accelerator, devices, expected", [
    ("cpu", 3, WARNING), ("cpu", "3", WARNING), ("cpu", 2, None), ("cpu", "auto", None), ("cpu", [0, 1, 2], None),
    ("gpu", 3, None),
])
def test_warning_only_when_cpu_processes_exceed_cores(accelerator, devices, expected):
    assert cpu_processes_warning(accelerator, devices, cores=2) == expected


@pytest.mark.slow  # builds the quickstart model (6 s idle)
def test_fit_with_three_devices_on_two_cores_warns(tmp_path, monkeypatch, caplog):
    from lightning.pytorch import Trainer

    from thinkspace.cli import main

    threads = torch.get_num_threads()
    monkeypatch.setattr(cpu_threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(Trainer, "fit", lambda self, *a, **k: None)  # no processes started: the warning is before
    with caplog.at_level(logging.INFO):
        code = main(["fit", "--config", str(QUICKSTART), *FAST, "--trainer.accelerator", "cpu",
                     "--trainer.devices", "3", "--trainer.logger", "false", "--run_dir", str(tmp_path / "run")])
    torch.set_num_threads(threads)
    assert code == 0
    assert [r.getMessage() for r in caplog.records].count(WARNING) == 1
