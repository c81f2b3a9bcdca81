"""The decode loop runs the lean step by default: a fixed-seed rollout gives the same tokens, latents
and log-probabilities with and without it (greedy and sampled, latent slot on and off), GRPO's
rollouts included (LoRA adapters folded)."""

import pytest
import torch

from latent_helpers import latent_module, prompts
from thinkspace.backbones import LoraSettings, QwenVL
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.generation.decoder_step import lean_decoder_or_reason
from thinkspace.generation.decode import decode
from thinkspace.rl import SpatialGRPO

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def module(tiny_cache):
    return latent_module()


def rollout(module, decode_step, slot, do_sample, mode, drop_finished=True):
    generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    # many stop ids: rows end at different steps, so finished rows' masking is exercised
    return decode(module.backbone, prompts(module), slot, mode=mode, max_new_tokens=16,
                  do_sample=do_sample, group=3, generator=generators, eos_token_id=list(range(400)),
                  return_logprobs=True, decode_step=decode_step, drop_finished=drop_finished)


@pytest.mark.parametrize("with_slot, do_sample, mode", [
    (False, True, "feedback"), (True, True, "feedback"), (False, False, "feedback"), (True, False, "feedback"),
    (True, True, "tokens"),
])
def test_fixed_seed_rollout_gives_the_same_tokens_with_and_without_the_lean_step(module, with_slot, do_sample, mode):
    slot = module.objectives["latent"].slot if with_slot else None
    lean = rollout(module, "lean", slot, do_sample, mode)
    plain = rollout(module, "hugging_face", slot, do_sample, mode)
    assert lean.decoder_step == "lean"
    assert plain.decoder_step == "hugging face: decode_step hugging_face"
    assert lean.tokens.shape == plain.tokens.shape and lean.tokens.shape[0] == 6
    assert torch.equal(lean.tokens, plain.tokens)
    assert torch.equal(lean.completion_mask, plain.completion_mask)
    assert torch.equal(lean.sampled, plain.sampled)
    # no adapter to fold: the lean step gives the Hugging Face step's numbers bit for bit at the same row count;
    # once finished rows are dropped the fused q/k/v product runs on fewer rows, whose sgemm may round
    # otherwise than the three separate products (last bits); without dropping, bit for bit
    assert torch.allclose(lean.latents, plain.latents, rtol=0, atol=1e-5)
    assert torch.allclose(lean.logprobs, plain.logprobs, rtol=0, atol=1e-5)
    masked = [rollout(module, step, slot, do_sample, mode, drop_finished=False) for step in ("lean", "hugging_face")]
    assert torch.equal(masked[0].tokens, lean.tokens)
    assert torch.equal(masked[0].latents, masked[1].latents) and torch.equal(masked[0].logprobs, masked[1].logprobs)
    lengths = lean.completion_mask.sum(1)
    if do_sample:
        assert lengths.min() < lengths.max()  # rows did stop at different steps
    if with_slot:
        assert torch.equal(lean.latent_count, plain.latent_count) and int(lean.latent_count.max()) == 4
        assert torch.equal(lean.latent_start, plain.latent_start)


@pytest.mark.parametrize("with_slot", [False, True])
def test_packed_projections_give_the_same_rollout_to_float_rounding(module, with_slot, monkeypatch):
    """Packing (the default for float32 CPU decoders too large for the cache; forced here) changes only
    the order of sums: the same sampled tokens, latents and log-probabilities within 1e-5."""
    slot = module.objectives["latent"].slot if with_slot else None
    plain = rollout(module, "hugging_face", slot, True, "feedback")
    monkeypatch.setattr("thinkspace.generation.packed_linear.PACK_MIN_BYTES", 0)
    packed = rollout(module, "lean", slot, True, "feedback")
    assert packed.decoder_step == "lean"
    assert torch.equal(packed.tokens, plain.tokens) and torch.equal(packed.completion_mask, plain.completion_mask)
    torch.testing.assert_close(packed.latents, plain.latents, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed.logprobs, plain.logprobs, rtol=1e-5, atol=1e-5)
    assert not torch.equal(packed.logprobs, plain.logprobs)  # it did run the packed products


