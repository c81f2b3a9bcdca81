"""SPBench scoring equals SpatialLadder's ``vsibench_eval`` on messy predictions it scored.

Provenance of the pinned numbers: tests/fixtures/spbench/README.md (the official scorer, SpatialLadder
87320be ``eval_spld``, run in a scratch directory on the fixture's results files).
"""

import json

import pytest
from cli_helpers import REPO, command, one_error_line

from thinkspace.eval.spbench import (
    answer_text,
    score_record,
    score_spbench,
    spbench_choice,
    spbench_number,
)
from thinkspace.records import read_jsonl

FIXTURES = REPO / "tests" / "fixtures" / "spbench"
#: the official dict per (split, prompt_type): per-type metrics, overall_accuracy, mca_accuracy, na_accuracy.
OFFICIAL = {
    ("SI", "thinking"): ({"object_rel_direction": 0.5833333333333334, "object_rel_distance": 0.4166666666666667,
                          "object_abs_distance": 0.2916666666666667, "object_size_estimation": 0.48333333333333334},
                         0.44375000000000003, 0.5, 0.3875),
    ("SI", "default"): ({"object_rel_direction": 0.5, "object_rel_distance": 0.25, "object_abs_distance": 0.375,
                         "object_size_estimation": 0.48333333333333334}, 0.40208333333333335, 0.375, 0.4291666666666667),
    ("MV", "thinking"): ({"object_rel_direction": 0.625, "object_rel_distance": 0.25, "object_abs_distance": 0.6375,
                          "object_size_estimation": 0.3625, "object_counting": 0.625}, 0.5, 0.4375, 0.5416666666666666),
    ("MV", "default"): ({"object_rel_direction": 0.375, "object_rel_distance": 0.25, "object_abs_distance": 0.6375,
                         "object_size_estimation": 0.375, "object_counting": 0.625}, 0.4525, 0.3125, 0.5458333333333333),
}
#: ``vsibench_process_results`` per record, in file order: 0-9 tenths, X = 1.
OFFICIAL_RECORDS = {
    ("SI", "thinking"): "XXX00X0XXX00008002270655X00X11X600XX0000XXX0X00X",
    ("SI", "default"): "XXX0000XXX00X08002270655X00X11X600XX00000XX0000X",
    ("MV", "thinking"): "X11X7X1XX0090X00XXX0X00XX4XX01X6XX000000",
    ("MV", "default"): "X11X7X1XX000XX000XX0000XX4XX01X6XX000000",
}

score_main = command("score")


def results(split):
    return read_jsonl(FIXTURES / f"SPBench-{split}_results.jsonl")


@pytest.mark.parametrize("split, mode", sorted(OFFICIAL))
def test_messy_predictions_score_as_the_official_code(split, mode):
    by_type, overall, mca, na = OFFICIAL[(split, mode)]
    score = score_spbench(results(split), prompt_type=mode)
    assert score.groups == pytest.approx({k: 100 * v for k, v in by_type.items()})
    assert score.overall == pytest.approx(100 * overall)
    assert score.extra == pytest.approx({"mca_accuracy": 100 * mca, "na_accuracy": 100 * na})
    assert score.n == {"SI": 48, "MV": 40}[split] and set(score.counts.values()) == {12 if split == "SI" else 8}


@pytest.mark.parametrize("split, mode", sorted(OFFICIAL_RECORDS))
def test_each_record_as_the_official_code(split, mode):
    digits = ""
    for where, r in results(split):
        value = score_record(r["question_type"], r["predicted_answer"], r["ground_truth"], where, mode)
        digits += "X" if value == 1 else str(round(value * 10))
    assert digits == OFFICIAL_RECORDS[(split, mode)]


def test_without_object_rel_direction_the_official_zero_counts():
    """The official aggregation adds object_rel_direction = 0 when a file has none (pinned: 0.29791666...)."""
    kept = [r for r in results("SI") if r[1]["question_type"] != "object_rel_direction"]
    score = score_spbench(kept)
    assert score.groups["object_rel_direction"] == 0.0 and "object_rel_direction" not in score.counts
    assert score.overall == pytest.approx(100 * 0.29791666666666666)
    assert score.extra == pytest.approx({"mca_accuracy": 100 * 0.20833333333333334, "na_accuracy": 100 * 0.3875})
    assert "counts object_rel_direction as 0" in score.notes[0]


