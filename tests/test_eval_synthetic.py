"""What ``thinkspace synth --out DIR --scenes 2 --seed 0`` writes loads through the
benchmark adapters, and the SQA3D/ScanNet world frame agrees with the generator's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from thinkspace.data.datasets.mindcube import MindCube
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.datasets.vsibench import VSIBench
from thinkspace.eval import SCORERS

FRAMES = 6


@pytest.fixture(scope="module")
def synth_out(tmp_path_factory) -> Path:
    from thinkspace.synth.command import main

    out = tmp_path_factory.mktemp("synth") / "out"
    args = ["--out", str(out), "--scenes", "2", "--seed", "0", "--size", "64", "--frames", str(FRAMES),
            "--workers", "1", "--quiet"]
    assert main(args) == 0
    return out


def test_synthetic_mindcube_and_vsibench_load_and_score(synth_out):
    mindcube = MindCube(str(synth_out / "mindcube" / "train.jsonl"), image_root=str(synth_out))
    assert len(mindcube) > 0
    sample = mindcube[0]
    assert sample.answer in sample.meta["options"] and len(sample.frames) >= 2
    vsi = VSIBench(str(synth_out / "vsibench" / "train.jsonl"), video_root=str(synth_out), num_frames=4)
    assert len(vsi) > 0
    clip = vsi[0]
    assert clip.frames.shape == (4, 64, 64, 3) and clip.timestamps.shape == (4,)
    # the gold answers as responses score 100% with the official scorers
    for data in (mindcube, vsi):
        rows = [(f"mem:{i}", data.prediction_record(i, str(data.index[i]["record"].get("gt_answer")
                                                            or data.index[i]["record"].get("ground_truth"))))
                for i in range(len(data))]
        assert SCORERS[data.benchmark](rows, None).overall == pytest.approx(100.0)


def test_synthetic_sqa3d_matches_the_generators_world_frame(synth_out):
    from thinkspace.data.datasets.synthetic_sample import to_sample
    from thinkspace.synth.writer import SynthConfig, build_scene, records

    qfile = synth_out / "sqa3d" / "v1_balanced_questions_train_synthetic.json"
    afile = synth_out / "sqa3d" / "v1_balanced_sqa_annotations_train_synthetic.json"
    data = SQA3D(str(qfile), str(afile), scannet_root=str(synth_out), num_frames=FRAMES, frame="scene")
    assert len(data) > 0
    ours = data[0]
    meta = json.loads((synth_out / "meta.json").read_text())["config"]
    config = SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()})
    index = int(ours.meta["scene_id"].removeprefix("scene"))
    scene, episodes = build_scene(index, config, threads=1)
    records(index, scene, episodes)  # assigns the question ids the files carry
    video = next(ep for _, _, ep in episodes if ep.is_video)
    question = next(q for q in video.questions if q.id == ours.id)
    theirs = to_sample(video, question)
    torch.testing.assert_close(ours.geometry.cam_from_world, theirs.geometry.cam_from_world, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.geometry.intrinsics, theirs.geometry.intrinsics, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.geometry.depth, theirs.geometry.depth, atol=1e-3, rtol=0)  # PNG millimetres
    assert ours.situation.position == pytest.approx(theirs.situation.position, abs=1e-6)
    assert np.angle(np.exp(1j * (ours.situation.yaw - theirs.situation.yaw))) == pytest.approx(0.0, abs=1e-6)
