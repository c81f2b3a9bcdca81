"""thinkspace's decoding applies transformers' repetition penalty: the same penalised logits as
``RepetitionPenaltyLogitsProcessor``, the same greedy tokens as ``generate`` on a model without a latent
slot, and inside a latent slot the slot's own tokens count as seen (3DThinker's patched sampler)."""

from dataclasses import replace

import pytest
import torch
from torch import nn
from transformers import RepetitionPenaltyLogitsProcessor

from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode import decode
from thinkspace.generation.repetition import RepetitionPenalty

pytestmark = pytest.mark.usefixtures("one_thread")


def views(n=2, seed=3):
    data = SyntheticSpatial(n, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=seed)
    return [replace(data[i], response=None) for i in range(n)]


def test_penalised_logits_equal_transformers_processor_over_prompt_and_emitted_ids():
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (3, 7))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding: transformers 5 skips it (prompt_ignore_length), so does thinkspace
    ids[1, :2] = 49
    penalty = RepetitionPenalty(1.3, ids, mask, 50)
    first = torch.tensor([5, 49, 7])
    penalty.see(first)  # a forced token before the first logits (a forced slot start) counts too
    logits = torch.randn(3, 50) * 3
    theirs = RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=torch.tensor([0, 2, 0]))(
        torch.cat([ids, first[:, None]], 1), logits.clone())
    assert torch.equal(penalty(logits), theirs)
    assert penalty(logits)[1, 49] == theirs[1, 49] != logits[1, 49]  # row 1 emitted 49 after its padding
    second = torch.tensor([11, 12, 13])
    penalty.see(second)
    theirs = RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=torch.tensor([0, 2, 0]))(
        torch.cat([ids, first[:, None], second[:, None]], 1), logits.clone())
    assert torch.equal(penalty(logits), theirs)


@pytest.mark.parametrize("bad", [0.0, -1.0, "1.05", True])
def test_a_penalty_that_is_not_a_positive_number_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=r"decoding: repetition_penalty must be a positive number \(1.0: none\)"):
        RepetitionPenalty(bad, torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2), 4)


def test_greedy_decoding_with_a_repetition_penalty_gives_transformers_generate_tokens(qwen25):
    batch = qwen25.collator(with_response=False)(views(2))  # two prompts, one left-padded
    steps = 24
    plain = decode(qwen25, batch, max_new_tokens=steps, eos_token_id=[])
    for penalty in (1.05, 2.0):
        ours = decode(qwen25, batch, max_new_tokens=steps, eos_token_id=[], repetition_penalty=penalty)
        theirs = decode(qwen25, batch, sampler="transformers", max_new_tokens=steps, min_new_tokens=steps,
                        do_sample=False, repetition_penalty=penalty)
        assert ours.tokens.shape == (2, steps)
        assert torch.equal(ours.tokens, theirs.tokens), penalty
    # the large penalty changes the greedy tokens: the test above compares something
    assert not torch.equal(ours.tokens, plain.tokens)


def test_the_latent_slots_forced_tokens_count_as_seen_at_the_first_free_choice(tiny_cache, monkeypatch):
    from latent_helpers import latent_module, prompts

    module = latent_module()
    slot = module.objectives["latent"].slot
    seen_at_call = []
    original = RepetitionPenalty.__call__

    def spy(self, logits):
        out = original(self, logits)
        seen_at_call.append(self.seen.clone())
        return out

    monkeypatch.setattr(RepetitionPenalty, "__call__", spy)
    gen = decode(module.backbone, prompts(module), slot, max_new_tokens=8, eos_token_id=[], repetition_penalty=1.5)
    assert gen.tokens[:, :6].tolist() == [[slot.start_id] + [slot.pad_id] * 4 + [slot.end_id]] * 2
    # steps 0-5 are scheduled (no choice): the first call is the choice of step 6, which sees the slot
    assert len(seen_at_call) == 2
    first = seen_at_call[0]
    assert first[:, [slot.start_id, slot.pad_id, slot.end_id]].all()
    assert seen_at_call[1][torch.arange(2), gen.tokens[:, 6]].all()  # step 6's choice, seen at step 7


def test_the_vocabulary_width_is_the_heads_plain_or_wrapped():
    from peft import LoraConfig, get_peft_model

    from thinkspace.generation.repetition import head_width

    head = nn.Linear(8, 37, bias=False)
    assert head_width(head) == 37
    adapted = get_peft_model(nn.Sequential(head), LoraConfig(r=2, target_modules=["0"]))
    assert head_width(adapted.base_model.model[0]) == 37  # the LoRA wrapper: its base layer's width, not r
    seen = RepetitionPenalty(2.0, torch.tensor([[36, 40]]), torch.ones(1, 2), 37).seen
    assert seen.shape == (1, 37) and seen[0].nonzero()[:, 0].tolist() == [36]  # 40: beyond the head, never seen
