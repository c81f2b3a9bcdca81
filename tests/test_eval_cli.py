"""``thinkspace score`` and the predictions ``thinkspace test``/``predict`` leave behind."""

import json
import re

import pytest

import benchmark_fixtures as fx
from cli_helpers import QUICKSTART, command, one_error_line

score_main = command("score")

MINDCUBE_PREDICTIONS = [
    {"id": "among_1", "gt_answer": "A", "answer": "A. left"},
    {"id": "among_2", "gt_answer": "B", "answer": "<Answer> C"},
    {"id": "rotation_1", "gt_answer": "C", "answer": "The answer is C"},
    {"id": "translation_1", "gt_answer": "D", "answer": "D"},
]


def test_score_json(tmp_path, capsys):
    path = fx.write_jsonl(tmp_path / "preds.jsonl", MINDCUBE_PREDICTIONS)
    assert score_main(["mindcube", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert set(out) == {"benchmark", "n", "overall", "by_setting"}
    assert out["benchmark"] == "mindcube" and out["n"] == 4
    assert "translation record(s) excluded from overall" in captured.err
    assert out["overall"] == pytest.approx(200 / 3)
    assert out["by_setting"] == {"rotation": 100.0, "translation": 100.0, "among": 50.0}


def test_score_table_and_response_field(tmp_path, capsys):
    rows = [r | {"reply": "E"} for r in MINDCUBE_PREDICTIONS]
    path = fx.write_jsonl(tmp_path / "preds.jsonl", rows)
    assert score_main(["mindcube", str(path)]) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "66.67" in table and "translation" in table
    assert score_main(["mindcube", str(path), "--response-field", "reply", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"] == 0.0


def test_score_vsibench_by_type(tmp_path, capsys):
    path = fx.write_jsonl(tmp_path / "preds.jsonl", [
        {"id": 1, "question_type": "object_counting", "ground_truth": "4", "prediction": "5"},
        {"id": 2, "question_type": "route_planning", "ground_truth": "B", "prediction": "b."}])
    assert score_main(["vsibench", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # |5 - 4| / 4 = 0.25 passes theta 0.50 ... 0.75: 6 of 10 thresholds
    assert out["by_type"] == pytest.approx({"object_counting": 60.0, "route_planning": 100.0})
    assert out["overall"] == pytest.approx(80.0)


@pytest.mark.parametrize("which, rows, message", [
    ("vsibench", MINDCUBE_PREDICTIONS, r"preds.jsonl:1: missing field 'question_type'"),
    ("sqa3d", MINDCUBE_PREDICTIONS, r"preds.jsonl:1: missing field 'answers'"),
    ("mindcube", [{"id": "among_1", "gt_answer": "A", "answer": "A"}, "{oops"], r"preds.jsonl:2: malformed JSON"),
    ("mindcube", [{"id": "among_1", "gt_answer": "A"}], r"preds.jsonl:1: missing field 'answer'.*--response-field"),
])
def test_score_bad_input_exits_2_naming_file_and_line(tmp_path, capsys, which, rows, message):
    path = fx.write_jsonl(tmp_path / "preds.jsonl", rows)
    assert score_main([which, str(path)]) == 2
    assert re.search(message, one_error_line(capsys, "score"))


def test_score_is_a_thinkspace_subcommand(tmp_path, capsys):
    from thinkspace.cli import main

    path = fx.write_jsonl(tmp_path / "preds.jsonl", MINDCUBE_PREDICTIONS)
    assert main(["score", "mindcube", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"] == pytest.approx(200 / 3)
    assert main(["score", "mindcube", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl not found" in one_error_line(capsys, "score")
    assert main(["score", "mindcube", str(path), "--localization", "gold.json"]) == 2
    assert one_error_line(capsys, "score") == "thinkspace score: error: --localization is for sqa3d, not mindcube"
    assert main(["score", "nobench", str(path)]) == 2  # argparse's own errors take the same road
    assert one_error_line(capsys, "score").startswith("thinkspace score: error: argument benchmark: invalid choice")


@pytest.mark.slow
def test_test_and_predict_write_scorable_predictions(tmp_path, capsys):
    """The real CLI in this process (the tiny model is cached): test, then predict."""
    from thinkspace.cli import main

    data = fx.mindcube(tmp_path)
    args = ["--config", str(QUICKSTART), "--run_dir", str(tmp_path / "run"),
            "--data.test", "thinkspace.data.datasets.mindcube.MindCube",
            "--data.test.init_args.path", str(data), "--data.test.init_args.image_root", str(tmp_path),
            "--data.predict", "thinkspace.data.datasets.mindcube.MindCube",
            "--data.predict.init_args.path", str(data), "--data.predict.init_args.image_root", str(tmp_path),
            "--data.batch_size", "2", "--data.num_workers", "0", "--model.generation.max_new_tokens", "3",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["test", *args]) == 0
    run = tmp_path / "run"
    predictions = [json.loads(line) for line in (run / "predictions_test_mindcube.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == ["among_group001_q1_1_2", "around_scene_q3", "translation_x_q2"]
    assert all(isinstance(p["answer"], str) and p["gt_answer"] in "AB" for p in predictions)
    logged = json.loads((run / "scores_test_mindcube.json").read_text())
    assert logged["n"] == 3 and set(logged["by_setting"]) == {"among", "around", "translation"}
    capsys.readouterr()
    assert score_main(["mindcube", str(run / "predictions_test_mindcube.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in logged.items() if k != "notes"}
    assert main(["predict", *args]) == 0
    predicted = (run / "predictions_predict_mindcube.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in predicted] == [p["id"] for p in predictions]