def test_under_cpu_autocast_the_projections_are_not_packed(module, monkeypatch):
    """bfloat16 autocast (``precision: bf16-mixed`` on a CPU) runs ``F.linear`` in bfloat16 and fills the
    cache with bfloat16: packed float32 products would not fit it, so the lean step keeps plain weights."""
    monkeypatch.setattr("thinkspace.generation.packed_linear.PACK_MIN_BYTES", 0)
    built = []
    monkeypatch.setattr("thinkspace.generation.model_step.lean_decoder_or_reason",
                        lambda *a, **k: built.append(lean_decoder_or_reason(*a, **k)) or built[-1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lean = rollout(module, "lean", None, True, "feedback")
        plain = rollout(module, "hugging_face", None, True, "feedback")
    assert lean.decoder_step == "lean" and not built[0][0].packed
    assert torch.equal(lean.tokens, plain.tokens)
    rollout(module, "lean", None, True, "feedback")  # outside autocast: packed (the threshold is 0 here)
    assert built[-1][0].packed


def test_an_unsupported_decoder_falls_back_to_the_hugging_face_step_and_says_why(module):
    language_model = module.backbone.hf.model.language_model
    handle = language_model.layers[0].register_forward_hook(lambda *args: None)
    try:
        gen = rollout(module, "lean", None, True, "feedback")
    finally:
        handle.remove()
    assert gen.decoder_step == "hugging face: decoder Qwen2_5_VLTextModel: module layers.0 has forward hooks; the " \
                               "lean step would skip them"
    assert torch.equal(gen.tokens, rollout(module, "lean", None, True, "feedback").tokens)


def test_a_misspelt_decode_step_is_an_error_naming_the_choices(module):
    with pytest.raises(ValueError, match="decode_step must be 'auto', 'lean', 'compiled' or 'hugging_face', got 'fast'"):
        rollout(module, "fast", None, False, "feedback")


@pytest.mark.slow
def test_the_compiled_lean_step_gives_the_same_greedy_tokens(module):
    """Compiled: fixed shapes (attention over the whole buffer), equal to float rounding."""
    slot = module.objectives["latent"].slot
    compiled = rollout(module, "compiled", slot, False, "feedback")
    plain = rollout(module, "hugging_face", slot, False, "feedback")
    assert compiled.decoder_step == "lean"
    assert torch.equal(compiled.tokens, plain.tokens)
    torch.testing.assert_close(compiled.latents, plain.latents, atol=1e-5, rtol=0)


def test_grpo_rollouts_use_the_lean_step_with_lora_and_give_the_same_completions(tiny_cache):
    """LoRA dropout 0.05 (3DThinker's stage 2): rollouts run in eval mode, so the adapters fold."""
    torch.manual_seed(0)
    backbone = QwenVL("tiny:qwen2_5_vl", lora=LoraSettings(r=4, alpha=8, dropout=0.05))
    answer = {"answer": "thinkspace.rl.rewards.answer_reward"}
    lean = SpatialGRPO(backbone, rewards=answer, group_size=3, max_new_tokens=8, beta=0.0)
    plain = SpatialGRPO(backbone, rewards=answer, group_size=3, max_new_tokens=8, beta=0.0,
                        decode_step="hugging_face")
    batch = lean.collator()([ColouredSquares(2, image_size=(56, 112))[i] for i in range(2)])
    lean.train()
    first = lean.roll_out(batch)
    assert lean.training  # the module's mode is restored after the rollout
    second = plain.roll_out(batch)
    assert first.generation.decoder_step == "lean"
    assert second.generation.decoder_step == "hugging face: decode_step hugging_face"
    assert first.generation.tokens.shape == (6, 8)
    assert torch.equal(first.generation.tokens, second.generation.tokens)
    assert first.completions == second.completions
    with pytest.raises(ValueError, match="model.decode_step must be 'auto', 'lean', 'compiled' or 'hugging_face', got 'hf'"):
        SpatialGRPO(backbone, rewards=answer, group_size=3, decode_step="hf")
