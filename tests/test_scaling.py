"""Scale-out settings: the multi-GPU configs, FSDP's units and the global batch."""

import pytest
import torch
import yaml
from lightning.pytorch import LightningModule
from lightning.pytorch.strategies import DeepSpeedStrategy

from cli_helpers import FAST, QUICKSTART, REPO, run_cli, weights
from thinkspace.lightning_cli import ThinkspaceCLI
from thinkspace.data.datamodule import SpatialDataModule, accumulation_steps
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.training.fsdp2 import FSDP2
from thinkspace.training.strategies import DDP, layer_classes

SCALE = sorted(REPO.glob("configs/*/scale/*.yaml"))
TINY = {"stage1.yaml": "tiny:qwen2_5_vl", "joint.yaml": "tiny:llava_onevision", "stage2_grpo.yaml": "tiny:qwen2_5_vl"}


def test_accumulation_follows_the_global_batch():
    assert accumulation_steps(64, processes=8, batch_size=1) == 8
    assert accumulation_steps(64, processes=8, batch_size=1, configured=8) == 8
    assert accumulation_steps(8, processes=8, batch_size=1) == 1
    with pytest.raises(ValueError, match=r"global_batch_size 64 is not a multiple of processes x data.batch_size "
                                         r"= 8 x 3 = 24"):
        accumulation_steps(64, processes=8, batch_size=3)
    with pytest.raises(ValueError, match=r"accumulate_grad_batches 4 disagrees with data.global_batch_size 64 = "
                                         r"8 processes x batch 1 x 8 accumulation steps"):
        accumulation_steps(64, processes=8, batch_size=1, configured=4)


@pytest.mark.slow
def test_global_batch_trains_like_the_same_accumulation(tmp_path):
    common = ["fit", "--config", str(QUICKSTART), *FAST, "--trainer.max_steps", "2", "--data.batch_size", "2"]
    run_cli(*common, "--data.global_batch_size", "6", "--run_dir", "runs/global", cwd=tmp_path)
    run_cli(*common, "--trainer.accumulate_grad_batches", "3", "--run_dir", "runs/accumulate", cwd=tmp_path)
    a = weights(tmp_path / "runs/global/checkpoints/last.ckpt")
    b = weights(tmp_path / "runs/accumulate/checkpoints/last.ckpt")
    assert all((a[k] == b[k]).all() for k in b)


@pytest.mark.slow
def test_a_global_batch_that_does_not_divide_fails_before_training(tmp_path):
    proc = run_cli("fit", "--config", str(QUICKSTART), *FAST, "--data.batch_size", "3",
                   "--data.global_batch_size", "8", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "data.global_batch_size 8 is not a multiple of processes x data.batch_size = 1 x 3 = 3" in proc.stderr
    assert not (tmp_path / "runs/quickstart/checkpoints").exists()


@pytest.mark.slow
def test_more_gpus_than_the_machine_has_is_a_clear_error(tmp_path):
    proc = run_cli("fit", "--config", str(QUICKSTART), *FAST, "--trainer.accelerator", "gpu",
                   "--trainer.devices", "8", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "trainer.devices asks for 8 GPUs but this machine has 0 (torch.cuda.device_count())" in proc.stderr


@pytest.mark.parametrize(("backbone", "expected", "decoder"), [
    ("qwen25", {"Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock"}, "Qwen2_5_VLDecoderLayer"),
    ("llava_onevision", {"Qwen2DecoderLayer", "SiglipEncoderLayer"}, "Qwen2DecoderLayer"),
    ("composed", {"Qwen2DecoderLayer", "Block"}, "Qwen2DecoderLayer"),  # timm's ViT Block
])
def test_fsdp_units_are_the_models_own_layers(backbone, expected, decoder, request):
    model = request.getfixturevalue(backbone).model
    assert expected <= {c.__name__ for c in layer_classes(model)}
    assert [c.__name__ for c in layer_classes(model, [decoder])] == [decoder]


def test_fsdp_names_a_layer_class_that_is_not_there(qwen25):
    model = qwen25.model
    with pytest.raises(ValueError, match=r"strategy.init_args.wrap names \['LlamaDecoderLayer'\], not found in the "
                                         r"model; its layer and block classes are \[.*'Qwen2_5_VLDecoderLayer'"):
        layer_classes(model, ["Qwen2_5_VLDecoderLayer", "LlamaDecoderLayer"])


def test_there_are_scale_configs():
    assert {p.name for p in SCALE} >= {"fsdp_8gpu.yaml", "deepspeed_zero3.yaml", "grpo_lora_ddp_8gpu.yaml"}


@pytest.mark.parametrize("config", SCALE, ids=[str(p.relative_to(REPO / "configs")) for p in SCALE])
def test_scale_config_builds_its_strategy_for_8_processes(config, tmp_path):
    if "deepspeed" in config.name:
        pytest.importorskip("deepspeed", reason="the deepspeed extra (CI installs it: .ci/run)")
    base = REPO / next(line.split(":", 1)[1].strip() for line in config.read_text().splitlines()
                       if line.startswith("# base:"))
    selected = "class_path" in yaml.safe_load(base.read_text())["model"]  # GRPO names its LightningModule
    cli = ThinkspaceCLI(
        LightningModule if selected else SpatialVLM, SpatialDataModule, subclass_mode_model=selected, run=False,
        save_config_callback=None, parser_kwargs={"parser_mode": "omegaconf"}, auto_configure_optimizers=False,
        args=["--config", str(base), "--config", str(config), "--model.backbone.init_args.path", TINY[base.name],
              "--trainer.logger", "false", "--trainer.accelerator", "cpu",  # up to where a GPU is needed
              "--trainer.default_root_dir", str(tmp_path)],
    )
    raw = yaml.safe_load(config.read_text())
    trainer = cli.trainer
    assert trainer.world_size == 8 and trainer.num_nodes == 1
    assert trainer.precision == "bf16-mixed"
    assert cli.datamodule.global_batch_size == raw["data"]["global_batch_size"]
    assert accumulation_steps(cli.datamodule.global_batch_size, trainer.world_size, cli.datamodule.batch_size) == (
        raw["data"]["global_batch_size"] // 8)
    if "grpo" in config.name:  # LoRA under DDP: only the adapters train
        assert type(trainer.strategy) is DDP and type(cli.model).__name__ == "SpatialGRPO"
        assert trainer.strategy._ddp_kwargs["gradient_as_bucket_view"] is True  # no second gradient copy
        assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is False
        trainable = [n for n, p in cli.model.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in n for n in trainable)
        assert cli.model.reference_kind == "adapter" and cli.model.group_size == 8
        return
    if "fsdp" in config.name:  # FSDP2: Lightning's autocast plugin (it clips), bf16 layers, fp32 reductions
        assert type(trainer.precision_plugin).__name__ == "MixedPrecision"
        assert isinstance(trainer.strategy, FSDP2)
        unit, other = trainer.strategy.policies()
        assert (unit.param_dtype, unit.reduce_dtype, other.param_dtype) == (torch.bfloat16, torch.float32, None)
        assert not trainer.strategy._save_distributed_checkpoint  # one .ckpt that export reads
        units = {c.__name__ for c in layer_classes(cli.model.backbone.model)}
        assert any("DecoderLayer" in u for u in units) and len(units) >= 2
    else:
        assert type(trainer.precision_plugin).__name__ == "DeepSpeedPrecision"
        assert isinstance(trainer.strategy, DeepSpeedStrategy)
        assert trainer.strategy.config["zero_optimization"]["stage"] == 3
    assert cli.model.backbone.hf.is_gradient_checkpointing
