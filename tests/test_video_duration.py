"""A video's whole length in ``meta["video_duration"]`` (seconds), set by each video reader as the
original LLaVA-Video loader reads it (total frames / fps), and said by the time instruction."""

import json

import pytest
from benchmark_fixtures import image, scannet_scene, sqa3d, video, vsibench

from thinkspace.backbones.llava_onevision.time_instruction import time_instruction
from thinkspace.data.datasets.scannet import load_posed_frames
from thinkspace.data.datasets.scanqa import ScanQA
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.data.datasets.vsibench import VSIBench
from thinkspace.data.schema import VIDEO_DURATION
from thinkspace.data.video import read_video
from thinkspace.inference.inputs import question_sample


def test_scannet_export_lasts_its_capture_frame_count_over_fps(tmp_path):
    scene = scannet_scene(tmp_path)  # colour frames 0..3, frame 2's pose lost
    assert load_posed_frames(scene, 3).duration == pytest.approx(4 / 30)  # 4 frames at 30 fps, not 3 / 30
    assert load_posed_frames(scene, 2, fps=24.0).duration == pytest.approx(4 / 24)
    image(scene / "color" / "5.jpg", (0, 0, 0))  # a lost tail frame: no pose, no depth; still the video's
    posed = load_posed_frames(scene, 3)
    assert posed.indices == [0, 1, 3] and posed.duration == pytest.approx(6 / 30)


def test_scanqa_and_sqa3d_videos_carry_the_scan_duration(tmp_path):
    questions, annotations = sqa3d(tmp_path)
    sample = SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), frame="scene",
                   num_frames=3)[0]
    assert sample.meta[VIDEO_DURATION] == pytest.approx(4 / 30)
    images = SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), frame="scene",
                   num_frames=3, as_video=False)[0]
    assert images.timestamps is None and VIDEO_DURATION not in images.meta  # an image set has no length
    path = tmp_path / "scanqa.json"
    path.write_text(json.dumps([{"question": "What is by the door?", "question_id": "q0", "answers": ["a chair"],
                                 "scene_id": "scene0000_00"}]))
    scanqa = ScanQA(str(path), scannet_root=str(tmp_path / "scans"), num_frames=3)[0]
    assert scanqa.meta[VIDEO_DURATION] == pytest.approx(4 / 30)


def test_vsibench_mp4_lasts_decords_frame_count_over_fps_and_the_instruction_says_so(tmp_path):
    path = vsibench(tmp_path)  # scene0000_00.mp4: 8 frames at 4 fps
    clip = read_video(tmp_path / "scannet" / "scene0000_00.mp4", 3, sampling="linspace")
    assert (clip.total_frames, clip.fps, clip.duration) == (8, pytest.approx(4.0), pytest.approx(2.0))
    sample = VSIBench(str(path), num_frames=3, frame_sampling="linspace")[0]
    assert sample.timestamps.tolist() == pytest.approx([0.0, 0.75, 1.75])
    assert sample.meta[VIDEO_DURATION] == pytest.approx(2.0)
    assert time_instruction(sample) == (
        "The video lasts for 2.00 seconds, and 3 frames are uniformly sampled from it. These frames are located "
        "at 0.00s,0.75s,1.75s.Please answer the following questions related to this video.")  # not 1.75 seconds
    scannet_scene(tmp_path / "scans")  # the same record read from the ScanNet export: the capture's length
    scan = VSIBench(str(path), scannet_root=str(tmp_path / "scans"), num_frames=3)[0]
    assert scan.meta[VIDEO_DURATION] == pytest.approx(4 / 30)
    assert time_instruction(scan).startswith("The video lasts for 0.13 seconds, and 3 frames")


def test_vsibench_keeps_a_short_videos_length(tmp_path):
    video(tmp_path / "scannet" / "scene0000_00.mp4", frames=3, fps=2.0)
    (tmp_path / "test.jsonl").write_text(json.dumps({
        "id": 1, "dataset": "scannet", "scene_name": "scene0000_00", "question_type": "object_counting",
        "question": "How many chair(s) are in this room?", "options": None, "ground_truth": "4"}) + "\n")
    sample = VSIBench(str(tmp_path / "test.jsonl"), num_frames=8)[0]  # fewer frames than asked: all 3
    assert len(sample.timestamps) == 3 and sample.meta[VIDEO_DURATION] == pytest.approx(1.5)


def test_synthetic_walk_lasts_frames_over_fps():
    sample = SyntheticSpatial(1, kind="video", settings=["object_counting"], image_size=32, num_frames=4, fps=2.0,
                              num_objects=(1, 2))[0]
    assert sample.timestamps.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert sample.meta[VIDEO_DURATION] == 2.0
    assert time_instruction(sample).startswith("The video lasts for 2.00 seconds, and 4 frames")
    views = SyntheticSpatial(1, kind="views", settings=["leftmost"], image_size=32, num_objects=(3, 3))[0]
    assert VIDEO_DURATION not in views.meta


def test_an_asked_video_lasts_decords_frame_count_over_fps(tmp_path):
    sample = question_sample(video(tmp_path / "walk.mp4", frames=6, fps=3.0), "How many chairs?", num_frames=2)
    assert sample.timestamps.tolist() == pytest.approx([1 / 3, 4 / 3])  # segment centres 1 and 4
    assert sample.meta[VIDEO_DURATION] == pytest.approx(2.0)
