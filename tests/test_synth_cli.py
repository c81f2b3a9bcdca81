"""``thinkspace synth`` writes the documented tree, refuses bad input, and writes atomically."""

from __future__ import annotations

import json

import decord
import numpy as np
import open3d  # noqa: F401  (the dev extra's renderer: a missing one must fail, not skip)
import pytest
from PIL import Image

from cli_helpers import command, one_error_line
from synth_helpers import synth_tree

import thinkspace.synth.writer as writer
from thinkspace.data.datasets.mindcube import MindCube

main = command("synth")

SMALL = ["--size", "32", "--frames", "3", "--workers", "1", "--quiet"]


def test_tree_has_the_documented_files():
    out = synth_tree()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["scenes"] == 10 and meta["config"]["size"] == 64 and meta["config"]["kind"] == "all"
    splits = json.loads((out / "splits.json").read_text())
    assert splits["val"] == ["scene00008"] and splits["test"] == ["scene00009"]
    assert splits["train"] == [f"scene{i:05d}" for i in range(8)] == splits["test_viewpoint"]
    assert (out / "mindcube" / "test_viewpoint.jsonl").is_file()
    assert not (out / "vsibench" / "test_viewpoint.jsonl").exists(), "held-out viewpoints are image sets only"
    for split in ("train", "val", "test"):
        assert (out / "mindcube" / f"{split}.jsonl").is_file()
        assert (out / "vsibench" / f"{split}.jsonl").is_file()
        assert (out / "sqa3d" / f"v1_balanced_questions_{split}_synthetic.json").is_file()
        assert (out / "sqa3d" / f"v1_balanced_sqa_annotations_{split}_synthetic.json").is_file()
    held = [json.loads(x) for x in (out / "mindcube" / "test_viewpoint.jsonl").read_text().splitlines()]
    assert held and all("_hv_" in r["id"] and r["meta_info"]["viewpoint"] == "held_out" for r in held)
    assert not list((out / "scenes").glob(".partial-*"))

    scene = out / "scenes" / "scene00000"
    data = json.loads((scene / "scene.json").read_text())
    assert {"name", "seed", "frame", "room", "objects"} <= set(data)
    assert 3 <= len(data["objects"]) <= 8 and len({o["name"] for o in data["objects"]}) == len(data["objects"])
    video = scene / "video"
    assert sorted(p.name for p in (video / "color").iterdir()) == [f"{k}.png" for k in range(6)]
    for sub in ("depth", "pose", "instance"):
        assert len(list((video / sub).iterdir())) == 6
    depth = Image.open(video / "depth" / "0.png")
    assert depth.mode in ("I;16", "I") and depth.size == (64, 64)
    assert np.asarray(Image.open(video / "color" / "0.png")).shape == (64, 64, 3)
    pose = np.loadtxt(video / "pose" / "0.txt")
    assert pose.shape == (4, 4) and np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6)
    assert np.loadtxt(video / "intrinsic.txt").shape == (4, 4)

    rows = [json.loads(x) for x in (out / "mindcube" / "train.jsonl").read_text().splitlines()]
    assert {"id", "question", "images", "gt_answer"} <= set(rows[0]) and rows[0]["gt_answer"] in "ABCD"
    assert all((out / image).is_file() for r in rows for image in r["images"])
    rows = [json.loads(x) for x in (out / "vsibench" / "train.jsonl").read_text().splitlines()]
    assert {"id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth"} <= set(rows[0])


def test_video_decodes_with_decord_at_the_written_rate():
    out = synth_tree()
    reader = decord.VideoReader(str(out / "scenes" / "scene00000" / "video" / "video.mp4"))
    assert len(reader) == 6 and reader.get_avg_fps() == pytest.approx(4.0)
    frame = reader[2].asnumpy().astype(np.float64)
    png = np.asarray(Image.open(out / "scenes" / "scene00000" / "video" / "color" / "2.png"), dtype=np.float64)
    assert frame.shape == png.shape and np.abs(frame - png).mean() < 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenes", "0"], "--scenes: expected a positive number of scenes, got 0"),
        (["--scenes", "2", "--size", "33"], "--size: expected an even number of pixels"),
        (["--scenes", "2", "--kind", "pictures"], "--kind: expected one of views, video, all, ego; got 'pictures'"),
        (["--scenes", "2", "--frames", "1"], "--frames: expected at least 2 frames"),
        (["--scenes", "two"], "argument --scenes: invalid int value: 'two'"),
        ([], "the following arguments are required: --scenes"),
    ],
)
def test_bad_arguments_are_named(tmp_path, capsys, args, message):
    assert main(["--out", str(tmp_path / "o"), *args, "--quiet"]) == 2
    assert one_error_line(capsys, "synth").startswith(f"thinkspace synth: error: {message}")
    assert not (tmp_path / "o" / "meta.json").exists()


