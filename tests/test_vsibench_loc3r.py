"""VSI-Bench with a Loc3R checkpoint: the eval config keeps the training config's backbone and
cues, questions without a situation are answered with VSI-Bench's own prompt (no pseudo
situation, no ``<Pos><Ori>``) unless asked, and the documented offline path runs end to end."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
import torch
import yaml
from cli_helpers import REPO, run_cli
from test_loc3r_recipe import joint_cli

from thinkspace.backbones import LlavaOneVision
from thinkspace.cues import CameraPrior
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.datasets.vsibench import VSIBench, vsibench_prompt
from thinkspace.data.schema import Situation
from thinkspace.objectives.answer_only import AnswerOnly
from thinkspace.objectives.situation import Situation as SituationObjective
from thinkspace.teachers.vggt import VGGTTeacher

EVAL = REPO / "configs/eval/vsibench_loc3r.yaml"
SYNTHETIC = REPO / "configs/eval/vsibench_loc3r_synthetic.yaml"
QUESTION = vsibench_prompt("How many chairs are in this room?", None)


def test_eval_stack_keeps_the_llava_onevision_backbone_and_the_camera_prior(tmp_path):
    cli = joint_cli(tmp_path, "--config", str(EVAL))
    model, data = cli.model, cli.datamodule
    assert isinstance(model.backbone, LlavaOneVision)
    assert isinstance(model.cues["camera"], CameraPrior) and isinstance(model.cues["camera"].teacher, VGGTTeacher)
    assert str(model.cues["camera"].cache_dir) == "data/vggt_cameras"
    assert set(model.objectives) == {"text", "layout", "situation"}
    assert model.objectives["situation"].pseudo_situation_at_eval is False
    assert model.generation == {"max_new_tokens": 16, "do_sample": False}
    test = data.datasets["test"]
    assert isinstance(test, VSIBench) and test.num_frames == 32 and test.frame_sampling == "linspace"
    assert data.batch_size == 8


def test_eval_fragments_hold_the_benchmark_of_configs_eval_vsibench():
    """The Loc3R fragments name no backbone and no cue; their benchmark is vsibench.yaml's (no drift)."""
    qwen = yaml.safe_load((REPO / "configs/eval/vsibench.yaml").read_text())
    assert qwen["model"]["backbone"]["class_path"] == "thinkspace.backbones.QwenVL"  # why a fragment is needed
    for path, base in ((EVAL, "configs/loc3r/joint.yaml"), (SYNTHETIC, "configs/loc3r/joint_tiny.yaml")):
        raw = yaml.safe_load(path.read_text())
        assert path.read_text().splitlines()[0] == f"# base: {base}"
        assert set(raw["model"]) == {"generation"}, path
        assert raw["model"]["generation"] == qwen["model"]["generation"]
        test = raw["data"]["test"]
        assert test["class_path"] == qwen["data"]["test"]["class_path"]
        assert test["init_args"]["frame_sampling"] == "linspace"
    assert yaml.safe_load(EVAL.read_text())["data"] == qwen["data"]


@pytest.fixture(scope="module")
def llava_with_situation(tiny_cache):
    backbone = LlavaOneVision("tiny:llava_onevision")  # its own copy: the objective adds tokens
    objective = SituationObjective()
    objective.name = "situation"
    objective.setup(backbone)
    return backbone, objective


def vsi_sample(situation: Situation | None = None, seed: int = 0):
    sample = next(iter(ColouredSquares(1, image_size=(56, 56), num_views=2, seed=seed)))
    return replace(sample, prompt=QUESTION, response=None, situation=situation,
                   timestamps=torch.tensor([0.0, 0.5]))  # a two-frame video, as VSI-Bench's


def prompt_ids(backbone, objectives, samples):
    return backbone.collator(objectives, None, with_response=False)(samples).inputs["input_ids"]


