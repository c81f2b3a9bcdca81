"""One reading of a choice answer: val/accuracy, the GRPO answer reward and SpatialModel.ask agree.

Where an official rule reads differently (MindCube's scorer on the whole response, 3DThinker's stage-2 reward
on the first <answer> block), the difference is the named rule's, pinned here by hand.
"""

import pytest

from thinkspace.answers import (answer_text, choice, gold_letter, mindcube_choice, number, option_letters,
                                thinker_stage2_choice)
from thinkspace.inference.model import parse_answer
from thinkspace.accuracy import ChoiceAccuracy
from thinkspace.slot_tokens import END, PAD, START
from thinkspace.rl.rewards import answer_reward, first_answer_reward

QUESTION = "Which is left of the chair?\nA. lamp\nB. sofa\nC. table\nD. bed"
# (completion, thinkspace's letter)
TEXTS = [
    ("B", "B"),
    ("B. sofa", "B"),
    ("<think>A is tempting, C too</think><answer>B</answer>", "B"),  # the think block is not the answer
    (f"{START}{PAD}{PAD}{END}<think>A. no</think><answer>D</answer>", "D"),
    ("<answer>A</answer> then <answer>C</answer>", "C"),                # the last block
    ("<think>A or B? unfinished", None),                                 # an unclosed think is no answer
    ("Since A is behind me, the answer is C", "C"),                    # "answer is X" beats a bare "A"
    ("answer: c", None),                                                  # lower case is never an answer
    ("", None),
]


@pytest.mark.parametrize("text, letter", TEXTS)
def test_accuracy_reward_and_ask_read_the_same_letter(text, letter):
    assert choice(text) == letter
    assert parse_answer(text, QUESTION) == letter
    for gold in "ABCD":
        accuracy = ChoiceAccuracy()
        accuracy.update([text], [gold])
        reward = answer_reward([""], [text], answer=[gold], answer_type=["choice"])[0]
        assert accuracy.compute().item() == reward == float(letter == gold), gold


def test_official_rules_differ_only_where_named():
    text = "<think>B. is wrong</think><answer>A</answer> then <answer>C</answer>"
    assert choice(text) == "C"                    # thinkspace: the last <answer> block
    assert mindcube_choice(text) == "B"           # MindCube's scorer: the last "X." in the whole response
    assert thinker_stage2_choice(text) == "A"     # 3DThinker's stage-2 reward: the first block
    assert first_answer_reward([""], [text], answer=["A"]) == [1.0]
    assert answer_reward([""], [text], answer=["A"], answer_type=["choice"]) == [0.0]
    assert thinker_stage2_choice("A") is None     # no block, no letter (no fallback to untagged text)


def test_free_answers_and_gold_letters():
    assert answer_text(f"{START}{PAD}{END}<think>far</think> 3.5 metres") == "3.5 metres"
    assert number("<answer>3.5 metres</answer>") == 3.5 and number("<answer>about 3</answer>") is None
    assert parse_answer("<answer>3.5</answer>", "How far?") == 3.5
    assert parse_answer("<answer>3 o'clock</answer>", "Which direction?") == "3 o'clock"
    assert [gold_letter(a) for a in ["C", "C. left", "(C)", "D:", "the answer is B", "left"]] == [
        "C", "C", "C", "D", "B", None]


def test_options_inline_or_one_per_line_make_a_choice_question():
    inline = "Which is left of the chair? A. lamp B. sofa C. table"  # MindCube's layout
    assert option_letters(inline) == ["A", "B", "C"] == option_letters("Which?\nA) lamp\nB) sofa\nC) table")
    assert option_letters(QUESTION) == ["A", "B", "C", "D"]
    assert option_letters("How far is the lamp, e.g. 3.5? Plan B.") == [] == option_letters("What is it?")
    assert parse_answer("<answer>B. sofa</answer>", inline) == "B"
