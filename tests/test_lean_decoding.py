"""The decode loop runs the lean step by default: a fixed-seed rollout gives the same tokens, latents
and log-probabilities with and without it (greedy and sampled, latent slot on and off)."""

import pytest
import torch

from latent_helpers import latent_module, prompts
from thinkspace.backbones.latent_decoding import generate_with_latents

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def module(tiny_cache):
    return latent_module()


def rollout(module, lean_step, slot, do_sample, mode):
    generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    # many stop ids: rows end at different steps, so finished rows' masking is exercised
    return generate_with_latents(module.backbone, prompts(module), slot, mode=mode, max_new_tokens=16,
                                 do_sample=do_sample, group=3, generator=generators, eos_token_id=list(range(400)),
                                 return_logprobs=True, lean_step=lean_step)


@pytest.mark.parametrize("with_slot, do_sample, mode", [
    (False, True, "feedback"), (True, True, "feedback"), (False, False, "feedback"), (True, False, "feedback"),
    (True, True, "tokens"),
])
def test_fixed_seed_rollout_gives_the_same_tokens_with_and_without_the_lean_step(module, with_slot, do_sample, mode):
    slot = module.objectives["latent"].slot if with_slot else None
    lean, plain = rollout(module, True, slot, do_sample, mode), rollout(module, False, slot, do_sample, mode)
    assert lean.decoder_step == "lean"
    assert plain.decoder_step == "hugging face: lean_step off"
    assert lean.tokens.shape == plain.tokens.shape and lean.tokens.shape[0] == 6
    assert torch.equal(lean.tokens, plain.tokens)
    assert torch.equal(lean.completion_mask, plain.completion_mask)
    assert torch.equal(lean.sampled, plain.sampled)
    # no adapter to fold: the lean step gives the Hugging Face step's numbers bit for bit
    assert torch.equal(lean.latents, plain.latents)
    assert torch.equal(lean.logprobs, plain.logprobs)
    lengths = lean.completion_mask.sum(1)
    if do_sample:
        assert lengths.min() < lengths.max()  # rows did stop at different steps
    if with_slot:
        assert torch.equal(lean.latent_count, plain.latent_count) and int(lean.latent_count.max()) == 4
        assert torch.equal(lean.latent_start, plain.latent_start)


def test_an_unsupported_decoder_falls_back_to_the_hugging_face_step_and_says_why(module):
    language_model = module.backbone.hf.model.language_model
    handle = language_model.layers[0].register_forward_hook(lambda *args: None)
    try:
        gen = rollout(module, True, None, True, "feedback")
    finally:
        handle.remove()
    assert gen.decoder_step == "hugging face: decoder Qwen2_5_VLTextModel: module layers.0 has forward hooks; the " \
                               "lean step would skip them"
    assert torch.equal(gen.tokens, rollout(module, True, None, True, "feedback").tokens)