def test_unwritable_out_is_named(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["--out", str(blocker), "--scenes", "1", *SMALL]) == 2
    assert f"--out: {blocker} is a file; expected a directory" in one_error_line(capsys, "synth")
    assert main(["--out", str(blocker / "sub"), "--scenes", "1", *SMALL]) == 2
    err = one_error_line(capsys, "synth")
    assert f"--out: cannot write to {blocker / 'sub'}" in err and "expected a writable directory" in err


def test_other_settings_in_the_same_out_are_refused(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--scenes", "1", "--kind", "views", *SMALL]) == 0
    assert main(["--out", str(tmp_path), "--scenes", "1", "--kind", "views", *SMALL[:-5], "--size", "64",
                 "--workers", "1", "--quiet"]) == 2
    assert "already holds a synthetic set made with size 32 (now 64)" in one_error_line(capsys, "synth")


def test_a_folder_holding_files_synth_did_not_write_is_refused(tmp_path, capsys):
    mine = tmp_path / "mindcube" / "train.jsonl"
    mine.parent.mkdir()
    mine.write_text('{"id": "my own"}\n')
    assert main(["--out", str(tmp_path), "--scenes", "1", "--kind", "views", *SMALL]) == 2
    err = one_error_line(capsys, "synth")
    assert f"--out {tmp_path} holds files thinkspace synth did not write ({tmp_path / 'mindcube'})" in err
    assert mine.read_text() == '{"id": "my own"}\n' and not list((tmp_path / "scenes").iterdir())


def test_a_crash_leaves_no_half_written_scene_and_a_rerun_resumes(tmp_path, monkeypatch):
    real = writer.write_sequence
    calls = {"n": 0}

    def flaky(directory, episode):
        calls["n"] += 1
        if "scene00001" in str(directory) and calls["n"] > 1:
            raise OSError("disk full")
        real(directory, episode)

    monkeypatch.setattr(writer, "write_sequence", flaky)
    from thinkspace.synth.command import main as synth  # the tool itself: the error raised, not reported
    with pytest.raises(OSError, match="disk full"):
        synth(["--out", str(tmp_path), "--scenes", "2", "--kind", "views", *SMALL])
    scenes = tmp_path / "scenes"
    assert sorted(p.name for p in scenes.iterdir()) == ["scene00000"], "no partial or half-written scene"
    assert not (tmp_path / "meta.json").exists()
    done = (scenes / "scene00000" / "scene.json").stat().st_mtime_ns

    monkeypatch.setattr(writer, "write_sequence", real)
    assert main(["--out", str(tmp_path), "--scenes", "2", "--kind", "views", *SMALL]) == 0
    assert (scenes / "scene00000" / "scene.json").stat().st_mtime_ns == done, "finished scenes are kept"
    assert sorted(p.name for p in scenes.iterdir()) == ["scene00000", "scene00001"]
    assert json.loads((tmp_path / "meta.json").read_text())["scenes"] == 2


def test_mindcube_files_load_through_the_mindcube_adapter():
    out = synth_tree()
    for split in ("train", "test_viewpoint"):
        ds = MindCube(str(out / "mindcube" / f"{split}.jsonl"), image_root=str(out))
        rows = (out / "mindcube" / f"{split}.jsonl").read_text().splitlines()
        assert len(ds) == len(rows) > 0
        tasks = {ds[i].task for i in range(len(ds))}
        assert tasks <= {"around", "among", "rotation", "other"}, "leftmost is MindCube's 'other'"
        first = json.loads(rows[0])
        sample = ds[0]
        assert sample.answer == first["gt_answer"] and len(sample.frames) == len(first["images"])
        assert sample.frames[0].size == (64, 64)
