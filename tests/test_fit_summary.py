"""``thinkspace fit`` says how it chose CPU threads and ends with a one-line summary."""

import os
import re
import subprocess
import sys

import pytest
from cli_helpers import FAST, QUICKSTART

from thinkspace.training.cpu_threads import default_cpu_threads, usable_cores

pytestmark = pytest.mark.slow


def test_fit_ends_with_metrics_checkpoint_and_run_dir_and_names_its_threads(tmp_path):
    fast = [a for a in FAST if a not in ("--data.val", "null")]  # keep the validation set
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run(
        [sys.executable, "-m", "thinkspace.cli", "fit", "--config", str(QUICKSTART), "--run_dir", "runs/s",
         "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
         "--data.eval_batch_size", "4", *fast],
        cwd=tmp_path, env=dict(env, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"fit: 2 steps; val/accuracy (\S+), val/loss (\S+), val/text\.ce (\S+); "
                         r"checkpoint (\S+); run dir runs/s", last)
    assert match, last
    assert 0.0 <= float(match[1]) <= 1.0 and float(match[2]) == float(match[3]) > 0
    assert match[4] == str(tmp_path / "runs/s/checkpoints/last.ckpt") and os.path.isfile(match[4])
    threads = default_cpu_threads(usable_cores())
    assert f"thinkspace: CPU run with {threads} torch thread" in proc.stderr + proc.stdout
    for noise in ("💡 Tip", "LeafSpec", "LightningCLI's args parameter"):
        assert noise not in proc.stderr, noise
