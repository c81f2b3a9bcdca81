"""Real DDP on the CPU (two processes, gloo): the split of the data and the files a run leaves."""

import os
from pathlib import Path

import pytest
import torch

from cli_helpers import FAST, QUICKSTART, run_cli

pytestmark = pytest.mark.slow


def test_two_process_ddp_sees_every_sample_once_per_epoch(tmp_path):
    config = tmp_path / "probe.yaml"
    config.write_text(
        "trainer:\n  callbacks:\n    - class_path: ddp_probe.RecordIds\n"
        f"      init_args:\n        out_dir: {tmp_path / 'ids'}\n"
    )
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    # 40 samples, 2 ranks, batch 4: 5 steps per epoch; 10 steps = 2 epochs
    run_cli("fit", "--config", str(QUICKSTART), "--config", str(config), "--run_dir", "runs/ddp",
            "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.max_steps", "10", *FAST, cwd=tmp_path,
            env={"PYTHONPATH": path})
    lines = {r: (tmp_path / "ids" / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)}
    assert [len(v) for v in lines.values()] == [10, 10]
    for epoch in (0, 1):
        seen = [i for r in (0, 1) for line in lines[r] if line.startswith(f"{epoch} ") for i in line.split()[1:]]
        assert len(seen) == 40 and len(set(seen)) == 40, f"epoch {epoch}: every sample exactly once across ranks"
    first = [line.split()[1:] for line in lines[0] if line.startswith("0 ")]
    second = [line.split()[1:] for line in lines[0] if line.startswith("1 ")]
    assert first != second  # a new order each epoch
    ckpt = torch.load(tmp_path / "runs/ddp/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 10
    assert sorted(p.name for p in (tmp_path / "runs/ddp").iterdir() if p.suffix == ".yaml") == ["config.yaml"]
    assert sorted(p.name for p in (tmp_path / "runs/ddp/checkpoints").iterdir()) == ["last.ckpt"]


JOINT = QUICKSTART.parent / "loc3r" / "joint_tiny.yaml"
#: joint_tiny shrunk: 8-frame 56 px walks of three kinds (situation answers, counts,
#: directions), so ranks see different numbers of answer tokens and situations per step
JOINT_FAST = [
    "--data.num_workers", "0",
    "--data.train.init_args.num_samples", "16",
    "--data.val", "null",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]


def _ddp_matches_one_process(tmp_path, config, fast, steps=3, per_rank=2, env=None):
    """Train ``steps`` steps with 2 ranks x ``per_rank`` and with 1 process x ``2 * per_rank``."""
    common = ["fit", "--config", str(config), *fast, "--trainer.max_steps", str(steps),
              "--model.scheduler", "null",
              # plain SGD, no clipping: updates proportional to the gradients (Adam's first steps are
              # nearly sign(grad), and clipping rescales; both would hide a wrongly weighted mean)
              "--model.optimizer", "torch.optim.SGD", "--model.optimizer.init_args.lr", "0.1",
              "--trainer.gradient_clip_val", "null"]
    run_cli(*common, "--run_dir", "runs/ddp", "--data.batch_size", str(per_rank),
            "--trainer.strategy", "ddp", "--trainer.devices", "2", cwd=tmp_path, env=env)
    run_cli(*common, "--run_dir", "runs/one", "--data.batch_size", str(2 * per_rank), cwd=tmp_path, env=env)
    ddp = torch.load(tmp_path / "runs/ddp/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    one = torch.load(tmp_path / "runs/one/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert ddp["global_step"] == one["global_step"] == steps
    assert ddp["state_dict"].keys() == one["state_dict"].keys()
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][name], value, rtol=1e-4, atol=2e-5, msg=name)


def test_ddp_weights_equal_one_process_on_the_same_global_batches(tmp_path):
    _ddp_matches_one_process(tmp_path, QUICKSTART, FAST)


def test_ddp_joint_stack_equals_one_process_although_ranks_hold_different_token_counts(tmp_path):
    # the text, layout and situation terms are means over the global batch (thinkspace.training.distributed)
    _ddp_matches_one_process(tmp_path, JOINT, JOINT_FAST)


GRPO = QUICKSTART.parent / "3dthinker" / "stage2_grpo_tiny.yaml"
#: two prompts per rank, groups of 4, 20 new tokens (the 12 latent steps, their start and end,
#: 6 sampled); no LoRA dropout (its masks would follow each process's batch shapes); a length
#: reward so every group of the random model has spread, hence a gradient
GRPO_FAST = [
    "--model.group_size", "4", "--model.max_new_tokens", "20",
    "--model.init_args.backbone.init_args.lora.dropout", "0.0",
    "--model.rewards.length", "ddp_probe.length_reward",
    "--data.num_workers", "0",
    "--data.train.init_args.num_samples", "16",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]


def test_ddp_grpo_equals_one_process_with_rollouts_seeded_per_prompt(tmp_path):
    # each prompt's group samples from its own generator (seed, step, sample id), groups stay
    # on one rank, and the loss's mean (the tiny config's sequence normalisation) covers every rank's completions
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    _ddp_matches_one_process(tmp_path, GRPO, GRPO_FAST, steps=2, env={"PYTHONPATH": path})


def test_two_process_run_stopped_mid_epoch_and_resumed_ends_with_the_same_weights(tmp_path):
    # 40 samples, 2 ranks x batch 4: 5 steps per epoch; stopped at 3, resumed to 10 (two epochs), one data
    # worker per rank; every rank reads its position from the restored batch count
    common = ["fit", "--config", str(QUICKSTART), *FAST, "--data.num_workers", "1", "--trainer.strategy", "ddp",
              "--trainer.devices", "2", "--model.scheduler.init_args.total_steps", "10"]
    run_cli(*common, "--run_dir", "runs/straight", "--trainer.max_steps", "10", cwd=tmp_path)
    run_cli(*common, "--run_dir", "runs/resumed", "--trainer.max_steps", "3", cwd=tmp_path)
    proc = run_cli(*common, "--run_dir", "runs/resumed", "--trainer.max_steps", "10", "--ckpt_path", "last",
                   cwd=tmp_path)
    assert proc.stderr.count(": step 3, epoch 0, 24 samples seen") == 1  # over both ranks, printed once
    a = torch.load(tmp_path / "runs/straight/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "runs/resumed/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 10
    for name, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], value, rtol=0, atol=0, msg=f"{name} differs after resume")
