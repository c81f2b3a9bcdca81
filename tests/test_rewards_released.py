"""3DThinker's released stage-2 reward rules (open_r1/vlm_modules/qwen_module.py), on tricky
completions, against thinkspace's stricter rules; numbers derived from the rules by hand."""

import math

import pytest
import torch

from thinkspace.slot_tokens import END, PAD, START
from thinkspace.rl.rewards import (answer_reward, first_answer_reward, format_reward, latent3d_reward,
                                   lenient_format_reward, released_cosine)

SLOT = START + PAD * 2 + END

FORMAT_CASES = [  # (completion, released lenient search, strict full match)
    (f"{SLOT}<think>a</think><answer>B</answer>", 1.0, 1.0),
    (f"{SLOT}\n<think>a</think>\n<answer>B</answer>\n", 1.0, 1.0),
    (f"Sure. {SLOT}<think>a</think><answer>B</answer>", 1.0, 0.0),  # text before the slot
    (f"{SLOT}<think>a</think><answer>B</answer> Hope this helps.", 1.0, 0.0),  # text after the answer
    (f"{START}<think>a</think><answer>B</answer>", 1.0, 0.0),  # start only: no pads, no end
    (f"{START} I picture it. <think>a</think><answer>B</answer>", 1.0, 0.0),  # text inside the slot
    (f"<think>a</think>{SLOT}<think>b</think><answer>B</answer>", 1.0, 0.0),  # slot after a think block
    ("<think>a</think><answer>B</answer>", 0.0, 0.0),  # no start token at all
    (f"{SLOT}<think>a</think> so <answer>B</answer>", 0.0, 0.0),  # text between think and answer
    (f"{SLOT}<answer>B</answer><think>a</think>", 0.0, 0.0),  # answer before think
    (f"{SLOT}<think>a</think>", 0.0, 0.0),  # no answer
]


def test_lenient_format_accepts_what_the_released_regex_accepts():
    completions = [c for c, _, _ in FORMAT_CASES]
    n = len(completions)
    assert lenient_format_reward([""] * n, completions) == [lenient for _, lenient, _ in FORMAT_CASES]
    assert format_reward([""] * n, completions) == [strict for _, _, strict in FORMAT_CASES]
    assert lenient_format_reward([""] * 2, ["x <think>a</think>\n<answer>B</answer>", "<answer>B</answer>"],
                                 latent=False) == [1.0, 0.0]


ANSWER_CASES = [  # (completion, gold, released first-block rule, thinkspace's last block / untagged fallback)
    ("<answer>C. Light purple sofa</answer>", "C", 1.0, 1.0),
    ("<answer>\nB\n</answer>", "B", 1.0, 1.0),
    ("<think>it is B</think>B", "B", 0.0, 1.0),  # no answer block: the released rule has no fallback
    ("<answer>A</answer> wait, <answer>B</answer>", "B", 0.0, 1.0),  # first block vs last block
    ("<answer>A</answer> wait, <answer>B</answer>", "A", 1.0, 0.0),
    ("<answer>c</answer>", "C", 0.0, 0.0),  # lower case is never a letter
    ("<answer>The answer is B. TV</answer>", "B", 1.0, 1.0),  # last "X." wins
    ("<answer>A. Red ROAD.</answer>", "A", 0.0, 0.0),  # ... even inside the option text: "D."
    ("<answer></answer>", "A", 0.0, 0.0),
    ("<answer>B</answer>", "B. Wooden dining table", 1.0, 0.0),  # gold as the record's text: letter read
    ("<answer>B</answer>", None, None, None),  # no gold answer: does not apply
]


def test_first_answer_block_with_no_fallback():
    completions = [c for c, _, _, _ in ANSWER_CASES]
    gold = [g for _, g, _, _ in ANSWER_CASES]
    n = len(completions)
    assert first_answer_reward([""] * n, completions, answer=gold) == [r for _, _, r, _ in ANSWER_CASES]
    strict = answer_reward([""] * n, completions, answer=gold, answer_type=["choice"] * n)
    assert strict == [s for _, _, _, s in ANSWER_CASES]


PRED_ONE = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # [S=1, P=2, C=2]
TEACHER_ONE = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
PRED_TWO = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])  # [S=2, P=2, C=2]
TEACHER_TWO = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])


def test_released_cosine_one_view_is_along_channels():
    # per-token channel cosines 1 and 1/sqrt(2), mean, then (cos + 1) / 2
    expected = ((1 + 1 / math.sqrt(2)) / 2 + 1) / 2
    assert float(released_cosine(PRED_ONE, TEACHER_ONE)) == pytest.approx((1 + 1 / math.sqrt(2)) / 2, abs=1e-6)
    for rule in ("channels", "released"):
        got = latent3d_reward([""], [""], projected=[PRED_ONE], teacher=[TEACHER_ONE], cosine=rule)
        assert got == pytest.approx([expected], abs=1e-6)


def test_released_cosine_two_views_is_along_tokens():
    # channels first normalised; then per (view, channel) the cosine of the two token columns:
    # view 0: [1, 1/sqrt2]·[1, 0] -> sqrt(2/3); [0, 1/sqrt2]·[0, 1] -> 1
    # view 1: [0, 1]·[0, 0] -> 0 (a zero column); [1, 0]·[1, 1] -> 1/sqrt2
    released = (math.sqrt(2 / 3) + 1 + 0 + 1 / math.sqrt(2)) / 4
    channels = (1 + 1 / math.sqrt(2) + 1 + 0) / 4  # per-token channel cosines
    got = latent3d_reward([""] * 2, [""] * 2, projected=[PRED_TWO, PRED_TWO], teacher=[TEACHER_TWO, TEACHER_TWO],
                          cosine="released")
    assert got == pytest.approx([(released + 1) / 2] * 2, abs=1e-6)
    assert latent3d_reward([""], [""], projected=[PRED_TWO], teacher=[TEACHER_TWO]) == pytest.approx(
        [(channels + 1) / 2], abs=1e-6)


def test_unknown_cosine_rule_is_named():
    with pytest.raises(ValueError, match="cosine must be 'channels' or 'released', got 'tokens'"):
        latent3d_reward([""], [""], projected=[PRED_ONE], teacher=[TEACHER_ONE], cosine="tokens")
