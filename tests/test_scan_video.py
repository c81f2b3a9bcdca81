"""Scans as video: frame sampling rules, capture timestamps, visual-token counts, camera tokens
interleaved per frame on LLaVA-OneVision, and layout targets for VSI-style ScanNet videos."""

import math

import numpy as np
import pytest
import torch

from benchmark_fixtures import scannet_scene, sqa3d, video, vsibench
from thinkspace.backbones import LlavaOneVision
from thinkspace.cues import CameraPrior
from thinkspace.data.datasets.scannet import load_posed_frames
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.datasets.vsibench import VSIBench
from thinkspace.data.video import linspace_indices, read_video, sample_indices
from thinkspace.objectives import TextCrossEntropy
from thinkspace.objectives.layout import LayoutReconstruction
from thinkspace.teachers.oracle import OracleGeometryTeacher


@pytest.mark.parametrize(("total", "num", "expected"), [
    (10, 4, [0, 3, 6, 9]), (20, 4, [0, 6, 12, 19]), (5, 5, [0, 1, 2, 3, 4]), (7, 1, [0]), (100, 3, [0, 49, 99]),
])
def test_linspace_indices_are_vsibench_official_rule(total, num, expected):
    # the official call, lmms_eval/models/llava_vid.py: np.linspace(0, total - 1, num, dtype=int)
    assert linspace_indices(total, num) == expected == np.linspace(0, total - 1, num, dtype=int).tolist()
    assert sample_indices(total, num, "linspace") == expected


def test_sampling_rules_differ_and_bad_input_is_named():
    assert sample_indices(10, 4, "segment_centres") == [1, 3, 6, 8]  # centres of [0, 2.5), [2.5, 5), ...
    with pytest.raises(ValueError, match=r"requested 9 frames from a video of 8"):
        linspace_indices(8, 9)
    with pytest.raises(ValueError, match=r"frame_sampling 'evenly' is not known; expected one of "
                                         r"\['segment_centres', 'linspace'\]"):
        sample_indices(8, 2, "evenly")


def test_read_video_by_the_linspace_rule_keeps_both_ends(tmp_path):
    clip = read_video(video(tmp_path / "v.mp4", frames=8, fps=4.0), 3, sampling="linspace")
    assert clip.indices == [0, 3, 7]
    assert clip.timestamps.tolist() == pytest.approx([0.0, 0.75, 1.75])


def test_scannet_frames_are_timed_by_the_30_fps_capture(tmp_path):
    scene = scannet_scene(tmp_path)  # frames 0, 1, 3 posed; 2 lost
    posed = load_posed_frames(scene, 3)
    assert posed.indices == [0, 1, 3]
    assert posed.timestamps.tolist() == pytest.approx([0.0, 1 / 30, 3 / 30])
    ends = load_posed_frames(scene, 2, sampling="linspace", fps=24.0)
    assert ends.indices == [0, 3] and ends.timestamps.tolist() == pytest.approx([0.0, 0.125])
    with pytest.raises(ValueError, match=r"fps must be positive, got 0"):
        load_posed_frames(scene, 2, fps=0)


@pytest.fixture
def sqa3d_files(tmp_path):
    questions, annotations = sqa3d(tmp_path)
    return questions, annotations, tmp_path / "scans"


@pytest.mark.parametrize(("backbone", "video_tokens", "image_tokens"), [
    # Qwen2.5-VL: 32x24 px frames are 2x3 merged tokens; a video pairs frames (3 -> 2 groups)
    ("qwen25", 2 * 6, 3 * 6),
    # LLaVA-OneVision: 2x2 pooled tokens per video frame + 1 newline; 4x4 + 1 newline per image
    ("llava_onevision", 3 * 4 + 1, 3 * (16 + 1)),
])
def test_a_scan_enters_as_video_unless_switched_to_an_image_set(sqa3d_files, backbone, video_tokens, image_tokens,
                                                                request):
    model = request.getfixturevalue(backbone)
    questions, annotations, scans = sqa3d_files
    counts = {}
    for as_video in (True, False):
        sample = SQA3D(str(questions), str(annotations), scannet_root=str(scans), frame="scene", num_frames=3, as_video=as_video)[0]
        assert sample.is_video is as_video
        if as_video:
            assert sample.timestamps.tolist() == pytest.approx([0.0, 1 / 30, 3 / 30])
        ids = model.collator({"text": TextCrossEntropy()})([sample]).inputs["input_ids"][0]
        layout = model.layout()
        counts[as_video] = int(((ids == layout.image_token_id) | (ids == layout.video_token_id)).sum())
    assert counts == {True: video_tokens, False: image_tokens}


