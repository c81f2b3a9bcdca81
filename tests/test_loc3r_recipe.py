"""configs/loc3r/joint.yaml holds the paper's recipe: global batch 64 on any device count, the
four-dataset mixture with scans as video, and VSI-Bench evaluated with the official sampling."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from benchmark_fixtures import scannet_mesh, scannet_scene, sqa3d, vsibench
from test_scanqa_msqa import ALIGN, MSQA_RECORD, SCANQA_TRAIN
from thinkspace.backbones import LlavaOneVision
from thinkspace.lightning_cli import ThinkspaceCLI
from thinkspace.cues import CameraPrior
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.mixture import Mixture
from thinkspace.data.datasets.msqa import MSQA
from thinkspace.data.datasets.scanqa import ScanQA
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.datasets.vsibench import VSIBench
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import TextCrossEntropy
from thinkspace.objectives.layout import LayoutReconstruction
from thinkspace.objectives.situation import Situation
from thinkspace.teachers.oracle import OracleGeometryTeacher

from cli_helpers import REPO

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


def test_the_joint_stack_takes_one_batch_of_the_four_adapters(tmp_path, tiny_cache):
    """SQA3D, ScanQA, MSQA and VSI-style ScanNet samples as videos in one LLaVA-OneVision batch,
    with the camera prior, layout and situation objectives: every term finite, targets where due."""
    questions, annotations = sqa3d(tmp_path)  # writes tmp_path/scans/scene0000_00
    scans = tmp_path / "scans"
    (scans / "scene0000_00" / "scene0000_00.txt").write_text(
        "axisAlignment = " + " ".join(str(v) for v in ALIGN.flatten()) + "\n")
    (tmp_path / "scanqa.json").write_text(json.dumps([SCANQA_TRAIN]))
    (tmp_path / "msqa.json").write_text(json.dumps([MSQA_RECORD]))
    scannet_mesh(scans / "scene0000_00", (-1.0, 0.5, 0.0), (3.0, 2.5, 2.4))  # SQA3D's frame: its centre
    vsi = vsibench(tmp_path / "vsi")
    scannet_scene(tmp_path / "vsi_scans")
    mix = Mixture([
        SQA3D(str(questions), str(annotations), scannet_root=str(scans), num_frames=3),
        ScanQA(str(tmp_path / "scanqa.json"), scannet_root=str(scans), num_frames=3),
        MSQA(str(tmp_path / "msqa.json"), scannet_root=str(scans), num_frames=3),
        VSIBench(str(vsi), scannet_root=str(tmp_path / "vsi_scans"), num_frames=3, limit=1),
    ], weights=[1.0, 1.0, 1.0, 1.0])
    samples = [mix[i] for i in range(len(mix))]
    assert [s.source for s in samples] == ["sqa3d", "scanqa", "msqa", "vsibench"]
    assert all(s.is_video and s.geometry.depth is not None for s in samples)
    torch.manual_seed(0)
    module = SpatialVLM(LlavaOneVision("tiny:llava_onevision"),
                        objectives={"text": TextCrossEntropy(), "layout": LayoutReconstruction(weight=0.05),
                                    "situation": Situation(weight=0.075, orientation_weight=3.5)},
                        cues={"camera": CameraPrior(OracleGeometryTeacher())})
    batch = module.collator()(samples)
    assert batch.targets["layout"]["valid"].all()  # every scan has depth and poses
    assert batch.targets["situation"][:, 3].tolist() == [1.0, 0.0, 1.0, 0.0]  # SQA3D and MSQA are situated
    assert int((batch.inputs["input_ids"] == module.cues["camera"].token_id).sum()) == 4 * 3  # one per frame
    total, terms = module.losses(batch)
    assert {"text.ce", "layout.nll", "situation.position", "situation.orientation"} <= set(terms)
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in terms.values())
    total.backward()  # the camera tokens inside the video block reach the loss
    assert module.cues["camera"].mlp[0].weight.grad.abs().sum() > 0
