"""The synthetic world's camera-rig split (``thinkspace synth --kind ego``) read by ``Ego3DBench`` and scored:
Ego3D-Bench end to end offline, every answer recomputed from the files alone."""

import json
import math

import numpy as np
import pytest
from cli_helpers import command
from PIL import Image

from thinkspace.data.datasets.ego3d import Ego3DBench
from thinkspace.eval.ego3d import CATEGORIES, score_ego3d

pytest.importorskip("open3d")
RIG = ["Front_Left", "Front", "Front_Right", "Back_Right", "Back", "Back_Left"]


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("ego_synth")
    assert command("synth")(["--out", str(out), "--scenes", "3", "--kind", "ego", "--size", "64", "--quiet"]) == 0
    return out


def rows(out):
    return [json.loads(line) for line in (out / "ego3d" / "train.jsonl").read_text().splitlines()]


def test_adapter_reads_the_split_views_in_rig_order(synth_set):
    data = Ego3DBench(str(synth_set / "ego3d" / "train.jsonl"), image_root=str(synth_set))
    assert len(data) == len(rows(synth_set)) >= 10
    assert {data[i].task for i in range(len(data))} <= set(CATEGORIES)
    sample = data[0]
    assert sample.meta["views"] == RIG and sample.prompt.count("<image>") == 6
    sequence = synth_set / data.index[0]["record"]["sequence"]
    for k, frame in enumerate(sample.frames):  # view k is the rig's k-th camera
        assert np.array_equal(np.asarray(frame), np.asarray(Image.open(sequence / "color" / f"{k}.png")))


def test_answers_follow_from_scene_and_poses(synth_set):
    checked = set()
    for row in rows(synth_set):
        sequence = synth_set / row["sequence"]
        scene = json.loads((sequence.parent / "scene.json").read_text())
        xy = {o["name"]: np.array(o["centre"][:2]) for o in scene["objects"]}
        front = np.loadtxt(sequence / "pose" / "1.txt")  # camera-to-room of the front camera
        eye, forward = front[:2, 3], front[:2, 2]
        north = math.atan2(forward[1], forward[0])
        facts, category = row["facts"], row["category"]
        obj = facts["object"]
        view = RIG.index(facts["view"])
        ids = {o["name"]: o["id"] for o in scene["objects"]}
        assert (np.asarray(Image.open(sequence / "instance" / f"{view}.png")) == ids[obj]).sum() >= 6
        if "other" in facts:
            other_view = RIG.index(facts["other_view"])
            assert (np.asarray(Image.open(sequence / "instance" / f"{other_view}.png")) == ids[facts["other"]]).sum() >= 6
        if category == "Ego_Centric_Absolute_Distance":
            assert float(row["answer"]) == pytest.approx(np.linalg.norm(xy[obj] - eye), abs=0.006)
        elif category == "Object_Centric_Absolute_Distance":
            assert float(row["answer"]) == pytest.approx(np.linalg.norm(xy[obj] - xy[facts["other"]]), abs=0.006)
        elif category == "Ego_Centric_Relative_Distance":
            nearer = np.linalg.norm(xy[obj] - eye) < np.linalg.norm(xy[facts["other"]] - eye)
            assert row["answer"] == ("A" if nearer else "B") and row["options"] == ["A. yes", "B. no"]
        elif category == "Localization":
            d = eye - xy[obj]  # where the ego is, seen from the object facing north
            a = math.atan2(d[1], d[0]) - north
            forward_part, left_part = math.cos(a), math.sin(a)
            side = max({"A": forward_part, "B": -forward_part, "C": -left_part, "D": left_part}.items(),
                       key=lambda kv: kv[1])[0]
            assert row["answer"] == side
        elif category == "Ego_Centric_Motion_Reasoning":
            turn = {"north": 0.0, "west": math.pi / 2, "south": math.pi, "east": -math.pi / 2}[facts["direction"]]
            step = facts["metres"] * np.array([math.cos(north + turn), math.sin(north + turn)])
            closer = np.linalg.norm(xy[obj] - eye - step) < np.linalg.norm(xy[obj] - eye)
            assert row["answer"] == ("A" if closer else "B")
        checked.add(category)
    assert checked == {"Ego_Centric_Absolute_Distance", "Object_Centric_Absolute_Distance",
                       "Ego_Centric_Relative_Distance", "Localization", "Ego_Centric_Motion_Reasoning"}


def test_gold_responses_score_perfectly_and_wrong_ones_do_not(synth_set):
    data = Ego3DBench(str(synth_set / "ego3d" / "train.jsonl"), image_root=str(synth_set))
    gold = [data.prediction_record(i, f"<think>.</think><answer>{r['answer']}</answer>")
            for i, r in enumerate(rows(synth_set))]
    score = score_ego3d([(f"p:{i}", r) for i, r in enumerate(gold)])
    assert set(score.groups.values()) == {100.0} and score.overall == 100.0
    assert set(score.extra.values()) == {0.0}
    off = [r | {"Processed_Pred": "Z" if r["Question_Type"] == "multi_choice" else str(float(r["GT"]) + 1)}
           for r in gold]
    score = score_ego3d([(f"p:{i}", r) for i, r in enumerate(off)])
    assert set(score.groups.values()) == {0.0}
    assert score.extra["Ego_Centric_Absolute_Distance_rmse_m"] == pytest.approx(1.0)
