"""Benchmark adapters load hand-made files in each official format into the right samples,
and bad input fails with messages naming the file, line, path or sample."""

import json

import numpy as np
import pytest
import torch

import benchmark_fixtures as fx
from thinkspace.data.datasets.mindcube import MindCube
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.datasets.thinker_cot import ThinkerCoT
from thinkspace.data.datasets.vsibench import VSIBench


# -- MindCube ---------------------------------------------------------------------------
def test_mindcube_loads_samples(tmp_path):
    path = fx.mindcube(tmp_path)
    data = MindCube(str(path), image_root=str(tmp_path))
    assert len(data) == 3
    sample = data[0]
    assert sample.id == "among_group001_q1_1_2" and sample.task == "among"
    assert sample.answer == "B" and sample.answer_type == "choice" and sample.timestamps is None
    assert [f.size for f in sample.frames] == [(32, 24), (32, 24)]
    assert sample.frames[0].getpixel((0, 0)) == (200, 0, 0)
    assert sample.meta["options"] == ["A", "B", "C"]
    assert [data[i].task for i in range(3)] == ["among", "around", "translation"]
    record = data.prediction_record(1, "A. lamp")
    assert record["answer"] == "A. lamp" and record["gt_answer"] == "A" and record["id"] == "around_scene_q3"


def test_mindcube_touches_no_disk_until_used(tmp_path):
    data = MindCube(str(tmp_path / "absent.jsonl"))  # no error yet
    with pytest.raises(FileNotFoundError, match="absent.jsonl not found"):
        len(data)


def test_mindcube_settings_filter_and_limit(tmp_path):
    path = fx.mindcube(tmp_path)
    assert len(MindCube(str(path), image_root=str(tmp_path), settings=["around", "among"])) == 2
    assert len(MindCube(str(path), image_root=str(tmp_path), limit=1)) == 1


def test_malformed_line_names_file_and_line(tmp_path):
    path = fx.write_jsonl(tmp_path / "bad.jsonl", [
        {"id": "among_1", "question": "A. x B. y", "images": ["a.png"], "gt_answer": "A"},
        '{"id": "among_2", "question": ',
    ])
    with pytest.raises(ValueError, match=r"bad.jsonl:2: malformed JSON line"):
        len(MindCube(str(path)))


def test_answer_outside_the_options(tmp_path):
    path = fx.write_jsonl(tmp_path / "q.jsonl", [
        {"id": "around_1", "question": "Which? A. left B. right", "images": ["a.png"], "gt_answer": "C"}])
    with pytest.raises(ValueError, match=r"q.jsonl:1: gt_answer 'C' of sample 'around_1' is not one of .*\['A', 'B'\]"):
        len(MindCube(str(path)))


def test_missing_field_names_file_line_and_field(tmp_path):
    path = fx.write_jsonl(tmp_path / "q.jsonl", [{"id": "around_1", "question": "A. x", "gt_answer": "A"}])
    with pytest.raises(KeyError, match=r"q.jsonl:1: missing field 'images'"):
        len(MindCube(str(path)))


def test_missing_image_names_path_and_sample_or_is_skipped(tmp_path):
    path = fx.mindcube(tmp_path)
    (tmp_path / "other_all_image" / "among" / "v1.jpg").unlink()
    data = MindCube(str(path), image_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"v1.jpg not found \(sample 'among_group001_q1_1_2'\)"):
        data[0]
    with pytest.warns(UserWarning, match="skipped 2 of 3"):
        skipping = MindCube(str(path), image_root=str(tmp_path), skip_missing=True)
        assert len(skipping) == 1
    assert skipping.skipped == 2 and skipping[0].id == "around_scene_q3"


# -- 3DThinker CoT ----------------------------------------------------------------------
def test_thinker_cot_keeps_the_latent_marker(tmp_path):
    data = ThinkerCoT(str(fx.thinker_cot(tmp_path)))
    sample = data[0]
    assert sample.response.startswith("<output_3D><think>")
    assert sample.meta["latent_marker"] == "<output_3D>" and sample.meta["latent_marker_is_slot"] is True
    assert sample.answer == "B" and sample.task == "among" and len(sample.frames) == 2
    assert data[1].id == "8" and data[1].answer == "A" and len(data[1].frames) == 1


