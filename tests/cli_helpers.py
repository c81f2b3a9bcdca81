"""Run the real ``thinkspace`` CLI in a subprocess on a tiny, fast setting."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"

#: 40 samples / batch 4 = 10 steps per epoch; no validation; short runs.
FAST = [
    "--data.batch_size", "4",
    "--data.num_workers", "0",
    "--data.train.init_args.num_samples", "40",
    "--data.val", "null",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]


def run_cli(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``thinkspace *args`` in ``cwd``; the tiny-model cache is shared via the environment."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **(env or {})}  # env overrides
    proc = subprocess.run(
        [sys.executable, "-m", "thinkspace.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"thinkspace {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def command(name: str) -> Callable[[list[str]], int]:
    """``thinkspace NAME argv...`` in-process, as the console script runs it: bad input is reported by
    ``thinkspace.errors`` (one line, exit code 2)."""
    from thinkspace.cli import main

    return lambda argv: main([name, *argv])


def one_error_line(capsys, name: str) -> str:
    """stderr, checked to be exactly one line ``thinkspace NAME: error: ...`` (no usage, no traceback)."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"thinkspace {name}: error: "), err
    return err.strip()
