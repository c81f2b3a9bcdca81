"""Benchmark scores on hand-made prediction tables: MindCube settings, VSI-Bench MRA and
aggregation, SQA3D exact match and localization with yaw wrap-around."""

import math

import pytest
import torch

from thinkspace.eval import score_mindcube, score_sqa3d, score_vsibench
from thinkspace.eval.mindcube import setting_from_id
from thinkspace.eval.sqa3d_localization import localization_hits
from thinkspace.geometry import quaternion_yaw, yaw_error_degrees
from thinkspace.eval.vsibench import THRESHOLDS, mean_relative_accuracy


def located(rows):
    return [(f"preds.jsonl:{i + 1}", r) for i, r in enumerate(rows)]


# -- MindCube ---------------------------------------------------------------------------
def test_setting_from_id_follows_the_official_order():
    assert setting_from_id("around_00012_q1") == "around"
    assert setting_from_id("Among_group3") == "among"
    assert setting_from_id("rotation_around_1") == "around"  # "around" is tested first
    assert setting_from_id("translation_7") == "translation"
    assert setting_from_id("leftmost_scene00001_q0") == "other"


def test_mindcube_overall_excludes_translation():
    rows = [
        {"id": "around_1", "gt_answer": "A", "answer": "A. left"},
        {"id": "around_2", "gt_answer": "B", "answer": "C"},
        {"id": "among_1", "gt_answer": "C", "answer": "<Answer>C"},
        {"id": "rotation_1", "gt_answer": "D", "answer": "no idea"},
        {"id": "translation_1", "gt_answer": "A", "answer": "A"},
        {"id": "translation_2", "gt_answer": "A", "answer": "A"},
        {"id": "misc_1", "gt_answer": "B", "answer": "B"},
        {"id": "around_3", "gt_answer": "", "answer": "A"},  # skipped, as officially
    ]
    score = score_mindcube(located(rows))
    assert score.n == 7
    assert score.overall == pytest.approx(100 * 3 / 5)  # around 1/2, among 1/1, rotation 0/1, other 1/1
    assert score.groups == pytest.approx(
        {"around": 50.0, "rotation": 0.0, "translation": 100.0, "among": 100.0, "other": 100.0})
    assert any("empty gt_answer skipped" in n for n in score.notes)
    assert any("no extractable letter" in n for n in score.notes)


def test_mindcube_response_field_and_cogmap_default():
    rows = [{"id": "among_1", "gt_answer": "A", "answer": "B", "cogmap_gen_answer": "A", "mine": "B"}]
    assert score_mindcube(located(rows)).overall == 100.0  # the official default prefers cogmap_gen_answer
    assert score_mindcube(located(rows), "mine").overall == 0.0


def test_mindcube_rejects_other_benchmarks_and_bad_gold():
    with pytest.raises(KeyError, match=r"preds.jsonl:1: missing field 'gt_answer'.*MindCube"):
        score_mindcube(located([{"id": 1, "question_type": "object_counting", "ground_truth": "2"}]))
    with pytest.raises(ValueError, match=r"preds.jsonl:1: gt_answer 'F'.*not an option letter"):
        score_mindcube(located([{"id": "among_1", "gt_answer": "F", "answer": "A"}]))


# -- VSI-Bench --------------------------------------------------------------------------
def test_thresholds_are_the_ten_official_ones():
    assert len(THRESHOLDS) == 10
    assert THRESHOLDS[0] == 0.5 and THRESHOLDS[-1] == 0.95


@pytest.mark.parametrize("pred, truth, expected", [
    (2.0, 2.0, 1.0),      # zero distance: every threshold passes
    (1.5, 1.0, 0.1),      # relative error 0.5 passes only theta = 0.50 (<= is inclusive)
    (1.25, 1.0, 0.6),     # 0.25 passes theta 0.50 ... 0.75
    (1.1, 1.0, 0.9),      # 0.1 fails only theta 0.95 (floats as in the official linspace)
    (1.05, 1.0, 1.0),     # 0.05 passes theta 0.95 too: the boundary is inclusive
    (0.0, 2.0, 0.0),      # relative error 1.0 passes nothing
    (3.0, 2.0, 0.1),      # 0.5 again, from above
    (None, 2.0, 0.0),     # unparseable prediction
    (float("nan"), 2.0, 0.0),
    (float("inf"), 2.0, 0.0),
])
def test_mean_relative_accuracy(pred, truth, expected):
    assert mean_relative_accuracy(pred, truth) == pytest.approx(expected)


