"""The decode loop's fast path (mask prepared once, random numbers drawn once, no per-token
reads from the device) gives the tokens the per-token construction gives."""

import pytest
import torch

from latent_helpers import latent_module, prompts
from thinkspace.generation.decode_state import DecodeMask, draw_uniforms
from thinkspace.generation.decode import decode
from thinkspace.generation.sampling import sample_token

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def module(tiny_cache):
    return latent_module()


def rollout(module, fast, slot=None, **kw):
    """The Hugging Face step, whose mask ``fast`` prepares (the lean step has its own: test_lean_decoding.py)."""
    generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    return decode(module.backbone, prompts(module), slot, mode="feedback", max_new_tokens=12,
                  do_sample=True, group=3, generator=generators, fast=fast, decode_step="hugging_face",
                  **kw)


@pytest.mark.parametrize("with_slot", [False, True])
def test_fixed_seed_rollout_gives_the_same_tokens_with_and_without_the_fast_path(module, with_slot):
    slot = module.objectives["latent"].slot if with_slot else None
    # many stop ids: rows end at different steps, so the stop bookkeeping and the trimming are exercised
    stops = list(range(0, 400))
    fast, slow = rollout(module, True, slot, eos_token_id=stops), rollout(module, False, slot, eos_token_id=stops)
    assert fast.tokens.shape == slow.tokens.shape and fast.tokens.shape[0] == 6
    assert torch.equal(fast.tokens, slow.tokens)
    assert torch.equal(fast.completion_mask, slow.completion_mask)
    assert torch.equal(fast.sampled, slow.sampled)
    lengths = fast.completion_mask.sum(1)
    assert lengths.min() < lengths.max()  # rows did stop at different steps
    assert fast.tokens.shape[1] == int(lengths.max())  # steps after every row stopped are trimmed
    torch.testing.assert_close(fast.latents, slow.latents, atol=1e-6, rtol=0)
    if with_slot:
        assert torch.equal(fast.latent_count, slow.latent_count) and int(fast.latent_count.max()) == 4


def test_inverse_cdf_sampling_picks_the_token_whose_cumulative_probability_reaches_u():
    logits = torch.tensor([0.70, 0.26, 0.03, 0.01]).log().repeat(5, 1)
    u = torch.tensor([0.5, 0.71, 0.97, 0.995, 1e-30])
    assert sample_token(logits, uniform=u).tolist() == [0, 1, 2, 3, 0]
    # a token with no probability is never picked, even at u just above its cumulative mass
    assert sample_token(logits, top_k=1, uniform=u).tolist() == [0, 0, 0, 0, 0]
    # top_p 0.9 keeps tokens 0 and 1, renormalised: 0.70 / 0.96 = 0.729 > 0.71
    assert sample_token(logits, top_p=0.9, uniform=u).tolist() == [0, 0, 1, 1, 0]


def test_draw_uniforms_gives_each_block_of_rows_its_own_generator():
    both = draw_uniforms(6, 4, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    alone = draw_uniforms(3, 4, torch.Generator().manual_seed(2))
    assert both.shape == (4, 6) and torch.equal(both[:, 3:], alone)
    assert bool((both > 0).all() and (both < 1).all())
    with pytest.raises(ValueError, match="5 rows do not split over 2 generators"):
        draw_uniforms(5, 1, [torch.Generator(), torch.Generator()])


def test_decode_mask_holds_the_prompt_then_one_column_per_step():
    mask = DecodeMask(torch.tensor([[0, 1, 1], [1, 1, 1]]), steps=3)
    first = mask.step(0, torch.tensor([True, True]))
    second = mask.step(1, torch.tensor([True, False]))
    assert first.shape == (2, 1, 1, 4) and second.shape == (2, 1, 1, 5)
    assert second[:, 0, 0].long().tolist() == [[0, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert mask.buffer[:, 3:5].tolist() == [[1, 1], [1, 0]]  # the two steps' columns
    plain = DecodeMask(torch.tensor([[0, 1]]), steps=2, prepared=False)
    assert plain.step(0, torch.tensor([False])).tolist() == [[0, 1, 0]]


FIELDS = ("tokens", "latents", "has_latents", "completion_mask", "sampled", "latent_start", "latent_count",
          "logprobs")


@pytest.mark.parametrize("mode, do_sample, stops, budget", [
    ("feedback", True, [], 12),             # GRPO's benchmark: no stop, the whole budget
    ("feedback", True, list(range(400)), 12),  # rows stop at different steps after the slot
    ("tokens", False, None, 12),            # greedy, the tokenizer's stops
    ("feedback", True, [], 4),              # a budget that cuts the slot (start + 3 of 4 latents)
])
def test_a_forced_slot_on_its_schedule_gives_what_per_row_bookkeeping_gives(module, monkeypatch, mode, do_sample,
                                                                               stops, budget):
    """A forced start without early end: the slot's steps skip logits and per-row state, bit for bit."""
    from thinkspace.generation.slots import ScheduledSlot

    def run():
        generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
        return decode(module.backbone, prompts(module), module.objectives["latent"].slot, mode=mode,
                      max_new_tokens=budget, force_start=True, do_sample=do_sample, group=3,
                      generator=generators, eos_token_id=stops, return_logprobs=True)

    scheduled = run()
    monkeypatch.setattr(ScheduledSlot, "fits", staticmethod(lambda force_start, early_end: False))  # tracked
    tracked = run()
    for name in FIELDS:
        assert torch.equal(getattr(scheduled, name), getattr(tracked, name)), name
    assert scheduled.texts == tracked.texts
    assert scheduled.latent_count.tolist() == [min(4, budget - 1)] * 6 and bool((scheduled.latent_start == 0).all())
    if stops:
        lengths = scheduled.completion_mask.sum(1)
        assert lengths.min() < lengths.max()  # rows did stop at different steps
