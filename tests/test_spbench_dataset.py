"""``SPBench``: the released parquet's columns (as a jsonl export), the official prompt, and the
official result records the scorer (and upstream's ``vsibench_eval``) reads.

Records: tests/fixtures/spbench (reconstructed from a conversion of the released SPBench, Apache-2.0;
see its README); images are stand-ins of one colour each at ``images/{scene_name}/{frame}``.
"""

import json
import re

import benchmark_fixtures as fx
import numpy as np
import pytest
from cli_helpers import REPO

from thinkspace.data.datasets.spbench import SPBench
from thinkspace.eval.spbench import score_spbench

FIXTURES = REPO / "tests" / "fixtures" / "spbench"
#: the official result record's keys (SpatialLadder eval_spld/data_utils/spbench.py, lines 153-162).
RESULT_KEYS = ["id", "dataset", "scene_name", "question", "ground_truth", "predicted_answer", "question_type", "prompt"]
THINK = ("Please think about this question as if you were a human pondering deeply. Engage in an internal dialogue "
         "using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other "
         "natural language thought expressions It's encouraged to include self-reflection or verification in the "
         "reasoning process. \n")


def released(root, split="SI", count=None):
    """The fixture split as ``SPBench-{split}/SPBench-{split}.jsonl`` with stand-in images beside it."""
    rows = [json.loads(line) for line in (FIXTURES / f"SPBench-{split}.sample.jsonl").read_text().splitlines()]
    rows = rows[:count]
    for k, row in enumerate(rows):
        for v, frame in enumerate(row["images"]):
            fx.image(root / f"SPBench-{split}" / "images" / row["scene_name"] / frame, (5 * k, 20 * v, 7))
    return fx.write_jsonl(root / f"SPBench-{split}" / f"SPBench-{split}.jsonl", rows), rows


def test_reads_the_released_columns_with_the_official_thinking_prompt(tmp_path):
    path, _ = released(tmp_path)
    dataset = SPBench(str(path))  # images from images/ beside the file, as upstream's layout
    assert len(dataset) == 48
    first = dataset[0]  # id 11: object_rel_direction
    assert (first.id, first.task, first.answer, first.answer_type) == ("11", "object_rel_direction", "D", "choice")
    assert first.prompt == (
        "Question: From the camera's perspective, is the keyboard to the telephone's left, right, front, or back?\n"
        "Options:\nA. left\nB. right\nC. front\nD. back\n" + THINK + "\nPlease provide your detailed reasoning "
        "between the <think> </think> tags, and then answer the question with the option's letter from the given "
        "choices (e.g., A, B, etc.) within the <answer> </answer> tags.")
    assert len(first.frames) == 1 and first.timestamps is None and first.geometry is None
    number = next(dataset[i] for i in range(len(dataset)) if dataset[i].task == "object_size_estimation")
    assert number.answer_type == "number" and isinstance(number.answer, float)
    assert number.prompt.endswith("\n\nPlease provide your detailed reasoning between the <think> </think> tags, and "
                                  "then answer the question with a numerical value (e.g., 42 or 3.1) within the "
                                  "<answer> </answer> tags.")
    assert "Options:" not in number.prompt


def test_default_prompt_and_multi_view_frames_in_order(tmp_path):
    path, _ = released(tmp_path, "MV", count=3)
    sample = SPBench(str(path), prompt_type="default")[0]  # id 6: eight frames of scene0050_01
    assert sample.prompt == ("Question: How many laptop(s) appear?\n\nPlease answer the question using a numerical "
                             "value (e.g., 42 or 3.1) directly.")
    assert sample.answer == 2.0 and sample.task == "object_counting"
    corners = np.array([np.asarray(f)[0, 0] for f in sample.frames], dtype=float)
    np.testing.assert_allclose(corners, [(0, 20 * v, 7) for v in range(8)], atol=3)  # listed order