def test_mean_relative_accuracy_zero_truth_is_an_error():
    with pytest.raises(ZeroDivisionError, match="ground truth of 0"):
        mean_relative_accuracy(0.0, 0.0)


def test_vsibench_types_merge_and_overall():
    rows = [
        {"question_type": "object_counting", "ground_truth": "4", "prediction": "4"},           # 1.0
        {"question_type": "object_counting", "ground_truth": "4", "prediction": "four"},        # 0 (unparseable)
        {"question_type": "room_size_estimation", "ground_truth": "20", "prediction": "30 m"},  # 0.1
        {"question_type": "object_rel_direction_easy", "ground_truth": "A", "prediction": "a."},  # 1
        {"question_type": "object_rel_direction_medium", "ground_truth": "B", "prediction": "C"},  # 0
        {"question_type": "object_rel_direction_hard", "ground_truth": "C", "prediction": "C. sofa"},  # 1
        {"question_type": "route_planning", "ground_truth": "D", "prediction": "D\nbecause"},   # 0: no space
    ]
    score = score_vsibench(located(rows))
    assert score.groups == pytest.approx({"object_counting": 50.0, "room_size_estimation": 10.0,
                                          "route_planning": 0.0, "object_rel_direction": 200 / 3})
    assert score.counts["object_rel_direction"] == 3
    assert score.overall == pytest.approx((50 + 10 + 0 + 200 / 3) / 4)
    assert any("not a number" in n for n in score.notes)


def test_vsibench_direction_levels_without_easy_stay_separate():
    rows = [{"question_type": "object_rel_direction_medium", "ground_truth": "A", "prediction": "A"},
            {"question_type": "object_counting", "ground_truth": "2", "prediction": "3"}]
    score = score_vsibench(located(rows))
    assert set(score.groups) == {"object_rel_direction_medium", "object_counting"}
    assert score.overall == pytest.approx((100 + 10) / 2)  # |3 - 2| / 2 = 0.5 passes theta 0.50 only


def test_vsibench_easy_without_other_levels_is_an_error():
    rows = [{"question_type": "object_rel_direction_easy", "ground_truth": "A", "prediction": "A"}]
    with pytest.raises(ValueError, match="no object_rel_direction_medium, object_rel_direction_hard"):
        score_vsibench(located(rows))


def test_vsibench_rejects_a_mindcube_file():
    with pytest.raises(KeyError, match=r"preds.jsonl:1: missing field 'question_type'.*VSI-Bench"):
        score_vsibench(located([{"id": "among_1", "gt_answer": "A", "answer": "A"}]))
    with pytest.raises(ValueError, match=r"preds.jsonl:1: unknown VSI-Bench question_type 'among'"):
        score_vsibench(located([{"question_type": "among", "ground_truth": "A", "prediction": "A"}]))


# -- SQA3D ------------------------------------------------------------------------------
def yaw_quat(yaw, sign=1.0):
    """(x, y, z, w) of a turn by ``yaw`` about +z (``sign`` -1 gives the same rotation)."""
    return (0.0, 0.0, sign * math.sin(yaw / 2), sign * math.cos(yaw / 2))


@pytest.mark.parametrize("yaw", [0.0, 0.5, -2.0, 3.0, -3.1])
def test_quaternion_yaw_of_pure_turns_and_sign_flip(yaw):
    assert quaternion_yaw(*yaw_quat(yaw)) == pytest.approx(yaw)
    assert quaternion_yaw(*yaw_quat(yaw, -1.0)) == pytest.approx(yaw)


def test_quaternion_yaw_of_a_real_sqa3d_rotation():
    # rotation {"_x": 0, "_y": 0, "_z": -0.99957, "_w": -0.02920} of SQA3D's test set: w < 0
    assert quaternion_yaw(0, 0, -0.9995736030415032, -0.02919952230128897) == pytest.approx(
        2 * math.atan2(0.9995736030415032, 0.02919952230128897))


def test_quaternion_yaw_matches_scipy_rotation_vector():
    # scipy is no dependency of thinkspace (nor of its extras): this cross-check runs where it is installed
    transform = pytest.importorskip("scipy.spatial.transform", reason="scipy is not installed")
    rotations = transform.Rotation.random(50, random_state=0)
    for q in rotations.as_quat():
        assert quaternion_yaw(*q) == pytest.approx(transform.Rotation.from_quat(q).as_rotvec()[-1], abs=1e-9)


