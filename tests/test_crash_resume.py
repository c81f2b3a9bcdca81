"""A real ``thinkspace fit`` process killed (SIGKILL) after a checkpoint, resumed with ``--ckpt_path
last``, ends with exactly the weights of an uninterrupted run: SpatialVLM with data workers and a
checkpoint written at validation, SpatialGRPO (rollout sampling, LoRA dropout) with the step checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import FAST, QUICKSTART, REPO, run_cli, weights

pytestmark = pytest.mark.slow
#: the subprocesses import the test reward (ddp_probe.length_reward: spread in every group) from this folder
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}

#: quickstart, 10 batches per epoch, one data worker, validation (and its checkpoint) every 3 batches
VLM = ["--config", str(QUICKSTART), *FAST, "--data.num_workers", "1", "--checkpoint_every_n_steps", "0",
       "--data.val", "{class_path: thinkspace.data.datasets.squares.ColouredSquares, init_args: {num_samples: 4}}",
       "--trainer.val_check_interval", "3", "--trainer.limit_val_batches", "1",
       "--model.scheduler.init_args.total_steps", "14"]
#: GRPO in miniature: no validation, so only the step checkpoint (every 2 steps) saves it
GRPO = ["--config", str(REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"), "--model.group_size", "4",
        "--model.max_new_tokens", "20", "--data.batch_size", "2", "--checkpoint_every_n_steps", "2",
        "--model.rewards.length", "ddp_probe.length_reward",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def kill_after_first_checkpoint(cwd: Path, run: str, args: list[str]) -> tuple[int, dict[str, torch.Tensor]]:
    """Start ``thinkspace fit``, SIGKILL it as soon as ``checkpoints/last.ckpt`` appears; its step and weights."""
    last = cwd / "runs" / run / "checkpoints" / "last.ckpt"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", **ENV)
    # its own process group, killed whole as a scheduler kills a job: the data workers' forkserver too,
    # which would otherwise outlive the test (about 0.9 GB each)
    proc = subprocess.Popen([sys.executable, "-m", "thinkspace.cli", "fit", *args, "--run_dir", f"runs/{run}"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        returncode = proc.wait()
    assert returncode == -signal.SIGKILL, "the run ended before it could be killed"
    # Lightning writes checkpoints atomically (a temporary file moved into place): complete when seen
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return ckpt["global_step"], ckpt["state_dict"]


@pytest.mark.parametrize(("args", "steps", "batch"), [(VLM, 14, 4), (GRPO, 5, 2)], ids=["spatial-vlm", "grpo"])
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, args, steps, batch):
    args = [*args, "--trainer.max_steps", str(steps)]
    killed_at, at_kill = kill_after_first_checkpoint(tmp_path, "killed", args)
    assert 0 < killed_at < steps
    resumed = run_cli("fit", *args, "--run_dir", "runs/killed", "--ckpt_path", "last", cwd=tmp_path, env=ENV)
    last = tmp_path / "runs/killed/checkpoints/last.ckpt"
    assert f"Resumed from {last}: step {killed_at}, epoch 0, {killed_at * batch} samples seen" in resumed.stderr
    run_cli("fit", *args, "--run_dir", "runs/straight", cwd=tmp_path, env=ENV)
    a = weights(tmp_path / "runs/straight/checkpoints/last.ckpt")
    b = weights(tmp_path / "runs/killed/checkpoints/last.ckpt")
    assert a.keys() == b.keys()
    moved = max((a[k].float() - at_kill[k].float()).abs().max().item() for k in a)
    assert moved > 1e-4, "training after the checkpoint changed nothing: the comparison would prove nothing"
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst == 0.0, f"resumed from step {killed_at}: weights up to {worst:.3g} from the uninterrupted run"
