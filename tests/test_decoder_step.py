"""The lean decode step computes the Hugging Face step's numbers for every tiny family, LoRA
included, and names what it does not support instead of computing something else."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaModel, Qwen2Config, Qwen2Model

from thinkspace.backbones import ComposedVLM, LlavaOneVision, LoraSettings, QwenVL
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode_state import DecodeMask, draw_uniforms
from thinkspace.generation.decoder_step import LeanDecoder, lean_decoder_or_reason
from thinkspace.generation.decoder_weights import LeanStepUnsupported, decoder_weights, lean_step_unsupported
from thinkspace.generation.packed_linear import PACK_MIN_BYTES, packed, packing_pays, projection_bytes
from thinkspace.generation.prefill import prefill
from thinkspace.generation.sampling import sample_token

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILIES = {"qwen2_5_vl": QwenVL, "qwen2_vl": QwenVL, "qwen3_vl": QwenVL, "llava_onevision": LlavaOneVision,
            "composed": ComposedVLM}
STEPS, GROUP = 32, 2


def backbone_for(family: str, lora: LoraSettings | None = None):
    torch.manual_seed(0)
    backbone = FAMILIES[family](f"tiny:{family}", lora=lora)
    backbone.hf.eval()
    return backbone


def prompts(backbone):
    """Two left-padded prompts of different lengths (one view, two views)."""
    data = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=3)
    samples = [replace(data[i], response=None) for i in range(2)]
    batch = backbone.collator({}, None, with_response=False)(samples)
    return batch.prompts(backbone.tokenizer.pad_token_id)


def live_rows(rows: int, t: int) -> torch.Tensor:
    """Rows stop counting their new tokens at different steps (a finished row's tokens are masked)."""
    return torch.arange(rows) < rows - t // 12


@torch.no_grad()
def decode_both(backbone, steps: int = STEPS, fixed_shapes: bool = False, compile: bool = False,
                pack: bool | None = None):
    """The same prefill decoded by the Hugging Face step and by the lean step, both fed the token sampled
    from the Hugging Face logits (a random tiny model's argmax repeats one token; the sampled inputs vary).

    Returns the greedy tokens of each path ``(hf, lean)`` ``[N, steps]``, the fed tokens and the largest
    hidden-state gap of each step."""
    hf = backbone.hf
    language_model, embed = hf.model.language_model, hf.get_input_embeddings()
    pre = prefill(backbone, prompts(backbone)).repeat(GROUP)
    positions = pre.positions(steps)
    # built first: it copies the prefill's cache, which the Hugging Face steps then extend
    lean = LeanDecoder(language_model, pre.cache, pre.mask, positions, fixed_shapes=fixed_shapes or compile,
                       compile=compile, pack=pack)
    assert lean.packed is bool(pack)  # tiny decoders fit in cache: not packed unless asked
    mask = DecodeMask(pre.mask, steps)
    last_hf = last_lean = pre.hidden[:, -1]
    rows = pre.hidden.shape[0]
    uniforms = draw_uniforms(rows, steps, torch.Generator().manual_seed(5))
    greedy_hf, greedy_lean, fed, gaps = [], [], [], []
    for t in range(steps):
        logits = hf.lm_head(last_hf)
        greedy_hf.append(logits.argmax(-1))
        greedy_lean.append(hf.lm_head(last_lean).argmax(-1))
        fed.append(sample_token(logits, uniform=uniforms[t]))
        live = live_rows(rows, t)
        out = language_model(inputs_embeds=embed(fed[-1])[:, None], attention_mask=mask.step(t, live),
                             position_ids=positions[..., t:t + 1], past_key_values=pre.cache, use_cache=True)
        last_hf = out.last_hidden_state[:, -1]
        last_lean = lean.step(embed(fed[-1]), t, live)
        gaps.append(float((last_hf - last_lean).abs().max()))
    assert lean.keys[0].shape[2] == (-(-(pre.mask.shape[1] + steps) // 64) * 64 if fixed_shapes or compile
                                      else pre.mask.shape[1] + steps)  # fixed shapes: a bucketed buffer length
    return (torch.stack(greedy_hf, 1), torch.stack(greedy_lean, 1)), torch.stack(fed, 1), gaps


def assert_same_decoding(backbone, fixed_shapes: bool = False, tolerance: float = 1e-5, compile: bool = False,
                         pack: bool | None = None):
    (greedy_hf, greedy_lean), fed, gaps = decode_both(backbone, fixed_shapes=fixed_shapes, compile=compile, pack=pack)
    assert greedy_hf.shape == fed.shape == (2 * GROUP, STEPS)
    assert torch.equal(greedy_lean, greedy_hf)
    assert len(gaps) == STEPS and max(gaps) <= tolerance, gaps
    assert len(set(fed.flatten().tolist())) > 10  # the inputs vary from step to step


@pytest.fixture(scope="module")
def plain(tiny_cache):
    """family -> its tiny backbone without adapters, built on first use (not changed by the tests)."""
    built = {}

    def get(family):
        if family not in built:
            built[family] = backbone_for(family)
        return built[family]

    return get


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lean_step_gives_the_hugging_face_step_bit_for_bit(family, plain):
    """Without weights to fold, the same kernels on the same shapes: equal hidden states at every step."""
    backbone = plain(family)
    assert backbone.hf.dtype == torch.float32
    assert_same_decoding(backbone, tolerance=0.0)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fixed_shape_lean_step_is_within_1e_5_of_the_hugging_face_step(family, plain):
    """Attention over the whole static buffer (what a compiled or graph-captured step runs) sums in
    another order: equal to float rounding."""
    assert_same_decoding(plain(family), fixed_shapes=True)


@torch.no_grad()
def test_rows_that_never_stop_open_their_mask_columns_once_and_decode_the_same(plain):
    """``rows_stop=False`` (no stop token: every row decodes every step) skips the per-step mask update."""
    backbone = plain("qwen2_5_vl")
    language_model, embed = backbone.hf.model.language_model, backbone.hf.get_input_embeddings()
    pre = prefill(backbone, prompts(backbone)).repeat(GROUP)
    positions = pre.positions(12)
    per_step = LeanDecoder(language_model, pre.cache, pre.mask, positions)
    opened = LeanDecoder(language_model, pre.cache, pre.mask, positions, rows_stop=False)
    assert per_step.masks_each_step and not opened.masks_each_step
    rows, every = pre.hidden.shape[0], torch.ones(pre.hidden.shape[0], dtype=torch.bool)
    tokens = torch.randint(0, 200, (rows, 12), generator=torch.Generator().manual_seed(2))
    for t in range(12):
        a, b = per_step.step(embed(tokens[:, t]), t, every), opened.step(embed(tokens[:, t]), t, every)
        assert torch.equal(a, b), t
    torch.testing.assert_close(per_step.mask, opened.mask, atol=0, rtol=0)  # the same columns open in the end
    fixed = LeanDecoder(language_model, pre.cache, pre.mask, positions, fixed_shapes=True, rows_stop=False)
    assert fixed.masks_each_step  # a fixed-shape step attends over the whole buffer: it masks step by step


@pytest.mark.parametrize("family", ["qwen3_vl", "llava_onevision"])
def test_unfused_weights_are_the_modules_own_and_give_the_same_numbers(family, plain, monkeypatch):
    """Above the size limit q/k/v and gate/up stay separate: no copy of a large model's weights."""
    language_model = plain(family).hf.model.language_model
    fused = decoder_weights(language_model).layers[0]
    assert [w.shape[0] for w, _ in fused.qkv] == [(4 + 2 * 2) * language_model.layers[0].self_attn.head_dim]
    monkeypatch.setattr("thinkspace.generation.decoder_weights.FUSE_LIMIT_BYTES", 1)
    unfused = decoder_weights(language_model).layers[0]
    attn, mlp = language_model.layers[0].self_attn, language_model.layers[0].mlp
    own = [attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight, mlp.gate_proj.weight, mlp.up_proj.weight]
    assert [w.data_ptr() for w, _ in unfused.qkv + unfused.gate_up] == [w.data_ptr() for w in own]
    assert_same_decoding(plain(family), tolerance=0.0)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "composed"])
