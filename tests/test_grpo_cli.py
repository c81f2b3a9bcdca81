"""``thinkspace fit`` runs GRPO from a config that names SpatialGRPO; resume continues it."""

from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli_helpers import REPO, run_cli

pytestmark = pytest.mark.slow
TINY = REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"
FAST = ["--model.group_size", "4", "--model.max_new_tokens", "16", "--data.batch_size", "2",
        "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]


def scalars(run: Path, tag: str) -> list[float]:
    values = []
    for events in sorted(run.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            values += [e.value for e in acc.Scalars(tag)]
    return values


def test_fit_runs_grpo_logs_every_reward_and_resumes(tmp_path):
    run_cli("fit", "--config", str(TINY), "--run_dir", "runs/g", "--trainer.max_steps", "2", *FAST, cwd=tmp_path)
    run = tmp_path / "runs" / "g"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["class_path"] == "thinkspace.rl.SpatialGRPO"
    assert config["model"]["init_args"]["group_size"] == 4
    for name in ("format", "answer", "latent3d", "total"):
        means = scalars(run, f"train/rewards/{name}/mean")
        assert len(means) == 2 and all(0.0 <= v <= 3.0 for v in means), name
        assert len(scalars(run, f"train/rewards/{name}/zero_spread")) == 2
    assert len(scalars(run, "train/loss")) == 2 and all(v >= 0 for v in scalars(run, "train/kl"))
    assert scalars(run, "train/samples") == [8.0, 16.0]  # throughput counts completions: 2 prompts x G 4
    lengths = scalars(run, "train/lengths")  # prompt tokens once + completion tokens, per step
    assert len(lengths) == 2 and lengths[1] - lengths[0] > 8 * 12  # 8 completions, each at least the latent slot
    assert not scalars(run, "train/device/flops_per_sec")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2
    keys = ckpt["state_dict"].keys()
    assert any("lora_A" in k for k in keys) and not any("_reference" in k for k in keys)

    run_cli("fit", "--config", str(TINY), "--run_dir", "runs/g", "--trainer.max_steps", "3", "--ckpt_path", "last",
            *FAST, cwd=tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 3


def test_stage1_overrides_still_select_spatial_vlm(tmp_path):
    """Configs without a class_path keep SpatialVLM and its override paths."""
    from thinkspace.lightning_cli import names_model_class

    quick = str(REPO / "configs" / "quickstart.yaml")
    assert not names_model_class(["fit", "--config", quick, "--model.objectives.text.init_args.weight", "0.1"])
    assert names_model_class(["fit", "--config", str(TINY)])
    assert names_model_class(["fit", f"--config={TINY}"])
    assert names_model_class(["fit", "--model", "thinkspace.rl.SpatialGRPO"])


def test_reward_overrides_on_the_command_line(tmp_path):
    """`--model.rewards.<name> null` drops a reward (its weight too); a dotted path adds one."""
    from lightning.pytorch import LightningModule

    from thinkspace.lightning_cli import ThinkspaceCLI
    from thinkspace.data.datamodule import SpatialDataModule
    from thinkspace.rl.rewards import format_reward

    cli = ThinkspaceCLI(LightningModule, SpatialDataModule, subclass_mode_model=True, run=False,
                        save_config_callback=None, parser_kwargs={"parser_mode": "omegaconf"},
                        auto_configure_optimizers=False,
                        args=["--config", str(TINY), "--trainer.logger", "false",
                              "--trainer.default_root_dir", str(tmp_path), "--model.rewards.format", "null",
                              "--model.rewards.mine", "thinkspace.rl.rewards.format_reward",
                              "--model.reward_weights.answer", "0.5"])
    rewards = cli.model.rewards
    assert rewards.names == ["answer", "latent3d", "mine"]
    assert rewards.weights == {"answer": 0.5, "latent3d": 1.0, "mine": 1.0}
    assert rewards.functions["mine"] is format_reward
