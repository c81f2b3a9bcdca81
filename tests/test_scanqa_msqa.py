"""ScanQA and MSQA (ScanNet part) adapters on records shaped like the released ones.

Record sources:
- ScanQA: the first record of ``ScanQA_v1.0_train.json`` (ATR-DBI/ScanQA, released through
  the link in its ``docs/dataset.md``; licence CC BY-NC-SA 3.0, the repository's LICENSE), and
  a record shaped like ``ScanQA_v1.0_test_w_obj.json`` (same fields, no ``answers``).
- MSQA: the example record in MSR3D/MSR3D ``data/datasets/msr3d.py`` (licence CC BY-NC-SA 4.0,
  README), written in the list shape ``MSQAScanNet.load_lang`` reads (``scan_id``,
  ``question``, ``answers``, ``situation``, ``location``, ``orientation``, ``type``, ``index``,
  ``raw_thought``), and a second one with an image placeholder ``<label-id-IMG>``; both also in the
  2024 grouped layout documented there (``{scan: {"response": [{"Q", "A", ...}]}}``).
"""

import json
import math

import numpy as np
import pytest

from benchmark_fixtures import scannet_scene
from thinkspace.data.datasets.msqa import MSQA, as_text
from thinkspace.data.datasets.scanqa import ScanQA
from thinkspace.objectives import TextCrossEntropy

SCANQA_TRAIN = {"answers": ["brown cabinet with tv sitting in it"], "object_ids": [8], "object_names": ["cabinet"],
                "question": "What is in the right corner of room by curtains?", "question_id": "train-scene0000-0",
                "scene_id": "scene0000_00"}
SCANQA_TEST = {"object_ids": [3], "object_names": ["table"], "question": "What is next to the chair?",
               "question_id": "test-scene0000-1", "scene_id": "scene0000_00"}
MSQA_RECORD = {
    "scan_id": "scene0000_00", "index": 0, "type": "attribute-color", "query_type": "qa_4_directions", "mode": "txt",
    "question": "What is the color of the office chair in front of me?", "answers": ["gray"],
    "situation": "To my left, at a middle distance, there's a gray fabric office chair with a curved rectangle "
                 "shape. Far in front, there's a gray plastic bin. Far behind, there's a crumpled red pillow and a "
                 "partly open grey curtain. Near to my right, there's a black and brown fabric office chair.",
    "location": [0.08045649528503418, -0.19432830810546875, 0.026395104825496674],
    "orientation": [0.6343910511301244, 0.7730122859605894, 0],
    "raw_thought": "office chair-12, trash bin-3",
}
MSQA_IMAGES = dict(MSQA_RECORD, index=1, type="counting", question="How many <office chair-12-IMG> are behind me?",
                   answers=["two", "2"], location=[9.0, 0.0, 0.0], orientation=[-1.0, 0.0, 0.0])