def test_packed_projections_are_within_1e_5_of_the_hugging_face_step(family, plain):
    """oneDNN's packed products (on the CPU) sum in another order than MKL's: equal to float rounding."""
    assert_same_decoding(plain(family), pack=True)


def test_projections_are_packed_by_default_only_where_it_pays(plain, monkeypatch):
    """Float32 CPU decoders whose projections exceed the cache-sized threshold, fused, not compiled."""
    language_model = plain("qwen2_5_vl").hf.model.language_model
    weights = decoder_weights(language_model)
    size = projection_bytes(weights)
    layer = language_model.layers[0]
    matrices = [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj,
                layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj]
    assert size == len(language_model.layers) * sum(m.weight.numel() * 4 for m in matrices) < PACK_MIN_BYTES
    assert weights.fused and not packing_pays(weights)
    monkeypatch.setattr("thinkspace.generation.packed_linear.PACK_MIN_BYTES", size)
    assert packing_pays(weights) and not packing_pays(replace(weights, fused=False))
    monkeypatch.setattr("thinkspace.generation.packed_linear.FUSE_LIMIT_BYTES", size)  # copies not allowed
    assert not packing_pays(weights)
    monkeypatch.setattr("thinkspace.generation.packed_linear.FUSE_LIMIT_BYTES", 2 * size)
    assert packing_pays(weights) and not packing_pays(replace(weights, layers=[
        replace(layer_weights, out=layer_weights.out.double()) for layer_weights in weights.layers]))