def test_answering_keeps_the_official_prompt_token_for_token(llava_with_situation):
    backbone, objective = llava_with_situation
    sample = vsi_sample()
    official = prompt_ids(backbone, {}, [sample])[0]
    trained = prompt_ids(backbone, {"situation": objective}, [sample])[0]
    answered = prompt_ids(backbone, {"situation": AnswerOnly(objective)}, [sample])[0]
    assert torch.equal(answered, official)
    assert not bool(((answered == objective.pos_id) | (answered == objective.ori_id)).any())
    text = backbone.processor.tokenizer.decode(trained)
    assert "I am standing in the room. <Pos><Ori>\n" + QUESTION in text
    assert len(trained) == len(official) + len(backbone.processor.tokenizer(
        "I am standing in the room. <Pos><Ori>\n", add_special_tokens=False)["input_ids"])
    assert objective.prepare_for_answer(sample).prompt == QUESTION
    assert objective.prepare(sample).prompt == "I am standing in the room. <Pos><Ori>\n" + QUESTION


def test_pseudo_situation_at_eval_gives_the_training_prompt(llava_with_situation):
    backbone, objective = llava_with_situation
    sample = vsi_sample()
    objective.pseudo_situation_at_eval = True
    try:
        answered = prompt_ids(backbone, {"situation": AnswerOnly(objective)}, [sample])[0]
    finally:
        objective.pseudo_situation_at_eval = False
    assert torch.equal(answered, prompt_ids(backbone, {"situation": objective}, [sample])[0])


def test_a_situated_question_is_answered_with_its_tokens_and_located(llava_with_situation):
    """SQA3D-style samples keep ``<Pos><Ori>`` when answered; in a batch mixed with VSI-Bench
    questions only they are located, as they are alone."""
    backbone, objective = llava_with_situation
    situated = vsi_sample(Situation((1.0, 2.0), 0.5, "I face the door."), seed=1)
    assert objective.prepare_for_answer(situated).prompt == "I face the door. <Pos><Ori>\n" + QUESTION
    collate = backbone.collator({"situation": AnswerOnly(objective)}, None, with_response=False)
    mixed = collate([vsi_sample(), situated])
    alone = collate([situated])
    assert mixed.targets["situation"] is None  # answering computes no training targets
    assert objective.locates(mixed) == [False, True]
    with torch.no_grad():
        located = objective.locate(backbone(mixed), mixed)
        reference = objective.locate(backbone(alone), alone)[0]
    assert located[0] is None and located[1] == pytest.approx(reference, abs=1e-4)


def test_test_and_predict_loaders_answer_videos_without_depth(tiny_cache):
    """The issue's "sample '10' (vsibench) has no depth": training needs the layout targets, the
    test and predict loaders of a Loc3R stack (``require_depth: true``) compute none."""
    from types import SimpleNamespace

    from thinkspace.backbones import QwenVL
    from thinkspace.data.datamodule import SpatialDataModule
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.objectives.layout import LayoutReconstruction

    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={
        "layout": LayoutReconstruction(require_depth=True), "situation": SituationObjective()})
    sample = replace(vsi_sample(), id="10", source="vsibench", geometry=None, response="3")
    with pytest.raises(ValueError, match=r"sample '10' \(vsibench\) has no depth"):
        module.collator()([sample])
    data = SpatialDataModule(test=[sample], predict=[sample], num_workers=0)
    data.trainer = SimpleNamespace(lightning_module=module, global_rank=0, world_size=1,
                                   strategy=SimpleNamespace(root_device=torch.device("cpu")))
    for loader in (data.test_dataloader(), data.predict_dataloader()):
        batch = next(iter(loader))
        assert batch.targets == {"layout": None, "situation": None} and batch.texts == [QUESTION]
        assert not bool((batch.inputs["input_ids"] == module.objectives["situation"].pos_id).any())


