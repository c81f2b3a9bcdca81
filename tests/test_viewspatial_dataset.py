"""``ViewSpatialBench``: the released json layout, the official prompt, and predictions the scorer reads.

Records are released ones (tests/fixtures/viewspatial, Apache-2.0); their images are stand-ins of one
colour each, written at the released relative paths.
"""

import json
import re

import benchmark_fixtures as fx
import numpy as np
import pytest
from cli_helpers import REPO

from thinkspace.data.datasets.viewspatial import ViewSpatialBench
from thinkspace.eval.viewspatial import score_viewspatial

MESSY = REPO / "tests" / "fixtures" / "viewspatial" / "messy_predictions.jsonl"
#: fixture lines: one record per question type (27: two options; 43: three ScanNet frames).
LINES = [0, 9, 18, 27, 43]
RELEASED_FIELDS = ["question_type", "image_path", "question", "answer", "choices"]


def released(root, lines=LINES):
    """The records as in ``eval/ViewSpatial-Bench.json`` (a JSON list), images under ``root``."""
    rows = [json.loads(line) for line in MESSY.read_text().splitlines()]
    records = [{k: rows[n][k] for k in RELEASED_FIELDS} for n in lines]
    for k, record in enumerate(records):
        for v, path in enumerate(record["image_path"]):
            fx.image(root / path, (10 * k, 50 + 50 * v, 7))
    path = root / "eval" / "ViewSpatial-Bench.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path, records


@pytest.fixture()
def data(tmp_path):
    return released(tmp_path)


def test_reads_the_released_layout_with_the_official_prompt(data):
    path, records = data
    dataset = ViewSpatialBench(str(path))  # images found from the repository root (the json's parent's parent)
    assert len(dataset) == 5
    sample = dataset[0]
    assert sample.id == "0" and sample.task == "Camera perspective - Relative Direction"
    assert sample.prompt == (
        "If you're looking at the refrigerator, where would you find the table?A. back-down\nB. back-left\n"
        "C. front-right\nD. front-left\nReply only to the corresponding option.\nAnswer:")
    assert sample.prompt == records[0]["question"] + records[0]["choices"] + (
        "\nReply only to the corresponding option.\nAnswer:")
    assert (sample.answer, sample.response, sample.answer_type) == ("A", "A. back-down", "choice")
    assert sample.meta["options"] == ["A", "B", "C", "D"] and sample.geometry is None and sample.timestamps is None
    two = dataset[3]
    assert two.meta["options"] == ["A", "B"] and two.answer == "A"


def test_views_in_listed_order(data):
    path, _ = data
    frames = ViewSpatialBench(str(path))[4].frames
    corners = np.array([np.asarray(f)[0, 0] for f in frames], dtype=float)  # JPEG: within a few levels
    np.testing.assert_allclose(corners, [(40, 50, 7), (40, 100, 7), (40, 150, 7)], atol=3)


def test_image_size_and_type_filter_keep_positions_as_ids(data):
    path, _ = data
    dataset = ViewSpatialBench(str(path), image_size=[42, 28],
                               question_types=["Person perspective - Relative Direction"])
    assert [dataset[0].id] == ["3"] and dataset[0].frames[0].size == (42, 28)


def test_prediction_records_are_released_records_the_scorer_reads(data):
    path, records = data
    dataset = ViewSpatialBench(str(path))
    rows = [dataset.prediction_record(k, text) for k, text in enumerate(["A", "b", "so C", "x\nA", "D"])]
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [{k: r[k] for k in RELEASED_FIELDS} for r in rows] == records
    score = score_viewspatial([(f"p.jsonl:{n + 1}", r) for n, r in enumerate(rows)])
    assert score.overall == pytest.approx(60.0)  # golds A A B A D: "A", "x\nA", "D" right


@pytest.mark.parametrize("edit, message", [
    ({"answer": "C. left"}, r"ViewSpatial-Bench.json:#3: answer 'C. left' of sample '3' is not one of the options \['A', 'B'\]"),
    ({"image_path": []}, r"ViewSpatial-Bench.json:#3: sample '3' lists no images"),
])
def test_bad_records_name_file_position_and_expectation(tmp_path, edit, message):
    path, records = released(tmp_path)
    records[3].update(edit)
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=message):
        len(ViewSpatialBench(str(path)))


def test_unknown_question_type_filter_is_refused(data):
    with pytest.raises(ValueError, match=r"question_types: unknown \['Camera - Relative'\]; expected some of"):
        ViewSpatialBench(str(data[0]), question_types=["Camera - Relative"])


def test_missing_field_names_it(tmp_path):
    path, records = released(tmp_path)
    del records[1]["choices"]
    path.write_text(json.dumps(records))
    with pytest.raises(KeyError, match=r"ViewSpatial-Bench.json:#1: missing field 'choices'"):
        len(ViewSpatialBench(str(path)))


def test_missing_image_is_named_or_skipped(tmp_path):
    path, records = released(tmp_path)
    (tmp_path / records[2]["image_path"][0]).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(records[2]["image_path"][0])):
        ViewSpatialBench(str(path))[2]
    with pytest.warns(UserWarning, match="skipped 1 of 5"):
        assert len(ViewSpatialBench(str(path), skip_missing=True)) == 4


@pytest.mark.slow
def test_thinkspace_test_writes_records_score_reads(tmp_path, capsys):
    """The real CLI on the tiny model: released records through generation to a file ``thinkspace score``
    reads (and the official ``evaluate_vlm`` would: its fields, in a JSON list; docs/parity.md)."""
    from cli_helpers import QUICKSTART, command

    from thinkspace.cli import main

    path, records = released(tmp_path)
    args = ["--config", str(QUICKSTART), "--run_dir", str(tmp_path / "run"),
            "--data.test", "thinkspace.data.datasets.viewspatial.ViewSpatialBench",
            "--data.test.init_args.path", str(path),
            "--data.batch_size", "2", "--data.num_workers", "0", "--model.generation.max_new_tokens", "3",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["test", *args]) == 0
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "predictions_test_viewspatial.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["0", "1", "2", "3", "4"]
    assert all({k: r[k] for k in RELEASED_FIELDS} == records[int(r["id"])] for r in rows)
    assert all(isinstance(r["prediction"], str) for r in rows)
    logged = json.loads((run / "scores_test_viewspatial.json").read_text())
    assert logged["n"] == 5 and len(logged["by_type"]) == 5
    capsys.readouterr()
    assert command("score")(["viewspatial", str(run / "predictions_test_viewspatial.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in logged.items() if k != "notes"}
