"""``thinkspace score`` refuses a question scored twice and says how many records it scored
against how many the benchmark (or a gold file) has, naming the missing ones."""

import json
import re

import benchmark_fixtures as fx
from cli_helpers import command, one_error_line

from thinkspace.eval.coverage import coverage_note

score_main = command("score")

ROWS = [{"id": "among_1", "gt_answer": "A", "answer": "A"}, {"id": "among_2", "gt_answer": "B", "answer": "C"},
        {"id": "rotation_1", "gt_answer": "C", "answer": "C"}]


def test_a_question_scored_twice_is_refused_naming_both_lines(tmp_path, capsys):
    path = fx.write_jsonl(tmp_path / "preds.jsonl", [*ROWS, ROWS[1]])
    assert score_main(["mindcube", str(path), "--json"]) == 2
    assert re.search(rf"{path}: question id 'among_2' at line 2 and again at line 4; expected each id once$",
                     one_error_line(capsys, "score"))


def test_the_count_scored_is_set_against_the_known_size(tmp_path, capsys):
    path = fx.write_jsonl(tmp_path / "preds.jsonl", ROWS)
    assert score_main(["mindcube", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 3
    assert "note: scored 3 records; MindCube-Tiny has 1050: MISSING 1047" in captured.err
    assert score_main(["mindcube", str(path)]) == 0  # the table prints the same line
    assert "scored 3 records; MindCube-Tiny has 1050: MISSING 1047" in capsys.readouterr().out


def test_a_gold_file_names_the_missing_questions(tmp_path, capsys):
    preds = fx.write_jsonl(tmp_path / "preds.jsonl", ROWS[:2])
    gold = fx.write_jsonl(tmp_path / "gold.jsonl", [{"id": r["id"]} for r in ROWS])
    assert score_main(["mindcube", str(preds), "--gold", str(gold), "--json"]) == 0
    assert "note: scored 2 records of the gold file's 3 questions; MISSING 1: rotation_1" in capsys.readouterr().err


def test_sqa3d_gold_is_the_official_question_file(tmp_path, capsys):
    questions, _ = fx.sqa3d(tmp_path)
    asked = json.loads(questions.read_text())["questions"]
    questions.write_text(json.dumps({"questions": [*asked, {**asked[0], "question_id": 7}]}))
    preds = fx.write_jsonl(tmp_path / "preds.jsonl", [
        {"question_id": 220602000002, "question": "What is on my left?", "answers": [{"answer": "table"}], "answer": "table"}])
    assert score_main(["sqa3d", str(preds), "--gold", str(questions), "--json"]) == 0
    assert "note: scored 1 records of the gold file's 2 questions; MISSING 1: 7" in capsys.readouterr().err


def test_coverage_lines():
    assert coverage_note("vsibench", None, 5130) == "scored 5130 of VSI-Bench's 5130 questions"
    assert coverage_note("sqa3d", None, 3600).startswith("scored 3600 records (more than SQA3D's test split's 3519")
    assert "no known size for ego3d: give --gold FILE" in coverage_note("ego3d", None, 6)
    assert coverage_note("mindcube", ["a", "z"], 2, ["a", "b"]) == (
        "scored 2 records of the gold file's 2 questions; MISSING 1: b; 1 record(s) not in the gold file")