def test_prediction_records_are_the_official_results_the_scorer_reads(tmp_path):
    path, rows = released(tmp_path)
    dataset = SPBench(str(path))
    records = [dataset.prediction_record(i, rows[i]["ground_truth"]) for i in range(len(dataset))]
    assert list(records[0]) == RESULT_KEYS
    assert records[0]["id"] == 11 and records[0]["question"] == rows[0]["question"]  # as released: no options
    assert records[0]["prompt"] == dataset[0].prompt
    score = score_spbench([(f"r:{n}", r) for n, r in enumerate(records)], **dataset.score_options())
    assert score.overall == 100.0 and score.counts == dict.fromkeys(
        ["object_rel_direction", "object_rel_distance", "object_abs_distance", "object_size_estimation"], 12)
    # the official results file of the fixture was written by this method: same records, same prompts
    pinned = [json.loads(line) for line in (FIXTURES / "SPBench-SI_results.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "predicted_answer"} for r in records] == [
        {k: v for k, v in r.items() if k != "predicted_answer"} for r in pinned]


@pytest.mark.parametrize("edit, message", [
    ({"ground_truth": "E"}, r"SPBench-SI.jsonl:2: ground_truth 'E' of sample '48' is not one of the option letters"),
    ({"images": []}, r"SPBench-SI.jsonl:2: sample '48' lists no images"),
    ({"question_type": "route_planning"}, r"SPBench-SI.jsonl:2: unknown question_type 'route_planning' of sample '48'"),
    # refused when read, not on rank 0 after the whole test run when the scorer meets it
    ({"question_type": "object_counting", "ground_truth": "0", "options": None},
     r"SPBench-SI.jsonl:2: ground_truth '0' of sample '48' is not a positive number"),
])
def test_bad_records_name_file_line_and_expectation(tmp_path, edit, message):
    path, rows = released(tmp_path, count=3)
    rows[1].update(edit)
    fx.write_jsonl(path, rows)
    with pytest.raises(ValueError, match=message):
        len(SPBench(str(path)))


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"prompt_type: 'map'; expected one of \['thinking', 'default'\]"):
        SPBench("x.parquet", prompt_type="map")
    with pytest.raises(ValueError, match=r"question_types: unknown \['counting'\]; expected some of"):
        SPBench("x.parquet", question_types=["counting"])


def test_type_filter_and_missing_image(tmp_path):
    path, rows = released(tmp_path)
    kept = SPBench(str(path), question_types=["object_rel_distance"])
    assert len(kept) == 12 and {kept[i].task for i in range(12)} == {"object_rel_distance"}
    path, rows = released(tmp_path, count=6)
    missing = tmp_path / "SPBench-SI" / "images" / rows[2]["scene_name"] / rows[2]["images"][0]
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing.relative_to(tmp_path / "SPBench-SI")))):
        SPBench(str(path))[2]
    with pytest.warns(UserWarning, match="skipped 1 of 6"):
        assert len(SPBench(str(path), skip_missing=True)) == 5


@pytest.mark.slow
def test_thinkspace_test_writes_results_score_reads(tmp_path, capsys):
    """The real CLI on the tiny model: released MV records through generation to the official results
    layout, scored at the end of the run and again by ``thinkspace score spbench``."""
    from cli_helpers import QUICKSTART, command

    from thinkspace.cli import main

    path, rows = released(tmp_path, "MV", count=4)
    args = ["--config", str(QUICKSTART), "--run_dir", str(tmp_path / "run"),
            "--data.test", "thinkspace.data.datasets.spbench.SPBench", "--data.test.init_args.path", str(path),
            "--data.batch_size", "2", "--data.num_workers", "0", "--model.generation.max_new_tokens", "3",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["test", *args]) == 0
    run = tmp_path / "run"
    written = [json.loads(line) for line in (run / "predictions_test_spbench.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in written) == sorted(r["id"] for r in rows)
    assert all(list(r) == RESULT_KEYS and isinstance(r["predicted_answer"], str) for r in written)
    logged = json.loads((run / "scores_test_spbench.json").read_text())
    # four counting questions: object_rel_direction is the official aggregation's 0 entry
    assert logged["n"] == 4 and set(logged["by_type"]) == {"object_rel_direction", "object_counting"}
    capsys.readouterr()
    assert command("score")(["spbench", str(run / "predictions_test_spbench.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in logged.items() if k != "notes"}


def test_eval_config_keeps_the_official_settings():
    """configs/eval/spbench.yaml (also instantiated by tests/test_configs.py): upstream's pixels, tokens, prompt."""
    import yaml

    raw = yaml.safe_load((REPO / "configs" / "eval" / "spbench.yaml").read_text())
    init = raw["model"]["backbone"]["init_args"]
    assert (init["min_pixels"], init["max_pixels"]) == (16 * 28 * 28, 512 * 28 * 28)
    assert raw["model"]["generation"]["max_new_tokens"] == 1024  # the thinking prompt's budget upstream
    test = raw["data"]["test"]
    assert test["class_path"] == "thinkspace.data.datasets.spbench.SPBench"
    assert test["init_args"]["prompt_type"] == "thinking"


def test_frames_that_are_not_file_names_are_refused(tmp_path):
    """A copy whose ``images`` were cast to the Image feature (``{"bytes", "path"}``) is named, not joined."""
    row = json.loads((FIXTURES / "SPBench-SI.sample.jsonl").read_text().splitlines()[0])
    path = fx.write_jsonl(tmp_path / "SPBench-SI.jsonl", [{**row, "images": [{"path": "240.jpg"}]}])
    with pytest.raises(TypeError, match=r"SPBench-SI.jsonl:1: images of sample '11' hold a dict \(\{'path': "
                                        r"'240.jpg'\}\); expected frame file names such as '200.jpg'"):
        len(SPBench(str(path)))
