"""FSDP2 on two CPU processes (gloo) through the real CLI and the shipped fragments: checkpoint and
resume with a validation that generates (sanity batches included), clipping of the sharded gradients,
the same weights as one process; and decoding whose rows stop at different steps on different ranks
(``sharded_decode_probe.py``) giving the tokens of one unsharded process. GRPO with LoRA through its DDP
fragment: the adapters train, a resume is exact, the export loads in plain transformers.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from cli_helpers import FAST, QUICKSTART, REPO, run_cli, weights

pytestmark = pytest.mark.slow

STAGE1 = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"
JOINT = REPO / "configs" / "loc3r" / "joint_tiny.yaml"
TWO_CPUS = ["--trainer.accelerator", "cpu", "--trainer.devices", "2"]
#: as the paper configs: the backbone loaded in bf16 (float32 masters of what trains), the vision tower
#: frozen in bf16, float32 heads; the fragments' clipping at 1.0 kept
PAPER_LIKE = ["--model.backbone.init_args.dtype", "bfloat16", r"--model.freeze=['\.visual\.']",
              "--data.num_workers", "0",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
NO_VALIDATION = ["--trainer.limit_val_batches", "0"]
FSDP2 = ["--trainer.strategy.class_path", "thinkspace.training.fsdp2.FSDP2"]


def _with_tests_on_path() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}


def test_stage1_fragment_on_two_cpus_resumes_to_the_uninterrupted_weights_and_exports(tmp_path):
    fragment = REPO / "configs" / "3dthinker" / "scale" / "fsdp_8gpu.yaml"
    # the config's validation, which generates (16 tokens, the latent slot's), every 2 optimizer steps
    # (8 batches of 4 accumulation steps) and in the sanity check before training; last.ckpt every 2
    # steps (the config's checkpoint writes it only when val/accuracy improves)
    callbacks = tmp_path / "callbacks.yaml"
    callbacks.write_text("trainer:\n  callbacks:\n"
                         "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
                         "      init_args: {save_last: true, every_n_train_steps: 2}\n"
                         "    - class_path: thinkspace.points.PointCloudLogger\n")
    common = ["fit", "--config", str(STAGE1), "--config", str(fragment), "--config", str(callbacks), *TWO_CPUS,
              *PAPER_LIKE, "--trainer.val_check_interval", "8",
              "--model.scheduler.init_args.total_steps", "4"]  # the same schedule for the stopped run
    straight = run_cli(*common, "--run_dir", "runs/straight", "--trainer.max_steps", "4", cwd=tmp_path)
    run_cli(*common, "--run_dir", "runs/resumed", "--trainer.max_steps", "2", cwd=tmp_path)
    proc = run_cli(*common, "--run_dir", "runs/resumed", "--trainer.max_steps", "4", "--ckpt_path", "last",
                   cwd=tmp_path)
    # global batch 8 = 2 ranks x 1 sample x 4 accumulation steps
    assert proc.stderr.count(": step 2, epoch 0, 16 samples seen") == 1
    # validation decoded on both ranks with the Hugging Face step and ended (accuracy logged)
    assert "decoding with the Hugging Face step: sharded weights" in straight.stderr
    assert "val/accuracy" in straight.stdout and "val/accuracy" in proc.stdout
    # 3 decoder layers and 2 vision blocks, the frozen bf16 stem and merger of the vision tower in groups
    # of their own (4), the root with the float32 tied embeddings and heads
    assert "FSDP2: 10 sharded groups over 2 processes (5 units of" in proc.stderr
    a = torch.load(tmp_path / "runs/straight/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "runs/resumed/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():  # one consolidated, unsharded state dict
        assert type(value) is torch.Tensor, name
        assert value.dtype == (torch.bfloat16 if ".visual." in name else torch.float32), name  # frozen vs masters
        torch.testing.assert_close(b["state_dict"][name], value, rtol=0, atol=0, msg=f"{name} differs after resume")
    assert len(a["optimizer_states"][0]["state"]) > 0
    # the consolidated checkpoint exports to a directory plain transformers loads
    run_cli("export", "--ckpt", "runs/straight/checkpoints/last.ckpt", "--config", "runs/straight/config.yaml",
            "--out", "model", cwd=tmp_path)
    from transformers import AutoModelForImageTextToText

    exported = AutoModelForImageTextToText.from_pretrained(tmp_path / "model").state_dict()
    norm = "model.language_model.layers.0.input_layernorm.weight"
    torch.testing.assert_close(exported[norm].float(), a["state_dict"][f"backbone.model.{norm}"].bfloat16().float())


def test_loc3r_fragment_clips_the_whole_sharded_gradient_at_gradient_clip_val(tmp_path):
    fragment = REPO / "configs" / "loc3r" / "scale" / "fsdp_8gpu.yaml"
    probe = tmp_path / "probe.yaml"
    probe.write_text("trainer:\n  callbacks:\n    - class_path: sharded_probe.GradNorms\n"
                     f"      init_args:\n        out_dir: {tmp_path / 'norms'}\n")
    run_cli("fit", "--config", str(JOINT), "--config", str(fragment), "--config", str(probe), *TWO_CPUS,
            *PAPER_LIKE, *NO_VALIDATION, "--data.global_batch_size", "4", "--trainer.max_steps", "3", cwd=tmp_path,
            env=_with_tests_on_path())
    lines = {r: (tmp_path / "norms" / f"rank{r}.txt").read_text().split() for r in (0, 1)}
    norms = [float(x) for x in lines[0]]
    before, after = norms[0::2], norms[1::2]
    assert len(after) == 3
    assert lines[0] == lines[1]  # the norm of the whole gradient, the same on both ranks
    assert min(before) > 2.0  # the random tiny model's gradients (measured 20-27) need clipping
    assert max(after) <= 1.0 + 1e-5 and min(after) > 1.0 - 1e-5  # scaled to gradient_clip_val: 1.0
    state = weights(tmp_path / "runs/joint_tiny/checkpoints/last.ckpt")
    heads = [n for n in state if n.startswith(("objectives.", "cues."))]
    assert heads and all(state[n].dtype == torch.float32 for n in heads)


SGD_NO_CLIP = [  # updates proportional to the gradients: a wrongly weighted mean over ranks would show
    "--model.scheduler", "null", "--model.optimizer", "torch.optim.SGD", "--model.optimizer.init_args.lr", "0.1",
    "--trainer.gradient_clip_val", "null", "--trainer.max_steps", "3",
]


def _sharded_and_one_process(tmp_path, precision):
    common = ["fit", "--config", str(QUICKSTART), *FAST, *SGD_NO_CLIP, "--trainer.precision", precision]
    run_cli(*common, "--run_dir", "runs/fsdp2", "--data.batch_size", "2", *FSDP2, "--trainer.devices", "2",
            cwd=tmp_path)
    run_cli(*common, "--run_dir", "runs/one", "--data.batch_size", "4", cwd=tmp_path)
    sharded, one = weights(tmp_path / "runs/fsdp2/checkpoints/last.ckpt"), weights(tmp_path / "runs/one/checkpoints/last.ckpt")
    assert sharded.keys() == one.keys()
    return sharded, one


def test_two_sharded_processes_equal_one_process_in_fp32(tmp_path):
    sharded, one = _sharded_and_one_process(tmp_path, "32-true")
    # the same sums in another order (reduce-scatter of two half-batch gradients): float32 rounding;
    # measured at most 1.2e-7
    for name, value in one.items():
        torch.testing.assert_close(sharded[name], value, rtol=1e-4, atol=2e-5, msg=name)


def test_two_sharded_processes_equal_one_process_in_bf16_within_bf16_rounding(tmp_path, qwen25):
    sharded, one = _sharded_and_one_process(tmp_path, "bf16-mixed")
    initial = {f"backbone.{k}": v for k, v in qwen25.state_dict().items()}
    update = torch.cat([(one[k] - initial[k]).flatten() for k in one]).norm()
    gap = torch.cat([(sharded[k] - one[k]).flatten() for k in one]).norm()
    # bf16 keeps 8 significant bits: each rank's half batch rounds its activations and gradients apart
    # from the full batch's (one process splitting the same batch into 2 accumulation steps differs
    # from itself by 0.3% of the update); the layers also compute with bf16 copies of their weights.
    # Measured gap: 0.56% of the update's norm (4.85 after 3 SGD steps at lr 0.1). A wrongly
    # weighted mean over ranks is of the order of the update itself.
    assert gap < 0.02 * update, f"sharded and one-process weights differ by {gap:.4f}, the update is {update:.3f}"


#: std::terminate's message when a C++ thread dies unjoined (seen once from a rank of the decode probe)
TERMINATE = "terminate called without an active exception"


def test_ranks_whose_rows_stop_at_different_steps_decode_what_one_process_decodes(tmp_path):
    """Rank 0's row stops at its 2nd or 3rd token, rank 1's decodes all 24: both ranks step 24 times (every
    step all-gathers each layer) and end with the tokens each prompt gets alone in one unsharded process,
    with thinkspace's decoding and with transformers' ``generate``. Without the agreement rank 0 leaves
    the loop at the first stop test (token 8) and the ranks' collectives mismatch."""
    probe = Path(__file__).parent / "sharded_decode_probe.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **_with_tests_on_path()}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(probe),
               str(tmp_path)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and TERMINATE in proc.stderr:
        # Known, not yet understood: once in CI (2026-12-08, the suite in two workers) a rank aborted in
        # C++ ("terminate called without an active exception") at the first decode; not reproduced in 7
        # runs, pairs at once included. Tracked in the session notes; a second abort, or any other
        # failure, still fails the test, and so does a wrong token.
        warnings.warn(f"sharded decode probe: a rank aborted ({TERMINATE!r}); running it once more")
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    steps = 24
    (row0,), (row1,) = first["sharded"], second["sharded"]
    assert 2 <= len(row0) <= 3 and row0[-1] == first["eos"]  # stopped early
    assert len(row1) == steps and first["eos"] not in row1  # never stopped
    for result in (first, second):
        assert result["sharded"] == result["reference"]
        assert result["sharded_hf"] == result["reference_hf"]
        assert result["decoder_calls"] == 1 + steps  # the prefill, then every step on both ranks
        assert result["decoder_step"].startswith("hugging face: sharded weights")
    assert first["steps"] == len(row0)  # the steps after its row stopped are trimmed from its result
    # both prompts in one sharded batch: prompt 0's row dropped once it stopped, prompt 1's decoded on
    for result in (first, second):
        assert result["together"] == result["alone"] == [row0, row1]
        # a validation batch is decoded on every rank when one rank has a choice question, on none when none has
        assert result["needs"] == [True, False, True]


