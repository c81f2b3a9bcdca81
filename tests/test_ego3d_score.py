"""Ego3D-Bench scoring (``thinkspace score ego3d``) against the authors' released result logs.

Fixture ``tests/fixtures/ego3d_released/`` (its README names the source commits): the
expected numbers below are counted by hand from the rows' ``Processed_Pred`` and ``GT``
and agree with what upstream's ``utils/eval.py`` prints on the same files (README).
"""

import json
import math
import re

import benchmark_fixtures as fx
import pytest
from cli_helpers import REPO, command, one_error_line

from thinkspace.eval.ego3d import (
    CATEGORIES,
    category_of_file,
    choice_text,
    first_number,
    processed_prediction,
    read_ego3d_results,
    score_ego3d,
)

score_main = command("score")
RELEASED = REPO / "tests" / "fixtures" / "ego3d_released"
QWEN = RELEASED / "Qwen2.5-VL-7B-Instruct"

#: correct rows of 6 per category, counted from Processed_Pred vs GT (e.g. Motion: "B. no" never equals "no")
QWEN_CORRECT = {
    "Ego_Centric_Absolute_Distance_MultiChoice": 3,
    "Ego_Centric_Motion_Reasoning": 1,
    "Ego_Centric_Relative_Distance": 2,
    "Localization": 3,
    "Object_Centric_Absolute_Distance_MultiChoice": 2,
    "Object_Centric_Motion_Reasoning": 1,
    "Object_Centric_Relative_Distance": 5,
    "Travel_Time": 1,
}
#: (GT, prediction) of the rows kept: no-number rows ("Uncertain", "") and 0 dropped, 100 kept as is
QWEN_KEPT = {
    "Ego_Centric_Absolute_Distance": [(27.29, 3.75), (20.07, 3), (28.85, 1)],  # the last: "1." of a <think> list
    "Object_Centric_Absolute_Distance": [(42.01, 100), (32.62, 12), (12.79, 40)],
}
#: what upstream's utils/eval.py prints on these files (README)
UPSTREAM_RMSE = {"Ego_Centric_Absolute_Distance": 23.24606776783262,
                 "Object_Centric_Absolute_Distance": 38.85189227480862}


def by_hand_rmse(pairs):
    return math.sqrt(sum((t - p) ** 2 for t, p in pairs) / len(pairs))


def test_released_qwen_logs_score_as_upstream():
    score = score_ego3d(read_ego3d_results(QWEN))
    assert score.n == 60
    assert score.counts == {c: 6 for c in QWEN_CORRECT}
    assert score.groups == pytest.approx({c: 100 * k / 6 for c, k in QWEN_CORRECT.items()})
    for category, pairs in QWEN_KEPT.items():
        assert score.extra[f"{category}_rmse_m"] == pytest.approx(by_hand_rmse(pairs), abs=1e-12)
        assert score.extra[f"{category}_rmse_m"] == pytest.approx(UPSTREAM_RMSE[category], abs=1e-9)
    assert score.overall == pytest.approx(100 * sum(QWEN_CORRECT.values()) / 48)  # 18 of 48: 37.5
    assert "Object_Centric_Absolute_Distance: RMSE over 3 of 6 rows" in " ".join(score.notes)


def test_plain_category_file_name():
    path = RELEASED / "InternVL3-8B" / "Object_Centric_Absolute_Distance.jsonl"
    score = score_ego3d(read_ego3d_results(path))
    assert score.groups == {}
    assert score.extra == pytest.approx({"Object_Centric_Absolute_Distance_rmse_m": 3.372691803293031})
    assert math.isnan(score.overall) and any("no multiple-choice rows" in n for n in score.notes)


