"""Latent decoding as 3DThinker's generation does it: who opens the slot, how many latent
steps, an early end, and proof that the hidden states are fed back."""

import pytest
import torch
from torch import nn

from latent_helpers import latent_module, prompts
from thinkspace.backbones import QwenVL
from thinkspace.generation.decode import decode
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def module(tiny_cache):
    return latent_module()


class ScriptedHead(nn.Module):
    """The real ``lm_head`` plus +1e4 on a scripted token at given decoding steps, so a tiny random
    model 'chooses' the start or the end token when the test needs it to."""

    def __init__(self, head: nn.Module, script: dict[int, int]) -> None:
        super().__init__()
        self.head, self.script, self.calls = head, script, 0

    def forward(self, hidden):
        logits = self.head(hidden)
        if hidden.ndim == 2:  # a decoding step (one position per row)
            if self.calls in self.script:
                logits = logits.clone()
                logits[:, self.script[self.calls]] += 1e4
            self.calls += 1
        return logits


def scripted(module, script):
    hf = module.backbone.hf
    original = hf.lm_head
    hf.lm_head = ScriptedHead(original, script)
    return original


class FeedbackCounter:
    """Counts, per row, decoding steps whose input embedding is the previous step's last hidden
    state (a hidden-state feedback step): plain token decoding has none."""

    def __init__(self, language_model: nn.Module) -> None:
        self.previous, self.steps = None, None
        self.handles = [language_model.register_forward_pre_hook(self.before, with_kwargs=True),
                        language_model.register_forward_hook(self.after, with_kwargs=True)]

    def before(self, module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None or embeds.shape[1] != 1 or self.previous is None:
            return
        same = torch.isclose(embeds[:, 0], self.previous, atol=1e-6).all(-1)
        self.steps = same.long() if self.steps is None else self.steps + same.long()

    def after(self, module, args, kwargs, output):
        self.previous = output.last_hidden_state[:, -1].detach()

    def close(self):
        for h in self.handles:
            h.remove()


def test_forced_start_then_k_feedback_steps_then_forced_end(module):
    slot = module.objectives["latent"].slot
    counter = FeedbackCounter(module.backbone.hf.model.language_model)
    gen = decode(module.backbone, prompts(module), slot, mode="feedback", max_new_tokens=8)
    counter.close()
    assert gen.tokens[:, :6].tolist() == [[slot.start_id] + [slot.pad_id] * 4 + [slot.end_id]] * 2
    assert counter.steps.tolist() == [4, 4]  # one hidden-state feedback per pad, none elsewhere
    assert gen.latent_count.tolist() == [4, 4] and gen.has_latents.all()


def test_module_generation_feeds_hidden_states_back(module):
    """Fails when SpatialVLM.generate bypasses latent decoding (plain HF generate feeds tokens only)."""
    module.generation = {"max_new_tokens": 9, "latent_steps": 3}
    counter = FeedbackCounter(module.backbone.hf.model.language_model)
    texts = module.generate(prompts(module))
    counter.close()
    assert len(texts) == 2
    assert counter.steps.tolist() == [3, 3]


def test_decoding_step_count_is_separate_from_training_k(module):
    slot = module.objectives["latent"].slot  # k = 4 in training
    for steps in (2, 8):
        gen = decode(module.backbone, prompts(module), slot, max_new_tokens=steps + 3,
                     latent_steps=steps)
        assert gen.tokens[0, :steps + 2].tolist() == [slot.start_id] + [slot.pad_id] * steps + [slot.end_id]
        assert tuple(gen.latents.shape[:2]) == (2, steps) and gen.latent_count.tolist() == [steps, steps]
        assert not gen.has_latents.any()  # not k latents: nothing for the projector
    with pytest.raises(ValueError, match="latent_steps must be at least 1, got 0"):
        decode(module.backbone, prompts(module), slot, latent_steps=0)


def test_an_option_latent_decoding_does_not_take_is_named_not_ignored(module):
    # a logits processor transformers' generate would build from a generation config, not taken here
    module.generation = {"max_new_tokens": 9, "num_beams": 4, "no_repeat_ngram_size": 3, "repetition_penalty": 1.2}
    with pytest.raises(ValueError, match=r"latent decoding takes no generation option\(s\) \['no_repeat_ngram_size', "
                                         r"'num_beams'\] \(from model.generation or the call\)"):
        module.generate(prompts(module))


def test_model_chosen_start_and_early_end(module):
    slot = module.objectives["latent"].slot
    # step 0: a text token; step 1: the model picks the start; step 4 (two pads later): the end
    text_id = module.backbone.tokenizer.convert_tokens_to_ids("A")
    script = {0: text_id, 1: slot.start_id, 4: slot.end_id}
    original = scripted(module, script)
    try:
        gen = decode(module.backbone, prompts(module), slot, force_start=False, early_end=True,
                     max_new_tokens=7)
        module.backbone.hf.lm_head.calls = 0
        full = decode(module.backbone, prompts(module), slot, force_start=False, early_end=False,
                      max_new_tokens=8)
    finally:
        module.backbone.hf.lm_head = original
    assert gen.tokens[0, :5].tolist() == [text_id, slot.start_id, slot.pad_id, slot.pad_id, slot.end_id]
    assert gen.latent_start.tolist() == [1, 1] and gen.latent_count.tolist() == [2, 2]
    assert not gen.has_latents.any()  # 2 of 4 latents
    # the early end is the model's choice, so it is a sampled token; the pads are forced
    assert gen.sampled[0, :5].tolist() == [True, True, False, False, True]
    # without early_end the model's end choice is overridden by a pad until k pads are in
    assert full.tokens[0, :7].tolist() == [text_id, slot.start_id] + [slot.pad_id] * 4 + [slot.end_id]


def test_placement_end_is_not_forced_at_the_start(tiny_cache):
    torch.manual_seed(0)
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={
        "latent": LatentAlignment(k=2, placement="end", projector_width=16)}).eval()
    slot = module.objectives["latent"].slot
    gen = decode(module.backbone, prompts(module), slot, max_new_tokens=4, eos_token_id=[])
    assert slot.start_id not in gen.tokens.flatten().tolist()  # the random model never opens it itself
    assert gen.latent_start.tolist() == [-1, -1]
    forced = decode(module.backbone, prompts(module), slot, max_new_tokens=4, force_start=True)
    assert forced.tokens[:, 0].tolist() == [slot.start_id] * 2
