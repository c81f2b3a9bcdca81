"""ViewSpatial-Bench scoring equals the official ``evaluate.py`` on messy predictions it scored.

Provenance of the pinned numbers: tests/fixtures/viewspatial/README.md (the official ``evaluate_vlm``
run on the fixture's records in a scratch directory; its printout and its result CSV).
"""

import json
import re

import benchmark_fixtures as fx
import pytest
from cli_helpers import REPO, command, one_error_line

from thinkspace.eval.viewspatial import (
    score_viewspatial,
    viewspatial_correct,
    viewspatial_option,
)
from thinkspace.records import read_jsonl

MESSY = REPO / "tests" / "fixtures" / "viewspatial" / "messy_predictions.jsonl"
#: the official script's printout: "<type>: correct/total = ..." and the overall 23/48 = 47.92%.
OFFICIAL_COUNTS = {
    "Camera perspective - Relative Direction": (5, 9),
    "Camera perspective - Object View Orientation": (4, 9),
    "Person perspective - Object View Orientation": (4, 9),
    "Person perspective - Relative Direction": (6, 12),
    "Person perspective - Scene Simulation Relative Direction": (4, 9),
}
#: the official result CSV's IsCorrect per record, in file order (records without a CSV row: wrong).
OFFICIAL_IS_CORRECT = "111110000010100110110000101111100000101001101100"

score_main = command("score")


def test_messy_predictions_score_as_the_official_script():
    score = score_viewspatial(read_jsonl(MESSY))
    assert score.n == 48
    assert score.overall == pytest.approx(100 * 23 / 48)  # printed 47.92%
    assert score.counts == {k: total for k, (_, total) in OFFICIAL_COUNTS.items()}
    assert score.groups == pytest.approx({k: 100 * c / t for k, (c, t) in OFFICIAL_COUNTS.items()})
    assert score.extra == pytest.approx({"camera_perspective": 100 * 9 / 18, "person_perspective": 100 * 14 / 30})
    assert "17 response(s) without a letter A-D on their last line" in score.notes[0]


def test_each_record_as_the_official_csv():
    records = [r for _, r in read_jsonl(MESSY)]
    ours = "".join("1" if viewspatial_correct(r["prediction"], r["answer"]) else "0" for r in records)
    assert ours == OFFICIAL_IS_CORRECT


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("b", "B"), ("(c)", "C"), ("**D**", "D"), ("<answer>A</answer>", "A"), ("A.B", "A"),
    ("I think a chair, so C", "A"),  # the article "a" is a standalone letter: official
    ("Answer: D", "D"), ("BD", None), ("option E", None), ("选项D", None),  # CJK letters are word characters
    ("", None), (None, None),
])
def test_letter_rule(text, letter):
    assert viewspatial_option(text) == letter


def test_only_the_last_line_is_read():
    assert viewspatial_correct("B\nbecause it is behind", "B. back") is False
    assert viewspatial_correct("Reasoning...\r\nB", "B. back") is True
    assert viewspatial_correct("\nB\n", "B. back") is False  # the last line is empty


def test_gold_without_a_letter_is_refused():
    with pytest.raises(ValueError, match=r"f.jsonl:3: gold answer 'left' holds no option letter A-D"):
        viewspatial_correct("A", "left", "f.jsonl:3")


def test_score_command_json_and_gold_positions(tmp_path, capsys):
    """``thinkspace score viewspatial``: the pinned numbers, and the released json (no ids) as --gold."""
    records = [r for _, r in read_jsonl(MESSY)]
    released = tmp_path / "ViewSpatial-Bench.json"
    released.write_text(json.dumps([{k: v for k, v in r.items() if k not in ("id", "prediction")}
                                    for r in records[:3]] * 2))  # positions 0..5
    assert score_main(["viewspatial", str(MESSY), "--json", "--gold", str(released)]) == 0
    out = capsys.readouterr()
    score = json.loads(out.out)
    assert score["n"] == 48 and score["overall"] == pytest.approx(100 * 23 / 48)
    assert score["by_type"]["Person perspective - Relative Direction"] == pytest.approx(50.0)
    missing = 6 - len({r["id"] for r in records} & {"0", "1", "2", "3", "4", "5"})
    assert f"of the gold file's 6 questions; MISSING {missing}" in out.err


def test_score_command_counts_against_the_released_size(tmp_path, capsys):
    assert score_main(["viewspatial", str(MESSY)]) == 0
    assert "scored 48 records; ViewSpatial-Bench has 5712: MISSING 5664" in capsys.readouterr().out


@pytest.mark.parametrize("rows, message", [
    ([{"id": "0", "answer": "A. left", "prediction": "A"}], r"preds.jsonl:1: missing field 'question_type'"),
    ([{"id": "0", "question_type": "t", "answer": "A. left"}], r"preds.jsonl:1: missing field 'prediction'.*--response-field"),
    ([{"id": "0", "question_type": "t", "answer": "left", "prediction": "A"}],
     r"preds.jsonl:1: gold answer 'left' holds no option letter"),
    ([{"id": "0", "question_type": "t", "answer": "A. x", "prediction": "A"}] * 2,
     r"question id '0' at line 1 and again at line 2"),
])
def test_bad_input_names_file_line_and_expectation(tmp_path, capsys, rows, message):
    path = fx.write_jsonl(tmp_path / "preds.jsonl", rows)
    assert score_main(["viewspatial", str(path)]) == 2
    assert re.search(message, one_error_line(capsys, "score"))


OFFICIAL_CSV = REPO / "tests" / "fixtures" / "viewspatial" / "official_result.csv"


def test_the_official_result_csv_scores_its_rows(capsys):
    """The official script's own CSV (the run above): the 44 rows it wrote, each IsCorrect as our rule gives."""
    assert score_main(["viewspatial", str(OFFICIAL_CSV), "--json"]) == 0
    out = capsys.readouterr()
    score = json.loads(out.out)
    assert score["n"] == 44 and score["overall"] == pytest.approx(100 * 23 / 44)  # 23 correct, as printed
    assert score["by_type"]["Camera perspective - Relative Direction"] == pytest.approx(100 * 5 / 8)
    assert "4 ID(s) absent from the official result CSV (8, 14, 34, 40)" in out.err


def test_csv_row_disagreeing_with_the_rule_is_named(tmp_path, capsys):
    lines = OFFICIAL_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    text = "".join(lines)
    first_true = text.index(",True\n")
    path = tmp_path / "result.csv"
    path.write_text(text[:first_true] + ",False\n" + text[first_true + len(",True\n"):], encoding="utf-8")
    assert score_main(["viewspatial", str(path)]) == 2
    assert re.search(r"result.csv:\d+: IsCorrect 'False' but the official rule gives True", one_error_line(capsys, "score"))


def test_csv_without_the_official_columns_is_refused(tmp_path, capsys):
    path = tmp_path / "result.csv"
    path.write_text("ID,Question_Type,Answer\n0,t,A\n")
    assert score_main(["viewspatial", str(path)]) == 2
    assert "result.csv: not the official result CSV: no column(s) ['Correct Answer', 'Predicted Answer', 'Question'" \
        in one_error_line(capsys, "score")
