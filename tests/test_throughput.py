"""Throughput in the training logs: samples, tokens and the FLOPs estimate."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli_helpers import FAST, QUICKSTART, run_cli
from thinkspace.backbones import QwenVL
from thinkspace.training.throughput import full_numel, parameter_counts, vision_patches


@pytest.mark.slow
def test_fit_logs_samples_tokens_and_flops_per_second(tmp_path):
    run_cli("fit", "--config", str(QUICKSTART), *FAST, "--trainer.max_steps", "6", "--trainer.log_every_n_steps", "1",
            "--trainer.callbacks+=thinkspace.training.throughput.Throughput", "--trainer.callbacks.window_size", "3",
            cwd=tmp_path)
    events = next((tmp_path / "runs" / "quickstart").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/device/samples_per_sec", "train/device/items_per_sec", "train/device/flops_per_sec"} <= tags
    samples = [e.value for e in acc.Scalars("train/samples")]
    assert samples == [4.0 * step for step in range(1, 7)]  # batch 4, every step logged
    assert all(e.value > 0 for e in acc.Scalars("train/device/samples_per_sec"))
    assert "train/device/mfu" not in tags  # no known peak FLOPs for a CPU


def test_parameter_counts_split_decoder_and_vision_and_follow_freezing():
    backbone = QwenVL("tiny:qwen2_5_vl")
    hf = backbone.hf
    embeddings = hf.get_input_embeddings().weight.numel()
    decoder = sum(p.numel() for p in backbone.language_model().parameters()) - embeddings
    vision = sum(p.numel() for p in hf.model.visual.parameters())
    assert parameter_counts(backbone) == (decoder, 0, vision, 0)
    for p in hf.model.visual.parameters():
        p.requires_grad_(False)
    assert parameter_counts(backbone) == (decoder, 0, 0, vision)


def test_vision_patches_of_flattened_and_image_shaped_pixels():
    assert vision_patches(torch.zeros(64, 1176)) == 64  # Qwen-VL rows: 3 x 2 x 14 x 14 values each
    assert vision_patches(torch.zeros(2, 3, 3, 28, 28), patch_size=14) == 2 * 3 * 4
    assert vision_patches(None) == 0


def test_parameter_counts_read_deepspeed_zero3_sizes():
    """Under ZeRO-3 every rank holds an empty tensor and the size in ``ds_numel``."""
    backbone = QwenVL("tiny:qwen2_5_vl")
    expected = parameter_counts(backbone)
    for p in backbone.hf.parameters():
        p.ds_numel = p.numel()
        p.data = torch.empty(0, dtype=p.dtype)
    assert sum(p.numel() for p in backbone.hf.parameters()) == 0
    assert parameter_counts(backbone) == expected
    assert full_numel(torch.zeros(3, 4)) == 12


@pytest.mark.slow
def test_parameter_counts_under_fsdp2_are_the_whole_models(tmp_path):
    """Two CPU processes shard the tiny model as the FSDP2 strategy does; each counts the whole model,
    so the FLOPs (and MFU) each rank logs are one process's."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    probe = Path(__file__).parent / "sharded_counts_probe.py"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(probe), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for result in ranks:
        assert result["sharded"] == result["whole"]
        assert result["whole"][1] == 0 and result["whole"][2] == 0  # decoder trains, vision frozen
        assert result["local"] < result["every"]  # each rank holds only its shards
    assert ranks[0]["whole"] == ranks[1]["whole"]