@torch.no_grad()
def test_the_default_packs_a_large_decoder_and_never_a_compiled_one(plain, monkeypatch):
    backbone = plain("qwen2_5_vl")
    monkeypatch.setattr("thinkspace.generation.packed_linear.PACK_MIN_BYTES", 0)
    pre = prefill(backbone, prompts(backbone))
    language_model = backbone.hf.model.language_model
    lean = LeanDecoder(language_model, pre.cache, pre.mask, pre.positions(4))
    assert lean.packed and all(w.is_mkldnn for w, _ in lean.weights.layers[0].qkv + lean.weights.layers[0].gate_up)
    assert lean.weights.layers[-1].out.is_mkldnn and lean.weights.layers[-1].down.is_mkldnn
    assert not LeanDecoder(language_model, pre.cache, pre.mask, pre.positions(4), compile=True).packed
    with pytest.raises(ValueError, match="compile=True takes plain weights, not pack=True"):
        LeanDecoder(language_model, pre.cache, pre.mask, pre.positions(4), compile=True, pack=True)
    with pytest.raises(ValueError, match=r"packed projections need float32 weights on the CPU.*got torch.float64"):
        weights = decoder_weights(language_model)
        packed(replace(weights, layers=[replace(layer, out=layer.out.double()) for layer in weights.layers]), rows=2)


@pytest.mark.slow
def test_compiled_lean_step_is_within_1e_5_of_the_hugging_face_step(plain):
    assert_same_decoding(plain("qwen3_vl"), compile=True)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "composed"])
def test_lora_adapters_are_folded_into_the_step(family, tiny_cache):
    backbone = backbone_for(family, LoraSettings(r=4, alpha=8, dropout=0.0))
    for name, param in backbone.hf.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: give the adapters something to add
            torch.nn.init.normal_(param, std=0.2)
    language_model = backbone.hf.model.language_model
    attn = language_model.layers[0].self_attn
    base = torch.cat([attn.q_proj.base_layer.weight, attn.k_proj.base_layer.weight, attn.v_proj.base_layer.weight])
    (folded, _), = decoder_weights(language_model).layers[0].qkv
    assert float((folded - base).abs().max()) > 1e-2
    assert_same_decoding(backbone)


def tiny_decoder(cls=Qwen2Model, config_cls=Qwen2Config, **overrides):
    config = config_cls(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, **overrides)
    return cls(config).eval()


def test_a_plain_tiny_qwen2_decoder_is_supported():
    assert lean_step_unsupported(tiny_decoder()) is None


def with_hook(model):
    model.layers[1].mlp.register_forward_hook(lambda *args: None)
    return model


@pytest.mark.parametrize("make, reason", [
    (lambda: tiny_decoder(LlamaModel, LlamaConfig), "decoder LlamaModel: the lean step supports"),
    (lambda: tiny_decoder(use_sliding_window=True, sliding_window=8, max_window_layers=0),
     "decoder Qwen2Model: sliding-window attention"),
    (lambda: tiny_decoder(hidden_act="gelu"), "hidden_act 'gelu'; the lean step supports 'silu'"),
    (lambda: with_hook(tiny_decoder()), "module layers.1.mlp has forward hooks"),
])
def test_unsupported_decoders_are_named(make, reason):
    model = make()
    assert reason in (lean_step_unsupported(model) or "")
    cache = DynamicCache()
    with pytest.raises(LeanStepUnsupported, match=reason.split(":")[0]):
        LeanDecoder(model, cache, torch.ones(1, 1), torch.zeros(1, 4, dtype=torch.long))


def test_lora_dropout_in_training_mode_falls_back_and_eval_mode_folds(tiny_cache):
    backbone = backbone_for("qwen2_5_vl", LoraSettings(r=4, alpha=8, dropout=0.05))
    language_model = backbone.hf.model.language_model
    backbone.hf.train()
    reason = lean_step_unsupported(language_model)
    assert "Qwen2_5_VLTextModel.layers.0.self_attn.q_proj: adapter 'default' has dropout 0.05 in training mode" in (
        reason or "")
    backbone.hf.eval()
    assert lean_step_unsupported(language_model) is None


def test_fallback_reason_is_returned_and_compile_needs_fixed_shapes():
    model = tiny_decoder(hidden_act="gelu")
    decoder, reason = lean_decoder_or_reason(model, DynamicCache(), torch.ones(1, 1), torch.zeros(1, 4).long())
    assert decoder is None and reason.startswith("hugging face: decoder Qwen2Model: hidden_act 'gelu'")
    with pytest.raises(ValueError, match="compile=True needs fixed_shapes"):
        LeanDecoder(tiny_decoder(), DynamicCache(), torch.ones(1, 1), torch.zeros(1, 4).long(), compile=True,
                    fixed_shapes=False)
