"""The tiny LLaVA-OneVision model (`tiny:llava_onevision`): config, processor, builder.

LLaVA-OneVision is a SigLIP vision tower, a 2-layer MLP projector and a Qwen2 language model.
The tiny one keeps the real layout scaled down: 14 px patches, square crops (the real 384 px
becomes sqrt(min_pixels), 56 px by default, so a crop is 4 x 4 patch tokens), an "anyres" set
of crop grids up to max_pixels (by default 1 x 1, 1 x 2, 2 x 1 and 2 x 2 crops) so single
images exercise the high-resolution path, and the "full" feature selection of the real
checkpoints (SigLIP has no CLS token). Token ids come from the tokenizer, never constants.
"""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoConfig,
    LlavaOnevisionImageProcessor,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)

from thinkspace.backbones.tiny.build import decoder_sizes, save_hf_tiny
from thinkspace.backbones.tiny.tokenizer import build_tokenizer

PATCH_SIZE = 14
VISION_HEAD_DIM = 16
ROPE_THETA = 1_000_000.0
SIGLIP_MEAN_STD = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}  # SigLIP's normalisation
# The real checkpoints cap the high-resolution grid at about 9 crops' worth of tokens.
VISION_ASPECT_RATIO = "anyres_max_9"


def image_size(min_pixels: int) -> int:
    """Side (px) of one square crop: sqrt(min_pixels) rounded to whole patches (>= 2 patches)."""
    return max(2, round(min_pixels**0.5 / PATCH_SIZE)) * PATCH_SIZE


def grid_pinpoints(side: int, max_pixels: int) -> list[list[int]]:
    """The anyres resolutions (height, width) in px: every grid of `side` px crops whose area
    is at most `max_pixels` (at least the single crop)."""
    most = max(1, max_pixels // side**2)
    return [[a * side, b * side] for a in range(1, most + 1) for b in range(1, most + 1) if a * b <= most]


# Each family writes its own tiny config in its folder (transformers' rule: nothing about a family outside it).
def model_config(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    intermediate_size: int,
    vision_hidden_size: int,
    vision_depth: int,
    min_pixels: int,
    max_pixels: int,
) -> PretrainedConfig:
    """`LlavaOnevisionConfig` with a tiny SigLIP tower and a tiny Qwen2, ids read from `tokenizer`.

    The vocabulary is padded to a multiple of 64 rows, as with the tiny Qwen-VL models.
    """
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads}: hidden_size must "
            "be a multiple of num_heads and num_heads a multiple of num_kv_heads"
        )
    if vision_hidden_size % VISION_HEAD_DIM:
        raise ValueError(f"vision_hidden_size={vision_hidden_size} must be a multiple of {VISION_HEAD_DIM}")
    ids = tokenizer.convert_tokens_to_ids
    side = image_size(min_pixels)
    text = {
        "model_type": "qwen2",
        **decoder_sizes(tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                        num_kv_heads=num_kv_heads, intermediate_size=intermediate_size),
        "rms_norm_eps": 1e-6,
        "attention_dropout": 0.0,
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    vision = {
        "model_type": "siglip_vision_model",
        "hidden_size": vision_hidden_size,
        "intermediate_size": 4 * vision_hidden_size,
        "num_hidden_layers": vision_depth,
        "num_attention_heads": vision_hidden_size // VISION_HEAD_DIM,
        "image_size": side,
        "patch_size": PATCH_SIZE,
        "vision_use_head": False,
    }
    return AutoConfig.for_model(
        "llava_onevision",
        text_config=text,
        vision_config=vision,
        image_token_index=ids("<image>"),
        video_token_index=ids("<video>"),
        image_grid_pinpoints=grid_pinpoints(side, max_pixels),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio=VISION_ASPECT_RATIO,
        tie_word_embeddings=True,  # as the small real checkpoint (0.5B) does
        dtype="float32",
    )


def processor(tokenizer: PreTrainedTokenizerBase, *, min_pixels: int, max_pixels: int) -> LlavaOnevisionProcessor:
    """The real `LlavaOnevisionProcessor` with its real image and video processors, sized down.

    Images and video frames are resized to `image_size(min_pixels)` px squares (crops for
    single images, pooled per frame for videos); `num_image_tokens` is one crop's patch tokens.
    """
    side = image_size(min_pixels)
    size = {"height": side, "width": side}
    return LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(
            size=size, image_grid_pinpoints=grid_pinpoints(side, max_pixels), **SIGLIP_MEAN_STD
        ),
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=dict(size), **SIGLIP_MEAN_STD),
        num_image_tokens=(side // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio=VISION_ASPECT_RATIO,
        chat_template=tokenizer.chat_template,
    )


def build(name: str, out: Path, *, min_pixels: int, max_pixels: int, seed: int, **sizes: int) -> Path:
    """Write the tiny LLaVA-OneVision model to ``out``; ``sizes`` as :func:`thinkspace.backbones.tiny.build_tiny`."""
    tokenizer = build_tokenizer(name)
    config = model_config(tokenizer, min_pixels=min_pixels, max_pixels=max_pixels, **sizes)
    return save_hf_tiny(config, processor(tokenizer, min_pixels=min_pixels, max_pixels=max_pixels),
                        tokenizer, out, seed)
