"""Reward functions on hand cases, their combination, and the statistics logged for them."""

import math

import pytest
import torch

from thinkspace.slot_tokens import END, PAD, START
from thinkspace.rl.rewards import CompletionRewards, RewardSet, answer_reward, format_reward, latent3d_reward
from thinkspace.rl.stats import reward_statistics

SLOT = START + PAD * 3 + END


def test_format_reward_wants_slot_then_think_then_answer():
    completions = [
        f"{SLOT}<think>left of the sofa</think><answer>B</answer>",
        f"{SLOT}\n<think>a</think>\n<answer>B</answer>\n",  # whitespace between blocks is fine
        "<think>a</think><answer>B</answer>",  # no slot
        f"{SLOT}<answer>B</answer><think>a</think>",  # wrong order
        f"{SLOT}<think>a</think><answer>B</answer> and more",  # text after the answer
        f"<think>a</think>{SLOT}<answer>B</answer>",  # slot not first
    ]
    assert format_reward([""] * 6, completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert format_reward([""] * 6, completions, latent=False) == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_answer_reward_choice_number_text_and_none():
    completions = [
        f"{SLOT}<think>the chair is left</think><answer>B. chair</answer>",
        f"{SLOT}<think>B is tempting</think><answer>C</answer>",  # the answer block decides
        "A",  # no tags: the whole completion (MindCube's extractor)
        "<answer>3.3 metres</answer>",  # within 10% of 3.0
        "<answer>3.5</answer>",  # outside 10%
        "<answer>about three</answer>",  # not a number
        "<answer>The Left!</answer>",  # SQA3D normalisation: "the" and "!" dropped
        "<answer>right</answer>",
        "<answer>A</answer>",  # no gold answer: does not apply
    ]
    answers = ["B", "B", "A", 3.0, 3.0, 3.0, "left", "left", None]
    kinds = ["choice"] * 3 + ["number"] * 3 + ["text"] * 2 + ["choice"]
    got = answer_reward([""] * 9, completions, answer=answers, answer_type=kinds)
    assert got == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, None]
    assert answer_reward([""], ["<answer>3.5</answer>"], answer=[3.0], answer_type=["number"], rel_tol=0.2) == [1.0]


def test_latent3d_reward_is_channel_cosine_mapped_to_unit_interval():
    target = torch.randn(2, 5, 8)  # [S views, P tokens, C channels]
    orthogonal = torch.zeros(1, 2, 4)
    orthogonal[..., 0] = 1
    other = torch.zeros(1, 2, 4)
    other[..., 1] = 1
    projected = [target * 3.0, -target, orthogonal, None, target]
    teacher = [target, target, other, target, None]
    got = latent3d_reward([""] * 5, [""] * 5, projected=projected, teacher=teacher)
    assert got[:3] == pytest.approx([1.0, 0.0, 0.5], abs=1e-6)
    assert got[3:] == [0.0, None]  # no latents: 0; no teacher features: does not apply
    # cosine along channels, then the mean over tokens: half the tokens aligned, half opposite
    half = target.clone()
    half[:, :2] *= -1
    assert latent3d_reward([""], [""], projected=[half], teacher=[target]) == pytest.approx([0.6], abs=1e-6)
    with pytest.raises(ValueError, match="latent3d_reward needs the fields 'projected' and 'teacher'"):
        latent3d_reward([""], [""])


def _const(values):
    return lambda prompts, completions, **fields: values


def test_reward_set_weights_sum_and_none_contributes_nothing():
    rewards = RewardSet({"a": _const([1.0, 0.0, None]), "b": _const([0.5, None, None])}, weights={"b": 2.0})
    scores = rewards(["p"] * 3, ["c"] * 3, {}, ["s0", "s1", "s2"])
    assert scores.names == ["a", "b"]
    assert scores.total.tolist() == [2.0, 0.0, 0.0]
    assert torch.isnan(scores.values[1, 1:]).all() and scores.values[0, :2].tolist() == [1.0, 0.0]


def test_null_drops_a_reward_and_its_weight():
    rewards = RewardSet({"a": _const([1.0]), "b": None, "c": "None"}, weights={"a": 2.0, "b": 3.0, "c": 1.0})
    assert rewards.names == ["a"] and rewards.weights == {"a": 2.0}


def test_reward_set_resolves_dotted_paths_and_passes_kwargs():
    rewards = RewardSet({"answer": "thinkspace.rl.rewards.answer_reward"}, kwargs={"answer": {"rel_tol": 0.5}})
    scores = rewards([""], ["<answer>4</answer>"], {"answer": [3.0], "answer_type": ["number"]}, ["s"])
    assert scores.total.tolist() == [1.0]


@pytest.mark.parametrize("functions, weights, message", [
    ({"mine": "thinkspace.rl.rewards.no_such_reward"}, None, r"model.rewards.mine: cannot import "
                                                             r"'thinkspace.rl.rewards.no_such_reward'"),
    ({"mine": "thinkspace.rl.rewards.START"}, None, r"model.rewards.mine: .* is not a callable"),
    ({"a": _const([1.0])}, {"typo": 1.0}, r"model.reward_weights: \['typo'\] name no reward"),
    ({}, None, "model.rewards: no reward function"),
    ({"my.reward": _const([1.0])}, None, r"model.rewards: names \['my.reward'\] may not be empty or hold"),
])
def test_reward_set_configuration_errors(functions, weights, message):
    with pytest.raises(ValueError, match=message):
        RewardSet(functions, weights)


@pytest.mark.parametrize("values, message", [
    ([1.0], r"reward 'bad' returned 1 values for 2 completions"),
    (None, r"reward 'bad' returned None for 2 completions"),
    ([1.0, math.nan], r"reward 'bad' returned nan for sample 's1' \(completion 1\); rewards must be finite"),
    ([1.0, "yes"], r"reward 'bad' returned 'yes' for sample 's1' \(completion 1\); expected a float or None"),
])
def test_bad_reward_values_name_the_reward_and_sample(values, message):
    rewards = RewardSet({"good": _const([0.0, 1.0]), "bad": _const(values)})
    with pytest.raises(ValueError, match=message):
        rewards(["p", "p"], ["c", "c"], {}, ["s0", "s1"])


def test_reward_statistics_by_hand():
    # two groups of 2: reward "a" = [1, 1 | 0, 1]; reward "b" = [None, 2 | None, None]
    values = torch.tensor([[1.0, 1.0, 0.0, 1.0], [math.nan, 2.0, math.nan, math.nan]])
    scores = CompletionRewards(values=values, total=torch.tensor([1.0, 3.0, 0.0, 1.0]), names=["a", "b"])
    stats = {k: float(v) for k, v in reward_statistics(scores, group=2).items()}
    assert stats["rewards/a/mean"] == pytest.approx(0.75)
    assert stats["rewards/a/std"] == pytest.approx(math.sqrt(0.75 - 0.75 ** 2))
    assert stats["rewards/a/zero_spread"] == pytest.approx(0.5)  # the first group is flat
    assert stats["rewards/b/mean"] == pytest.approx(2.0) and stats["rewards/b/std"] == 0.0
    assert stats["rewards/b/zero_spread"] == pytest.approx(1.0)  # one group applies, one value: flat
    assert stats["rewards/total/mean"] == pytest.approx(1.25)
    assert stats["rewards/total/zero_spread"] == 0.0