def test_score_command_on_a_folder_and_a_file(capsys):
    assert score_main(["ego3d", str(QWEN), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "ego3d" and out["n"] == 60
    assert out["overall"] == pytest.approx(37.5)
    assert out["by_category"]["Object_Centric_Relative_Distance"] == pytest.approx(500 / 6)
    assert out["extra"]["Ego_Centric_Absolute_Distance_rmse_m"] == pytest.approx(23.24606776783262)
    assert score_main(["ego3d", str(QWEN / "Localization-results.jsonl"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["by_category"] == {"Localization": 50.0} and out["overall"] == 50.0


def test_answer_extraction_follows_upstream_slicing():
    assert choice_text("<think>x</think><answer>\n B \n</answer>") == "b"
    assert choice_text("<answer>B") == ""  # no closing tag: upstream's [start+8:-1] cuts the last character
    assert choice_text("<answer>B.") == "b"
    assert choice_text("  A/n ") == "a"  # the literal two characters "/n" are removed, as upstream does
    assert choice_text("B. no") == "b. no"
    assert first_number("about -3.5 or 7") == -3.5 and first_number(".5 m") == 0.5 and first_number("none") is None
    assert processed_prediction("<think>t</think>\n<answer>\n12.5\n</answer>") == "12.5"
    assert processed_prediction("no tags") == "no tags"
    assert category_of_file("logs/m/Travel_Time-results.jsonl") == "Travel_Time"
    assert category_of_file("Localization.jsonl") == "Localization"
    assert len(CATEGORIES) == 10


def test_numeric_rows_dropped_capped_and_negative_kept():
    rows = [{"category": "Ego_Centric_Absolute_Distance", "GT": gt, "Processed_Pred": pred}
            for gt, pred in [("10", "0"), ("10", "0.0"), ("10", "n/a"), ("10", "250"), ("10", "-2"), (12, "12")]]
    score = score_ego3d([(f"f:{i}", r) for i, r in enumerate(rows)])
    # kept: (10, 100) capped, (10, -2) never floored, (12, 12); 0, 0.0 and no number dropped
    assert score.extra["Ego_Centric_Absolute_Distance_rmse_m"] == pytest.approx(math.sqrt((90**2 + 12**2) / 3))
    only_zero = score_ego3d([("f:1", rows[0])])
    assert only_zero.extra == {} and any("no row kept" in n for n in only_zero.notes)


@pytest.mark.parametrize("name, rows, message", [
    ("preds.jsonl", [{"GT": "A", "Processed_Pred": "A"}], r"preds.jsonl:1: no 'category' field and the file name"),
    ("Localization.jsonl", [{"GT": 2, "Processed_Pred": "A"}], r"Localization.jsonl:1: GT 2 of a Localization row is not text"),
    ("Travel_Time.jsonl", [{"GT": "A"}], r"Travel_Time.jsonl:1: missing field 'Processed_Pred'.*--response-field"),
    ("x.jsonl", [{"category": "Depth", "GT": "A", "Processed_Pred": "A"}], r"x.jsonl:1: unknown Ego3D-Bench category 'Depth'"),
    ("Ego_Centric_Absolute_Distance.jsonl", [{"GT": "far", "Processed_Pred": "3"}], r"GT 'far' .* is not a number"),
])
def test_bad_input_names_file_line_and_expectation(tmp_path, capsys, name, rows, message):
    path = fx.write_jsonl(tmp_path / name, rows)
    assert score_main(["ego3d", str(path)]) == 2
    assert re.search(message, one_error_line(capsys, "score"))


def test_empty_folder_is_an_error(tmp_path, capsys):
    assert score_main(["ego3d", str(tmp_path)]) == 2
    assert "no .jsonl result files in this folder" in one_error_line(capsys, "score")


def test_one_file_of_all_categories_splits_back_into_upstreams_files(tmp_path, capsys):
    """What ``thinkspace test`` writes (one file, a ``category`` per row) becomes upstream's layout again."""
    merged = fx.write_jsonl(tmp_path / "predictions_test_ego3d.jsonl", [r for _, r in read_ego3d_results(QWEN)])
    assert score_main(["ego3d", str(merged), "--split-into", str(tmp_path / "logs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"] == pytest.approx(37.5)
    written = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert written == sorted(p.name.replace("-results", "") for p in QWEN.iterdir())
    for path in QWEN.iterdir():
        ours = (tmp_path / "logs" / path.name.replace("-results", "")).read_text().splitlines()
        assert [json.loads(line) for line in ours] == [json.loads(line) for line in path.read_text().splitlines()]
    assert score_main(["mindcube", str(merged), "--split-into", str(tmp_path / "x")]) == 2
    assert one_error_line(capsys, "score") == "thinkspace score: error: --split-into is for ego3d, not mindcube"