GRPO = REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"
#: the GRPO fragment's DDP at its smallest: one prompt per rank and step (global batch 2), groups of 4,
#: 20 new tokens (the 12 latent steps, their start and end, 6 sampled), a length reward so the random
#: model's groups have spread (the released rewards are equal within every group here: no gradient);
#: validation generates greedily on 2 held-out prompts, in the sanity check and after step 2
GRPO_SHORT = [
    "--data.global_batch_size", "2", "--model.group_size", "4", "--model.max_new_tokens", "20",
    "--model.rewards.length", "ddp_probe.length_reward", "--data.train.init_args.num_samples", "8",
    "--data.val", "thinkspace.data.datasets.synthetic.SyntheticSpatial", "--data.val.init_args.num_samples", "2",
    "--data.val.init_args.settings", "[leftmost]", "--data.val.init_args.image_size", "56",
    "--data.val.init_args.seed", "1", "--trainer.val_check_interval", "2",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
]


def test_grpo_lora_ddp_fragment_on_two_cpus_trains_the_adapters_resumes_and_exports(tmp_path):
    fragment = REPO / "configs" / "3dthinker" / "scale" / "grpo_lora_ddp_8gpu.yaml"
    every_step = tmp_path / "checkpoints.yaml"  # a checkpoint per step: step 1's is resumed, step 2's compared
    every_step.write_text("trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
                          "      init_args: {save_top_k: -1, every_n_train_steps: 1, filename: 'step{step}'}\n")
    common = ["fit", "--config", str(GRPO), "--config", str(fragment), "--config", str(every_step), *TWO_CPUS,
              *GRPO_SHORT, "--trainer.max_steps", "2"]
    straight = run_cli(*common, "--run_dir", "runs/straight", cwd=tmp_path, env=_with_tests_on_path())
    first = tmp_path / "runs/straight/checkpoints/stepstep=1.ckpt"
    resumed = run_cli(*common, "--run_dir", "runs/resumed", "--ckpt_path", str(first), cwd=tmp_path,
                      env=_with_tests_on_path())
    assert "Resumed from" in resumed.stdout + resumed.stderr and "step 1, epoch 0, 2 samples seen" in resumed.stderr
    for proc in (straight, resumed):  # validation decoded and scored on both ranks
        assert "Using bfloat16 Automatic Mixed Precision" in proc.stderr
        assert "val/rewards/latent3d" in proc.stdout and "val/rewards/length" in proc.stdout
    start = weights(first)
    a = weights(tmp_path / "runs/straight/checkpoints/stepstep=2.ckpt")
    b = weights(tmp_path / "runs/resumed/checkpoints/stepstep=2.ckpt")
    assert a.keys() == b.keys() == start.keys()
    for name, value in a.items():  # the rollouts are seeded by (seed, step, prompt id): a resume is exact
        torch.testing.assert_close(b[name], value, rtol=0, atol=0, msg=f"{name} differs after resume")
    adapters = [n for n in a if ".lora_" in n]
    moved = [n for n in adapters if not torch.equal(a[n], start[n])]
    frozen_moved = [n for n in a if ".lora_" not in n and not torch.equal(a[n], start[n])]
    assert len(moved) == len(adapters) > 0 and not frozen_moved  # only the adapters train, all of them
    # the export merges the adapters: plain transformers loads base + (alpha / r) B A
    run_cli("export", "--ckpt", "runs/straight/checkpoints/stepstep=2.ckpt", "--config",
            "runs/straight/config.yaml", "--out", "model", cwd=tmp_path, env=_with_tests_on_path())
    from transformers import AutoModelForImageTextToText

    exported = AutoModelForImageTextToText.from_pretrained(tmp_path / "model").state_dict()
    prefix = "backbone.model.base_model.model.model.language_model.layers.0.self_attn.q_proj."
    merged = a[prefix + "base_layer.weight"] + 2.0 * a[prefix + "lora_B.default.weight"] @ a[prefix + "lora_A.default.weight"]
    assert not torch.equal(merged, a[prefix + "base_layer.weight"])
    torch.testing.assert_close(exported["model.language_model.layers.0.self_attn.q_proj.weight"], merged,
                               rtol=1e-5, atol=1e-6)
