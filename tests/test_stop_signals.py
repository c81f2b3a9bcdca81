"""SIGTERM and SIGINT during ``fit``: the step ends, ``last.ckpt`` is saved, the exit code is 143 / 130
(not 0), and the run resumes from it exactly; a sweep stopped with Ctrl-C marks its run
``interrupted`` and exits without a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from cli_helpers import FAST, QUICKSTART, run_cli, weights

from thinkspace.sweep.grid import load_sweep

pytestmark = pytest.mark.slow
ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
#: quickstart, 100 batches per epoch, a step checkpoint every 2 steps (so we know training runs)
ARGS = ["--config", str(QUICKSTART), *FAST, "--data.train.init_args.num_samples", "400",
        "--checkpoint_every_n_steps", "2", "--model.scheduler.init_args.total_steps", "100"]


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared (exit {proc.poll()})"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["term", "int"])
def test_a_signalled_fit_saves_last_ckpt_exits_non_zero_and_resumes_exactly(tmp_path, signum, code):
    last = tmp_path / "runs/stopped/checkpoints/last.ckpt"
    proc = subprocess.Popen([sys.executable, "-m", "thinkspace.cli", "fit", *ARGS, "--trainer.max_steps", "100",
                             "--run_dir", "runs/stopped"], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(last, proc)  # the first step checkpoint: training is under way
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == code, err[-3000:]
    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 2 <= step < 100
    name = signal.Signals(signum).name
    assert f"thinkspace: {name}: saved runs/stopped/checkpoints/last.ckpt at step {step} (resume with --ckpt_path " \
           f"last); exit code {code}" in err, err[-3000:]
    assert "Traceback" not in err and not (tmp_path / "runs/stopped/run.lock").exists()
    resumed = run_cli("fit", *ARGS, "--trainer.max_steps", str(step + 2), "--run_dir", "runs/stopped",
                      "--ckpt_path", "last", cwd=tmp_path)
    assert f"Resumed from {last}: step {step}, epoch 0, {step * 4} samples seen" in resumed.stderr
    if signum == signal.SIGTERM:  # the SLURM case: the resumed run ends with an uninterrupted run's weights
        run_cli("fit", *ARGS, "--trainer.max_steps", str(step + 2), "--run_dir", "runs/straight", cwd=tmp_path)
        a, b = weights(tmp_path / "runs/straight/checkpoints/last.ckpt"), weights(last)
        assert a.keys() == b.keys()
        assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) == 0.0


#: a stage that stands in for `thinkspace fit`: says it started, then waits; on SIGINT it "saves" and exits 130
STAGE = r'''
import json, signal, sys, time
from pathlib import Path
argv = sys.argv[1:]
run_dir = Path(argv[argv.index("--run_dir") + 1])
def stop(signum, frame):
    with open(run_dir / "signals.txt", "a") as f:
        f.write(signal.Signals(signum).name + "\n")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "last.ckpt").write_text("saved")
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
(run_dir / "started").write_text("yes")
time.sleep(120)
'''


def test_ctrl_c_in_a_sweep_marks_the_run_interrupted_without_a_traceback(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"command": [sys.executable, str(script)],
                                    "grid": {"model.optimizer.init_args.lr": [0.1, 0.2]}}))
    first, second = (tmp_path / "out" / spec.name for spec in load_sweep(str(grid)).runs)
    sweep = subprocess.Popen([sys.executable, "-m", "thinkspace.cli", "sweep", "--config", str(QUICKSTART),
                              "--grid", str(grid), "--out", str(tmp_path / "out"), "--no-chart"], cwd=tmp_path,
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(first / "started", sweep)
        sweep.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends to the sweep
        out, err = sweep.communicate(timeout=120)
    finally:
        sweep.kill()
    assert sweep.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    status = json.loads((first / "status.json").read_text())
    assert (status["state"], status["stage"], status["returncode"]) == ("interrupted", "fit", 130)
    assert (first / "signals.txt").read_text() == "SIGINT\n"  # the stage was asked once, and saved
    assert (first / "checkpoints" / "last.ckpt").read_text() == "saved"
    assert not (second / "started").exists() and not (second / "status.json").exists()  # nothing new started
    assert "[sweep] interrupted (Ctrl-C): 1 run(s) stopped after saving their checkpoint" in out, out
