"""configs/loc3r/joint.yaml holds the paper's recipe: global batch 64 on any device count, the
four-dataset mixture with scans as video, and VSI-Bench evaluated with the official sampling."""

from pathlib import Path

import pytest
import yaml

from thinkspace.cli import ThinkspaceCLI
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.mixture import Mixture
from thinkspace.data.datasets.msqa import MSQA
from thinkspace.data.datasets.scanqa import ScanQA
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.datasets.vsibench import VSIBench
from thinkspace.modules.spatial_vlm import SpatialVLM

REPO = Path(__file__).resolve().parents[1]
JOINT = REPO / "configs/loc3r/joint.yaml"


def joint_cli(tmp_path, *args):
    return ThinkspaceCLI(
        SpatialVLM, SpatialDataModule, run=False, save_config_callback=None,
        parser_kwargs={"parser_mode": "omegaconf"}, auto_configure_optimizers=False,
        args=["--config", str(JOINT), "--model.backbone.init_args.path", "tiny:llava_onevision",
              "--trainer.logger", "false", "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path),
              *args],
    )


@pytest.mark.parametrize(("devices", "accumulation"), [(1, 64), (8, 8)])
def test_global_batch_64_resolves_to_the_accumulation_of_any_device_count(tmp_path, devices, accumulation):
    cli = joint_cli(tmp_path, "--trainer.devices", str(devices))
    trainer, data = cli.trainer, cli.datamodule
    assert trainer.world_size == devices and data.batch_size == 1 and data.global_batch_size == 64
    data.trainer = trainer
    data.setup("fit")  # what Lightning calls before the first step
    assert trainer.accumulate_grad_batches == accumulation
    assert devices * data.batch_size * trainer.accumulate_grad_batches == 64


def test_joint_mixture_names_the_papers_four_datasets_as_video(tmp_path):
    mix = joint_cli(tmp_path).datamodule.datasets["train"]
    assert isinstance(mix, Mixture) and mix.weights == [1.0, 1.0, 1.0, 1.0]
    assert [type(d) for d in mix.datasets] == [SQA3D, ScanQA, MSQA, VSIBench]
    sqa3d, scanqa, msqa, vsi = mix.datasets
    assert sqa3d.as_video and scanqa.as_video and msqa.as_video and msqa.axis_align
    assert {d.num_frames for d in mix.datasets} == {32}
    assert vsi.scannet_root == Path("data/ScanNet/frames")  # ScanNet scans get depth and poses: layout targets
    raw = yaml.safe_load(JOINT.read_text())
    assert "accumulate_grad_batches" not in raw["trainer"]  # derived from the global batch, never fixed to 8 GPUs
    assert raw["model"]["optimizer"]["init_args"]["lr"] == 1.0e-5 and raw["trainer"]["max_epochs"] == 1


def test_vsibench_eval_config_samples_frames_as_the_official_evaluation():
    raw = yaml.safe_load((REPO / "configs/eval/vsibench.yaml").read_text())
    assert raw["data"]["test"]["init_args"]["frame_sampling"] == "linspace"
    assert raw["data"]["test"]["init_args"]["num_frames"] == 32
