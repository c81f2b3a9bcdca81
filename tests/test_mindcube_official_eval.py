"""MindCube as 3DThinker's evaluation engine runs it: the record's ``answer`` is the first ``<answer>``
block (the whole response kept in ``reasoning_chain``), and the prompt is either the question (cut from
``input_prompt`` at ``[Question]``) or the raw ``input_prompt``."""

import re

import pytest

import benchmark_fixtures as fx
from cli_helpers import REPO
from thinkspace.answers import first_answer_block
from thinkspace.data.datasets.mindcube import MindCube
from thinkspace.records import read_jsonl

RELEASED = REPO / "tests" / "fixtures" / "3dthinker_mindcube_tiny_responses.jsonl"
INPUT_PROMPT = "[Task]\nLook at the views.\n[Answer Instruction]\nAnswer like '<answer>A. Above</answer>'.\n\n[Question]\n"


def with_input_prompts(root):
    path = fx.mindcube(root)
    records = [r for _, r in read_jsonl(path)]
    return fx.write_jsonl(path, [r | {"input_prompt": INPUT_PROMPT + r["question"]} for r in records])


def test_the_first_answer_block_is_the_released_answer_field():
    # the released records hold both fields: the engine's answer is the first block of its response
    records = [r for _, r in read_jsonl(RELEASED)]
    assert [first_answer_block(r["reasoning_chain"]) for r in records] == [r["answer"] for r in records]
    assert first_answer_block("<answer>\nB. left\n</answer> then <answer>C</answer>") == "B. left"
    assert first_answer_block("no block: A") == ""


def test_prediction_records_hold_the_response_and_the_answer_the_evaluator_reads(tmp_path):
    path = fx.mindcube(tmp_path)
    response = "<think>left of it</think><answer> A. lamp </answer><answer>B</answer>"
    whole = MindCube(str(path), image_root=str(tmp_path)).prediction_record(1, response)
    assert whole["reasoning_chain"] == response and whole["answer"] == response and whole["gt_answer"] == "A"
    first = MindCube(str(path), image_root=str(tmp_path), prediction_answer="first_block")
    assert first.prediction_record(1, response) | {"reasoning_chain": None} == whole | {
        "answer": "A. lamp", "reasoning_chain": None}
    assert first.prediction_record(1, "A") == whole | {"reasoning_chain": "A", "answer": ""}  # no block: ""
    with pytest.raises(ValueError, match=re.escape("MindCube.prediction_answer")):
        MindCube(str(path), prediction_answer="last_block")


def test_the_raw_input_prompt_is_offered(tmp_path):
    path = with_input_prompts(tmp_path)
    question = MindCube(str(path), image_root=str(tmp_path), instruction="Think first.")
    raw = MindCube(str(path), image_root=str(tmp_path), prompt_field="input_prompt")
    assert question[1].prompt == "Which is nearer?\nA. lamp\nB. desk\nThink first."
    assert raw[1].prompt == INPUT_PROMPT + "Which is nearer?\nA. lamp\nB. desk"
    # the question is what the engine cuts from the input prompt after "[Question]\n"
    assert re.search(r"\[Question\]\n(.*)", raw[1].prompt, re.DOTALL).group(1) == question[1].prompt.removesuffix("\nThink first.")


def test_input_prompt_without_the_field_names_file_and_line(tmp_path):
    path = fx.mindcube(tmp_path)
    with pytest.raises(KeyError, match=re.escape(f"{path}:1: missing field 'input_prompt' (MindCube's whole prompt")):
        len(MindCube(str(path), prompt_field="input_prompt"))


def test_the_eval_configs_pick_the_question_and_the_first_block():
    import yaml

    for name in ("mindcube_3dthinker.yaml", "mindcube_3dthinker_base.yaml"):
        data = yaml.safe_load((REPO / "configs" / "eval" / name).read_text())["data"]["test"]["init_args"]
        assert data["prompt_field"] == "question" and data["prediction_answer"] == "first_block", name
