"""SQA3D scoring details as LEO / MSR3D score it: question types by prefix, the ``o' clock`` cleaning
rule, EM-R (refined exact match), checked on released SQA3D test records where they matter."""

import json
from pathlib import Path

import pytest

import benchmark_fixtures as fx
from cli_helpers import command, one_error_line
from thinkspace.answers import same_text, sqa3d_normalise, sqa3d_refined_match
from thinkspace.eval import score_sqa3d
from thinkspace.eval.sqa3d import question_kind

#: the three released test questions starting "What's" (SQA3D's 3,519 test questions hold no others
#: whose type differs between the two rules)
WHATS = Path(__file__).parent / "fixtures" / "sqa3d_test_whats_questions.json"


def released_rows(path: Path, responses: dict[int, str]) -> list[tuple[str, dict]]:
    """SQA3D's question and annotation records joined by ``question_id``, with a response each."""
    data = json.loads(path.read_text())
    notes = {a["question_id"]: a for a in data["annotations"]}
    rows = [q | notes[q["question_id"]] | {"answer": responses.get(q["question_id"], "")} for q in data["questions"]]
    return [(f"{path.name}:{i + 1}", row) for i, row in enumerate(rows)]


def kinds(path: Path, rule: str) -> list[str]:
    return [question_kind(q["question"], rule) for q in json.loads(path.read_text())["questions"]]


def test_released_whats_questions_are_what_by_prefix_and_others_by_first_word():
    assert kinds(WHATS, "prefix") == ["what", "what", "what"]
    assert kinds(WHATS, "first_word") == ["others", "others", "others"]
    # the five scene0050_00 records change no type
    assert kinds(fx.SQA3D_RELEASED, "prefix") == kinds(fx.SQA3D_RELEASED, "first_word") == [
        "what", "what", "what", "how", "what"]


def test_score_groups_follow_the_question_type_rule():
    rows = released_rows(WHATS, {220602018742: "blinds", 220602020689: "mail boxes", 220602020833: "a laptop"})
    prefix = score_sqa3d(rows)
    assert prefix.groups == {"what": pytest.approx(100 / 3)} and prefix.counts == {"what": 3}
    first_word = score_sqa3d(rows, question_types="first_word")
    assert first_word.groups == {"others": pytest.approx(100 / 3)} and first_word.counts == {"others": 3}
    with pytest.raises(ValueError, match=r"question_types must be one of \('prefix', 'first_word'\), got 'word'"):
        score_sqa3d(rows, question_types="word")


@pytest.mark.parametrize("question, prefix, first_word", [
    ("What's on my left?", "what", "others"),
    ("  what is on my left?", "what", "others"),  # leading spaces: stripped by the prefix rule only
    ("Isn't the door open?", "is", "others"),
    ("Cannot I sit?", "can", "others"),
    ("Which, of the two?", "which", "others"),
    ("Is the door open?", "is", "is"),
    ("Where is the door?", "others", "others"),
    ("", "others", "others"),
])
def test_question_kind_rules(question, prefix, first_word):
    assert question_kind(question) == prefix
    assert question_kind(question, "first_word") == first_word


@pytest.mark.parametrize("text, expected", [
    ("3 o' clock", "three o'clock"),
    ("Three O'   Clock.", "three o'clock"),
    ("12 oclock", "twelve o'clock"),
    ("the a chair", "chair"),  # articles removed one rule after another, as officially
    ("a the chair", "chair"),
    ("table .", "table "),  # no final strip, as officially
    ("\ttable", "\ttable"),  # only spaces are trimmed
])
def test_official_cleaning_rules(text, expected):
    assert sqa3d_normalise(text) == expected


def test_thinkspace_same_text_strips_what_the_official_cleaning_keeps():
    assert same_text("<answer>table .</answer>", "table")
    assert not same_text("<answer>chair</answer>", "table")


@pytest.mark.parametrize("response, references, expected", [
    ("The table.", ["table"], (True, True)),
    ("brown chair", ["chair"], (False, True)),  # the reference inside the response
    ("chair", ["brown chair"], (False, True)),  # the response inside the reference
    ("mail boxes", ["mailboxes"], (False, True)),  # spaces removed before comparing
    ("", ["table"], (False, True)),  # an empty response is inside every reference, officially
    ("black", ["white"], (False, False)),
    ("red chair", ["chair", "red chair"], (False, True)),  # the first reference that matches decides
    ("2", ["two"], (True, True)),
])
def test_refined_match(response, references, expected):
    assert sqa3d_refined_match(response, references) == expected


def test_em_refined_column_on_released_records(tmp_path, capsys):
    responses = {220602000002: "piano", 220602004901: "tissues", 220602011619: "to my right",
                 220602000558: "2", 220602002614: "black"}
    score = score_sqa3d(released_rows(fx.SQA3D_RELEASED, responses))
    assert score.overall == 40.0 and score.groups == {"what": pytest.approx(100 / 4), "how": 100.0}
    assert score.columns == {"em_refined": {"what": 75.0, "how": 100.0, "overall": 80.0}}
    assert score.to_dict()["columns"] == {"em_refined": {"what": 75.0, "how": 100.0, "overall": 80.0}}
    assert score.metrics("test/sqa3d")["test/sqa3d/em_refined/overall"] == 80.0
    score.print_table()
    table = capsys.readouterr().out
    assert "em_refined %" in table and "80.00" in table

    path = fx.write_jsonl(tmp_path / "preds.jsonl", [row for _, row in released_rows(WHATS, {})])
    score_main = command("score")
    assert score_main(["sqa3d", str(path), "--question-types", "first_word", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["by_setting"] == {"others": 0.0}
    assert out["columns"] == {"em_refined": {"others": 100.0, "overall": 100.0}}  # empty responses, officially
    assert score_main(["vsibench", str(path), "--question-types", "prefix"]) == 2
    assert one_error_line(capsys, "score") == "thinkspace score: error: --question-types is for sqa3d, not vsibench"