def test_thinker_cot_prompts_and_sizes_views_as_3dthinker_stage1(tmp_path):
    """Official stage 1: ``text_input + "\\n" + instruction``, views LANCZOS-resized to 480 wide x 640 tall."""
    from PIL import Image

    from thinkspace.data.datasets.thinker_prompt import THINKER_INSTRUCTION, resize_view

    sample = ThinkerCoT(str(fx.thinker_cot(tmp_path)))[0]
    assert sample.prompt == "Where is the cup? A. left B. right\n" + THINKER_INSTRUCTION
    assert THINKER_INSTRUCTION.startswith("First imagine the mental 3D scene, think about the reasoning process")
    assert [f.size for f in sample.frames] == [(480, 640), (480, 640)]
    raw = ThinkerCoT(str(fx.thinker_cot(tmp_path)), instruction="", image_size=None)[0]
    assert raw.prompt == "Where is the cup? A. left B. right" and raw.frames[0].size == (32, 24)
    ramp = Image.fromarray(np.arange(48 * 40 * 3, dtype=np.uint8).reshape(40, 48, 3) % 251)
    expected = np.asarray(ramp.resize((480, 640), Image.LANCZOS))
    assert np.array_equal(np.asarray(resize_view(ramp, [480, 640])), expected)
    with pytest.raises(ValueError, match=r"image_size must be two positive integers \(width, height\), got \[0, 640\]"):
        resize_view(ramp, [0, 640])


def test_mindcube_can_size_views_like_3dthinker(tmp_path):
    data = MindCube(str(fx.mindcube(tmp_path)), image_root=str(tmp_path), image_size=[480, 640], instruction="Think.")
    assert {f.size for f in data[0].frames} == {(480, 640)} and data[0].prompt.endswith("\nThink.")


def test_thinker_cot_without_marker_is_an_error(tmp_path):
    path = fx.write_jsonl(tmp_path / "cot.jsonl", [
        {"idx": 1, "text_input": "Q", "image_input": ["a.png"], "text_output": "<think>x</think>", "answer": "A"}])
    with pytest.raises(ValueError, match=r"cot.jsonl:1: text_output of record '1' lacks the <output_3D> marker"):
        len(ThinkerCoT(str(path)))
    assert len(ThinkerCoT(str(path), require_marker=False)) == 1


# -- VSI-Bench --------------------------------------------------------------------------
def test_vsibench_loads_video_frames_and_timestamps(tmp_path):
    data = VSIBench(str(fx.vsibench(tmp_path)), num_frames=4)
    number, choice = data[0], data[1]
    assert number.frames.shape == (4, 32, 32, 3) and number.frames.dtype == np.uint8
    torch.testing.assert_close(number.timestamps, torch.tensor([0.25, 0.75, 1.25, 1.75]))  # centres of 4 segments
    levels = number.frames[:, 16, 16, 0].astype(int)
    assert np.all(np.abs(levels - np.array([45, 95, 145, 195])) <= 6)  # frames 1, 3, 5, 7
    assert number.answer == 4.0 and number.answer_type == "number" and number.task == "object_counting"
    assert number.prompt.endswith("Please answer the question using a single word or phrase.")
    assert choice.answer == "B" and choice.answer_type == "choice"
    assert "Options:\nA. left\nB. right\nAnswer with the option's letter" in choice.prompt
    assert data.prediction_record(1, "B")["prediction"] == "B"