@pytest.mark.parametrize("text, read", [
    ("B", "B"), ("B. laptop", "B"), ("b", "b"), ("(B)", "(B)"), ("The answer is B", "The answer is B"),
    ("Answer: C", "C"), (" C", "C"), ("C\n", "C"), ("c.", "c."), ("D, because", "D, because"),
])
def test_choice_rule(text, read):
    assert spbench_choice(text) == read


@pytest.mark.parametrize("text, number", [
    ("3.5", 3.5), ("3.5 meters", 3.5), ("a 2 m gap", 1.0), ("two or one", 1.0), ("-3", 3.0), ("1,250", 1.0),
    ("eleven", 11.0), ("twenty-one", 1.0), ("about 1e2", 1.0), ("zero", 0.0), ("None", None), ("", None),
    ("Seventy", 70.0), ("answer", None),
])
def test_number_rule(text, number):
    assert spbench_number(text) == number


def test_answer_tags_only_under_thinking():
    assert answer_text("<think>x</think><answer> B </answer>") == "B"
    assert answer_text("<answer>B") == "None"  # unclosed: the official "None"
    assert answer_text("<answer>B</answer>", "default") == "<answer>B</answer>"
    with pytest.raises(ValueError, match="prompt_type 'map'; expected one of"):
        answer_text("B", "map")


@pytest.mark.parametrize("edit, message", [
    ({"question_type": "route"}, r"SPBench-SI_results.jsonl:2: unknown SPBench question_type 'route'"),
    ({"question_type": "object_counting", "ground_truth": "0"}, r":2: ground_truth '0' of a object_counting question"),
    # a negative truth would make every answer's relative error negative (score 1); NaN would score nothing
    ({"question_type": "object_counting", "ground_truth": "-3"}, r"ground_truth '-3' .* is not a positive number"),
    ({"question_type": "object_abs_distance", "ground_truth": "nan"}, r"ground_truth 'nan' .* is not a positive"),
])
def test_bad_records_name_file_and_line(edit, message):
    records = results("SI")
    records[1][1].update(edit)
    with pytest.raises(ValueError, match=message):
        score_spbench(records)


def test_score_command_reads_the_official_results_file(capsys):
    assert score_main(["spbench", str(FIXTURES / "SPBench-MV_results.jsonl"), "--json"]) == 0
    out = capsys.readouterr()
    printed = json.loads(out.out)
    assert printed["benchmark"] == "spbench" and printed["n"] == 40
    assert printed["overall"] == pytest.approx(50.0)
    assert printed["extra"] == pytest.approx({"mca_accuracy": 43.75, "na_accuracy": 100 * 0.5416666666666666})
    assert "scored 40 records (no known size for spbench" in out.err


def test_score_command_prompt_type_and_gold(capsys):
    """``--prompt-type default`` gives the official default-mode numbers; the split file as ``--gold``."""
    path = FIXTURES / "SPBench-SI_results.jsonl"
    gold = FIXTURES / "SPBench-SI.sample.jsonl"
    assert score_main(["spbench", str(path), "--json", "--prompt-type", "default", "--gold", str(gold)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["overall"] == pytest.approx(100 * 0.40208333333333335)
    assert "scored 48 records of the gold file's 48 questions" in out.err
    assert score_main(["vsibench", str(path), "--prompt-type", "default"]) == 2
    assert "--prompt-type is for spbench, not vsibench" in one_error_line(capsys, "score")


def test_missing_response_names_the_field(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    row = dict(results("SI")[0][1])
    del row["predicted_answer"]
    path.write_text(json.dumps(row) + "\n")
    assert score_main(["spbench", str(path)]) == 2
    assert "r.jsonl:1: missing field 'predicted_answer'" in one_error_line(capsys, "score")