#: axisAlignment of the fixture scene: +90 degrees about z, then 10 m along x: (x, y) -> (10 - y, x).
ALIGN = np.array([[0.0, -1.0, 0.0, 10.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture
def scans(tmp_path):
    scene = scannet_scene(tmp_path / "scans")  # camera 0 at (2, 1, 1.5), looking along +y; frame 2 lost
    (scene / "scene0000_00.txt").write_text("axisAlignment = " + " ".join(str(v) for v in ALIGN.flatten()) + "\n")
    return tmp_path / "scans"


def test_scanqa_record_becomes_a_video_sample_with_its_answers(tmp_path, scans):
    path = tmp_path / "ScanQA_v1.0_train.json"
    path.write_text(json.dumps([SCANQA_TRAIN, SCANQA_TEST]))
    data = ScanQA(str(path), scannet_root=str(scans), num_frames=3)
    assert len(data) == 2
    sample = data[0]
    assert (sample.id, sample.source, sample.prompt) == ("train-scene0000-0", "scanqa", SCANQA_TRAIN["question"])
    assert sample.response == sample.answer == "brown cabinet with tv sitting in it"
    assert sample.meta["object_ids"] == [8] and sample.meta["object_names"] == ["cabinet"]
    assert sample.meta["frame_indices"] == [0, 1, 3] and sample.situation is None
    assert sample.timestamps.tolist() == pytest.approx([0.0, 1 / 30, 3 / 30])
    test = data[1]  # test files carry no answers: nothing to train on, prompts still work
    assert test.response is None and test.meta["answers"] == []
    assert ScanQA(str(path), scannet_root=str(scans), num_frames=3, as_video=False)[0].timestamps is None


def test_scanqa_bad_records_are_named(tmp_path, scans):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{k: v for k, v in SCANQA_TRAIN.items() if k != "scene_id"}]))
    with pytest.raises(KeyError, match=rf"{path}:#0: missing field 'scene_id' \(ScanNet scene id\)"):
        len(ScanQA(str(path), scannet_root=str(scans)))
    path.write_text(json.dumps([dict(SCANQA_TRAIN, answers="cabinet")]))
    with pytest.raises(ValueError, match=rf"{path}:#0: answers of question train-scene0000-0 must be a list"):
        len(ScanQA(str(path), scannet_root=str(scans)))
    path.write_text(json.dumps([dict(SCANQA_TRAIN, scene_id="scene0999_00")]))
    with pytest.raises(FileNotFoundError, match=r"scene0999_00 not found \(sample 'train-scene0000-0'"):
        ScanQA(str(path), scannet_root=str(scans))[0]


def test_msqa_situation_moves_from_the_axis_aligned_scan_into_the_world_frame(tmp_path, scans):
    path = tmp_path / "msqa_scannet_train.json"
    path.write_text(json.dumps([MSQA_RECORD, MSQA_IMAGES]))
    data = MSQA(str(path), scannet_root=str(scans), num_frames=3)
    sample = data[0]
    assert (sample.id, sample.source, sample.task) == ("scene0000_00-0", "msqa", "attribute-color")
    assert sample.prompt == MSQA_RECORD["question"] and sample.response == "gray"
    assert sample.situation.text == MSQA_RECORD["situation"] and sample.is_video
    # camera 0, axis-aligned: at (10 - 1, 2) facing -x (heading pi); the world frame turns by -pi about it
    x, y = MSQA_RECORD["location"][:2]
    assert sample.situation.position == pytest.approx((9.0 - x, 2.0 - y))
    yaw = math.atan2(MSQA_RECORD["orientation"][1], MSQA_RECORD["orientation"][0]) - math.pi
    assert sample.situation.yaw == pytest.approx(yaw)
    assert sample.meta["scene_yaw"] == pytest.approx(math.atan2(0.7730122859605894, 0.6343910511301244))
    beside = data[1]  # at (9, 0): 2 m to camera 0's left (world +y), facing its heading (-x)
    assert beside.situation.position == pytest.approx((0.0, 2.0)) and beside.situation.yaw == pytest.approx(0.0)
    assert beside.prompt == "How many office chair are behind me?" and beside.meta["answers"] == ["two", "2"]
    with_text = MSQA(str(path), scannet_root=str(scans), num_frames=3, situation_in_prompt=True)[0]
    assert with_text.prompt == f"{MSQA_RECORD['situation']} {MSQA_RECORD['question']}"


def test_msqa_sample_collates_with_its_situation_on_a_tiny_backbone(tmp_path, scans, qwen25):
    path = tmp_path / "msqa_scannet_train.json"
    path.write_text(json.dumps([MSQA_RECORD]))
    batch = qwen25.collator({"text": TextCrossEntropy()})([MSQA(str(path), scannet_root=str(scans), num_frames=2)[0]])
    assert batch.inputs["video_grid_thw"].tolist() == [[1, 4, 6]]  # 2 frames: one temporal group of 4x6 patches
    assert batch.visual.grid.tolist() == [[0, 0, 2, 3]]  # merged 2x2: 2x3 tokens
    supervised = batch.labels[0][batch.labels[0] != -100]
    assert qwen25.processor.tokenizer.decode(supervised) == "gray<|im_end|>"