@pytest.mark.parametrize("a, b, expected", [
    (math.radians(170), math.radians(-170), 20.0),   # wraps across +-180
    (math.radians(-179), math.radians(179), 2.0),
    (math.pi, -math.pi, 0.0),
    (0.0, math.pi, 180.0),
    (math.radians(10), math.radians(40), 30.0),
])
def test_yaw_error_wraps(a, b, expected):
    assert yaw_error_degrees(a, b) == pytest.approx(expected)


def test_localization_thresholds_are_strict_and_closest_prediction_counts():
    # 0.5 m exactly is not < 0.5 m; the yaw is 20 deg off across the +-180 wrap
    hits = localization_hits((0.0, 0.0), math.radians(170), [(0.5, 0.0)], [math.radians(-170)])
    assert hits == {"acc@0.5m": False, "acc@1.0m": True, "acc@15deg": False, "acc@30deg": True}
    # of several predictions the closest counts, for position and yaw separately
    hits = localization_hits((1.0, 1.0), 0.0, [(5.0, 5.0), (1.3, 1.0)], [math.radians(100), math.radians(-10)])
    assert hits == {"acc@0.5m": True, "acc@1.0m": True, "acc@15deg": True, "acc@30deg": True}


def test_sqa3d_score_exact_match_and_localization():
    base = {"scene_id": "scene0000_00", "situation": "I sit on the bed.", "position": {"x": 1.0, "y": 2.0, "z": 0},
            "rotation": {"_x": 0, "_y": 0, "_z": math.sin(1.5), "_w": math.cos(1.5)}}  # yaw 3.0 rad
    rows = [
        base | {"question": "What is on my left?", "answers": [{"answer": "table"}], "answer": "The table."},
        # 0.2 m and 10.5 deg off (across the wrap)
        base | {"question": "Is the door open?", "answers": [{"answer": "yes"}], "answer": "no",
                "agent_pos": {"x": 1.2, "y": 2.0, "z": 0}, "agent_rot": list(yaw_quat(-3.1))},
        base | {"question": "How many chairs?", "answers": [{"answer": "two"}], "answer": "2",
                "situation": "I stand by the door.",  # another situation, the same gold
                "agent_pos": [[9, 9, 0], [1.0, 2.7, 0]], "agent_rot": [list(yaw_quat(2.0))]},  # 0.7 m, 57 deg
    ]
    score = score_sqa3d(located(rows))
    assert score.n == 3
    assert score.overall == pytest.approx(200 / 3)
    assert score.groups == {"what": 100.0, "is": 0.0, "how": 100.0}
    assert score.extra == pytest.approx({"acc@0.5m": 50.0, "acc@1.0m": 100.0, "acc@15deg": 50.0, "acc@30deg": 50.0})
    assert score.notes == ["localization scored per situation: 2 situations"]


def test_sqa3d_rejects_a_vsibench_file():
    with pytest.raises(KeyError, match=r"preds.jsonl:1: missing field 'answers'.*SQA3D"):
        score_sqa3d(located([{"question_type": "object_counting", "ground_truth": "2", "prediction": "2"}]))


def test_training_metric_agrees_with_the_official_localization():
    """``metrics.LocalizationAccuracy`` (used by the situation objective) gives the same
    Acc@0.5m / Acc@15deg as the official per-record rule on random situations."""
    from thinkspace.accuracy import LocalizationAccuracy

    gen = torch.Generator().manual_seed(0)
    gold_xy, pred_xy = torch.rand(200, 2, generator=gen) * 4, torch.rand(200, 2, generator=gen) * 4
    gold_yaw = (torch.rand(200, generator=gen) * 2 - 1) * math.pi
    pred_yaw = (torch.rand(200, generator=gen) * 2 - 1) * math.pi
    position, yaw = LocalizationAccuracy("position", 0.5), LocalizationAccuracy("yaw", 15.0)
    position.update(pred_xy.double(), pred_yaw.double(), gold_xy.double(), gold_yaw.double())
    yaw.update(pred_xy.double(), pred_yaw.double(), gold_xy.double(), gold_yaw.double())
    hits = [localization_hits(tuple(g.tolist()), float(gy), [tuple(p.tolist())], [float(py)])
            for g, gy, p, py in zip(gold_xy.double(), gold_yaw.double(), pred_xy.double(), pred_yaw.double())]
    assert float(position.compute()) == pytest.approx(sum(h["acc@0.5m"] for h in hits) / 200)
    assert float(yaw.compute()) == pytest.approx(sum(h["acc@15deg"] for h in hits) / 200)