def test_vsibench_missing_video_and_bad_records(tmp_path):
    path = fx.vsibench(tmp_path)
    (tmp_path / "scannet" / "scene0000_00.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"scene0000_00.mp4 not found \(sample '1', .*test.jsonl:1\)"):
        VSIBench(str(path))[0]
    with pytest.warns(UserWarning, match="skipped 2 of 2"):
        assert len(VSIBench(str(path), skip_missing=True)) == 0
    bad = fx.write_jsonl(tmp_path / "bad.jsonl", [
        {"id": 5, "dataset": "scannet", "scene_name": "s", "question_type": "route_planning", "question": "?",
         "options": ["A. x", "B. y"], "ground_truth": "D"}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: ground_truth 'D' of sample '5' is not one of"):
        len(VSIBench(str(bad)))


def test_vsibench_parquet_needs_a_reader(tmp_path, monkeypatch):
    for reader in ("pyarrow", "pyarrow.parquet", "pandas"):  # absent even where the dev extra installed them
        monkeypatch.setitem(__import__("sys").modules, reader, None)
    (tmp_path / "test.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match=r"parquet needs pyarrow or pandas "
                       r"\(the parquet extra: pip install 'thinkspace\[parquet\]'\)"):
        len(VSIBench(str(tmp_path / "test.parquet")))


# -- SQA3D on ScanNet -------------------------------------------------------------------
def test_sqa3d_situation_and_geometry_in_the_world_frame(tmp_path):
    questions, annotations = fx.sqa3d(tmp_path)
    data = SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), num_frames=8, frame="scene")
    sample = data[0]
    assert sample.id == "220602000002" and sample.answer == "table" and sample.task == "what"
    assert sample.prompt == "I am facing the window. What is on my left?"
    assert sample.meta["frame_indices"] == [0, 1, 3]  # frame 2 has a lost (-inf) pose
    # the situation is 2 m straight ahead of camera 0, turned 0.5 rad left of its heading
    assert sample.situation.position == pytest.approx((2.0, 0.0), abs=1e-9)
    assert sample.situation.yaw == pytest.approx(0.5)
    geometry = sample.geometry
    assert geometry.cam_from_world.shape == (3, 4, 4) and geometry.depth.shape == (3, 24, 32)
    assert [f.size for f in sample.frames] == [(32, 24)] * 3  # colour resized to the depth resolution
    torch.testing.assert_close(geometry.depth, torch.full((3, 24, 32), 2.0))
    ahead = geometry.cam_from_world[0] @ torch.tensor([1.0, 0.0, 0.0, 1.0])  # world +x: 1 m ahead
    torch.testing.assert_close(ahead, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    centre3 = torch.linalg.inv(geometry.cam_from_world[2])[:3, 3]  # frame 3 stood 3 m further along +y
    torch.testing.assert_close(centre3, torch.tensor([3.0, 0.0, 0.0]))
    record = data.prediction_record(0, "the table")
    assert record["answer"] == "the table" and record["answers"][0]["answer"] == "table"


def test_sqa3d_missing_scene_and_annotation(tmp_path):
    questions, annotations = fx.sqa3d(tmp_path)
    message = r"scene folder .*nowhere/scene0000_00 not found \(sample '220602000002'"
    with pytest.raises(FileNotFoundError, match=message):
        SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "nowhere"))[0]
    annotations.write_text('{"annotations": []}')
    with pytest.raises(KeyError, match=r"question_id 220602000002 has no annotation"):
        len(SQA3D(str(questions), str(annotations)))


def test_duplicate_ids_are_refused_naming_the_file_id_and_both_lines(tmp_path):
    row = {"question": "A. x B. y", "images": ["a.png"], "gt_answer": "A"}
    path = fx.write_jsonl(tmp_path / "q.jsonl", [{"id": "among_1", **row}, {"id": "among_2", **row},
                                                  {"id": "among_1", **row}])
    with pytest.raises(ValueError, match=rf"^{path}: sample id 'among_1' at line 1 and again at line 3; "
                                         "expected each id once$"):
        len(MindCube(str(path)))


def test_duplicate_ids_in_a_json_list_name_the_positions(tmp_path):
    path = fx.vsibench(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    listed = tmp_path / "test.json"
    listed.write_text(json.dumps([rows[0], rows[1], {**rows[1], "id": 1}]))
    with pytest.raises(ValueError, match=rf"^{listed}: sample id '1' at #0 and again at #2; expected each id once$"):
        len(VSIBench(str(listed), str(tmp_path)))
    assert VSIBench(str(path), str(tmp_path)).positions_of(["2", "1"]) == [1, 0]


def test_sqa3d_duplicate_question_or_annotation_is_refused(tmp_path):
    questions, annotations = fx.sqa3d(tmp_path)
    notes = json.loads(annotations.read_text())
    annotations.write_text(json.dumps({"annotations": notes["annotations"] * 2}))
    with pytest.raises(ValueError, match=rf"^{annotations}: question_id '220602000002' at #0 and again at #1"):
        len(SQA3D(str(questions), str(annotations)))
    annotations.write_text(json.dumps(notes))
    asked = json.loads(questions.read_text())
    questions.write_text(json.dumps({"questions": asked["questions"] * 2}))
    with pytest.raises(ValueError, match=rf"^{questions}: sample id '220602000002' at #0 and again at #1"):
        len(SQA3D(str(questions), str(annotations)))