def test_msqa_placeholders_become_their_labels():
    assert as_text("the <office chair-12-IMG> by <bin-3-IMG>, not <SCENE>") == "the office chair by bin, not <SCENE>"


def test_msqa_bad_records_are_named(tmp_path, scans):
    path = tmp_path / "msqa.json"
    for record, error, message in [
        (dict(MSQA_RECORD, orientation=[0, 0, 1]), ValueError, r"orientation \[0.0, 0.0, 1.0\] has no component in "
                                                               r"the floor plane"),
        (dict(MSQA_RECORD, location=[1, 2]), ValueError, r"location must be a list of 3 numbers, got \[1, 2\]"),
        (dict(MSQA_RECORD, answers=[]), ValueError, r"answers \(.A. in the grouped layout\) must be a non-empty list"),
        ({k: v for k, v in MSQA_RECORD.items() if k != "situation"}, KeyError, r"missing field 'situation'"),
    ]:
        path.write_text(json.dumps([record]))
        with pytest.raises(error, match=rf"{path}:#0: {message}"):
            len(MSQA(str(path), scannet_root=str(scans)))
    for data, message in [
        ({"scene0000_00": [MSQA_RECORD]}, r"scene0000_00: expected \{'response': \[records\]\} \(MSQA's grouped layout\)"),
        ({"scene0000_00": {"response": [{"Q": "Where?"}]}}, r"scene0000_00.response#0: missing field 'A'"),
        ({"scene0000_00": {"response": [{"Q": "Where?", "A": "left", "situation": "I sit."}]}},
         r"scene0000_00.response#0: answers \('A' in the grouped layout\) must be a non-empty list of strings"),
        ("msqa", r"expected a JSON list of MSQA records or \{scan_id: \{'response': \[...\]\}\}, got str"),
    ]:
        path.write_text(json.dumps(data))
        with pytest.raises((KeyError, ValueError), match=rf"{path}: ?{message}"):
            len(MSQA(str(path), scannet_root=str(scans)))


def grouped(*records):
    """List-layout MSQA records in the 2024 grouped layout (``msr3d.py``, above ``MSQAScanNet``):
    ``{scan: {"response": [{"Q", "A", ...}]}}``, without ``scan_id``, ``index`` and ``raw_thought``."""
    out = {}
    for r in records:
        rest = {k: v for k, v in r.items() if k not in ("scan_id", "index", "raw_thought", "question", "answers")}
        out.setdefault(r["scan_id"], {"response": []})["response"].append(
            {"Q": r["question"], "A": r["answers"], **rest})
    return out


def test_msqa_grouped_layout_reads_as_the_list_layout(tmp_path, scans):
    listed, packed = tmp_path / "msqa_list.json", tmp_path / "msqa_grouped.json"
    listed.write_text(json.dumps([MSQA_RECORD, MSQA_IMAGES]))
    packed.write_text(json.dumps(grouped(MSQA_RECORD, MSQA_IMAGES)))
    a = MSQA(str(listed), scannet_root=str(scans), num_frames=2)
    b = MSQA(str(packed), scannet_root=str(scans), num_frames=2)
    assert len(a) == len(b) == 2
    for x, y in zip([a[0], a[1]], [b[0], b[1]]):
        assert (y.id, y.task, y.prompt, y.answer, y.meta["answers"]) == (x.id, x.task, x.prompt, x.answer,
                                                                         x.meta["answers"])
        assert y.situation.position == pytest.approx(x.situation.position)
        assert y.situation.yaw == pytest.approx(x.situation.yaw) and y.situation.text == x.situation.text
    assert [b[0].id, b[1].id] == ["scene0000_00-0", "scene0000_00-1"]  # index: position in the scan's response
    assert b[1].prompt == "How many office chair are behind me?" and b[1].meta["where"] == f"{packed}:scene0000_00.response#1"