def test_camera_tokens_sit_right_before_each_video_frame_on_llava_onevision(sqa3d_files, tiny_cache):
    questions, annotations, scans = sqa3d_files
    sample = SQA3D(str(questions), str(annotations), scannet_root=str(scans), frame="scene", num_frames=3)[0]
    backbone = LlavaOneVision("tiny:llava_onevision")  # its own copy: the cue adds a token
    camera = CameraPrior(OracleGeometryTeacher())
    camera.setup(backbone)
    batch = backbone.collator({"camera": camera})([sample])
    ids = batch.inputs["input_ids"][0]
    placeholders = (ids == backbone.layout().video_token_id).nonzero().flatten().tolist()
    cams = (ids == camera.token_id).nonzero().flatten().tolist()
    assert len(placeholders) == 3 * 4 + 1
    assert cams == [placeholders[0] - 1, placeholders[4] - 1, placeholders[8] - 1]
    # a frame's 4 tokens are contiguous, the next camera token follows them, and the newline ends the video
    assert [placeholders[4 * f + 3] + 1 for f in range(2)] == cams[1:]
    assert placeholders[12] == placeholders[11] + 1
    assert batch.visual.positions(0).tolist() == placeholders[:12]
    assert batch.targets["camera"].shape == (3, camera.teacher.channels)
    # the model still writes frame f's pooled features at frame f's positions
    with torch.no_grad():
        embeds = backbone(batch).inputs_embeds[0]
        features = backbone.hf.model.get_video_features(batch.inputs["pixel_values_videos"]).pooler_output[0]
    torch.testing.assert_close(embeds[placeholders[:12]], features[:12], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(embeds[placeholders[12]], backbone.hf.model.image_newline.detach())


def test_vsi_style_scannet_video_gets_layout_targets_from_depth_and_poses(tmp_path):
    path = vsibench(tmp_path)
    scannet_scene(tmp_path / "scans")  # scene0000_00: cameras 1 m apart along the scene's +y, depth 2 m
    sample = VSIBench(str(path), scannet_root=str(tmp_path / "scans"), num_frames=3, frame_sampling="linspace")[0]
    assert sample.meta["frame_indices"] == [0, 1, 3] and sample.is_video and sample.geometry.depth is not None
    assert sample.timestamps.tolist() == pytest.approx([0.0, 1 / 30, 3 / 30])
    xy, valid = LayoutReconstruction().grid_targets(sample, [(2, 2)] * 3)
    assert valid.all()
    # every pixel sees 2 m ahead of its camera; camera f stands f metres along the first camera's heading
    torch.testing.assert_close(xy[:, 0], torch.tensor([2.0] * 4 + [3.0] * 4 + [5.0] * 4))
    assert xy[:, 1].abs().max() < 0.6  # lateral spread of the 2x2 token cells only


def test_vsi_style_video_without_depth_has_no_layout_target(tmp_path):
    path = vsibench(tmp_path)
    sample = VSIBench(str(path), num_frames=4)[0]  # no ScanNet export: the mp4 only
    assert sample.geometry is None and sample.is_video
    xy, valid = LayoutReconstruction(require_depth=False).grid_targets(sample, [(2, 2)] * 4)
    assert xy.shape == (16, 2) and not valid.any()
    with pytest.raises(ValueError, match=r"sample '1' \(vsibench\) has no depth; layout targets need geometry.depth"):
        LayoutReconstruction().grid_targets(sample, [(2, 2)] * 4)


def test_scene_yaw_survives_as_video(sqa3d_files):
    """The video switch changes timing only: frames, geometry and the situation are those of the image set."""
    questions, annotations, scans = sqa3d_files
    as_video, as_images = (SQA3D(str(questions), str(annotations), scannet_root=str(scans), frame="scene", num_frames=3,
                                 as_video=v)[0] for v in (True, False))
    assert as_video.situation == as_images.situation
    assert torch.equal(as_video.geometry.cam_from_world, as_images.geometry.cam_from_world)
    assert math.isclose(as_video.situation.yaw, as_images.situation.yaw)
