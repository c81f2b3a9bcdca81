"""The tiny composed VLM (``tiny:composed``): a tiny timm ViT + a tiny Qwen2 causal LM, offline.

Sizes follow the other tiny families (``thinkspace.backbones.tiny.build_tiny`` arguments):
the LM is ``hidden_size`` wide with ``num_layers`` layers and the tiny Qwen tokenizer; the
encoder is a ``vit_tiny_patch16_224`` with 14 px patches (DINOv2's patch size),
``vision_hidden_size`` wide, ``vision_depth`` blocks, on ``sqrt(max_pixels)`` px square
frames (112 px: an 8 x 8 patch grid), average-pooled 2 x 2 to 4 x 4 visual tokens per frame.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

from thinkspace.backbones.composed.io import compose, save_composed
from thinkspace.backbones.tiny.tokenizer import build_tokenizer

ENCODER = "vit_tiny_patch16_224"
PATCH = 14
POOL = 2
VISION_HEAD_DIM = 16


def build(name: str, out: Path, **sizes: int) -> Path:
    """Write ``tiny:composed`` to ``out``; ``sizes`` as :func:`thinkspace.backbones.tiny.build_tiny`."""
    return build_tiny_composed(out, **sizes)


def build_tiny_composed(out: Path, *, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                        intermediate_size: int, vision_hidden_size: int, vision_depth: int, max_pixels: int,
                        seed: int, **unused: int) -> Path:
    """Write a tiny composed directory (see :mod:`thinkspace.backbones.composed.io`) to ``out``."""
    tokenizer = build_tokenizer("llava_onevision")  # Qwen2's tokens + <image>, ChatML template
    text = Qwen2Config(
        vocab_size=-(-len(tokenizer) // 64) * 64, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, dtype="float32",
    )
    side = max(2, round(max_pixels**0.5 / PATCH)) * PATCH
    encoder_kwargs = {"img_size": side, "patch_size": PATCH, "embed_dim": vision_hidden_size, "depth": vision_depth,
                      "num_heads": vision_hidden_size // VISION_HEAD_DIM}
    with torch.random.fork_rng(devices=[]):  # building does not move the caller's random stream
        torch.manual_seed(seed)
        lm = AutoModelForCausalLM.from_config(text, dtype=torch.float32)
        lm.generation_config = GenerationConfig(
            bos_token_id=text.bos_token_id, eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
            pad_token_id=tokenizer.pad_token_id,
        )
        model = compose(lm, tokenizer, ENCODER, encoder_kwargs, pool=POOL, projector_depth=2)
    return save_composed(model, tokenizer, out)