def test_synthetic_walks_are_read_with_their_depth_and_poses():
    """A synthetic VSI-style record's ``sequence`` under ``scannet_root``: posed frames, one scan name
    per walk; without ``scannet_root`` the mp4, no geometry."""
    from synth_helpers import read_depth, synth_tree

    out = synth_tree(3, "video")
    path = str(out / "vsibench/test.jsonl")
    posed = VSIBench(path, video_root=str(out), scannet_root=str(out), num_frames=3, fps=4.0,
                     frame_sampling="linspace")[0]
    walk = out / "scenes/scene00009/video"
    assert posed.meta["scan"] == "scenes/scene00009/video" and posed.meta["frame_indices"] == [0, 2, 5]
    assert posed.timestamps.tolist() == [0.0, 0.5, 1.25]  # frame number / 4 fps
    assert posed.geometry.depth.shape == (3, 64, 64)
    assert torch.allclose(posed.geometry.depth[1], torch.from_numpy(read_depth(walk, 2)).float(), atol=1e-6)
    centre = torch.linalg.inv(posed.geometry.cam_from_world[0].double())[:3, 3]
    assert torch.allclose(centre, torch.zeros(3, dtype=torch.float64), atol=1e-5)  # world origin: first camera
    plain = VSIBench(path, video_root=str(out), num_frames=3, frame_sampling="linspace")[0]
    assert plain.geometry is None and plain.meta["scan"] == "scenes/scene00009/video/video.mp4"
    assert plain.prompt == posed.prompt
    # the walk's length both ways: its frame folder's 6 frames / 4 fps, and decord's count / fps of its mp4
    assert posed.meta["video_duration"] == 1.5 and plain.meta["video_duration"] == pytest.approx(1.5)


def documented_commands() -> list[list[str]]:
    """The synth, fit and test commands in vsibench_loc3r_synthetic.yaml's header, as arguments."""
    header = "\n".join(line[2:] for line in SYNTHETIC.read_text().splitlines() if line.startswith("#   "))
    return [cmd.split()[1:] for cmd in header.replace("\\\n", " ").splitlines()]


@pytest.mark.slow  # 10 rooms, a 2-step fit, 6 answers and a camera cache: about 40 s on a loaded machine
def test_documented_offline_path_scores_a_tiny_loc3r_checkpoint(tmp_path):
    synth, fit, test = documented_commands()
    assert synth[0] == "synth" and fit[0] == "fit" and test[0] == "test"
    assert test[1:5] == ["--config", "configs/loc3r/joint_tiny.yaml", "--config",
                         "configs/eval/vsibench_loc3r_synthetic.yaml"]
    def repo(args):
        return [str(REPO / a) if a.startswith("configs/") else a for a in args]
    run_cli(*synth, "--workers", "1", "--quiet", cwd=tmp_path)
    run_cli(*repo(fit), "--trainer.max_steps", "2", "--data.batch_size", "2", "--data.num_workers", "0",
            "--data.val", "null", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    proc = run_cli(*repo(test), "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    assert "vsibench: 6 records" in proc.stdout
    out = tmp_path / "runs/joint_tiny_vsibench"
    gold = [json.loads(line) for line in (tmp_path / "data/synthetic_video/vsibench/test.jsonl").open()]
    rows = [json.loads(line) for line in (out / "predictions_test_vsibench.jsonl").open()]
    assert [r["id"] for r in rows] == [g["id"] for g in gold] and len(rows) == 6
    assert all(isinstance(r["prediction"], str) and "situation" not in r for r in rows)
    assert all(re.fullmatch(r"scenes/scene00009/video", r["sequence"]) for r in rows)
    scores = json.loads((out / "scores_test_vsibench.json").read_text())
    assert scores["n"] == 6 and 0.0 <= scores["overall"] <= 100.0
    # the cache step of the docs on the same stack: the camera prior runs once per test video
    cache = run_cli("cache-teacher", *repo(test[1:5]), "--out", "cameras", "--split", "test", "--parts", "camera",
                    cwd=tmp_path)
    assert "6 questions, 1 distinct keys (scan, frames, size), 1 written" in cache.stdout + cache.stderr
