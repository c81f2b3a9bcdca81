"""The tiny Qwen-VL models (`tiny:qwen2_vl`, `tiny:qwen2_5_vl`, `tiny:qwen3_vl`): configs, processors, builder.

Built once and cached by :mod:`thinkspace.backbones.tiny` (which calls :func:`build`).

The shapes follow the real checkpoints scaled down: patch 14 (Qwen2/2.5-VL) or 16 (Qwen3-VL),
2x2 spatial merge, 2-frame temporal patches, multimodal RoPE sections in the real ratios, and
the image normalisation of each family. Token ids come from the tokenizer, never constants.
"""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoConfig,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    ProcessorMixin,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from thinkspace.backbones.tiny.build import decoder_sizes, save_hf_tiny
from thinkspace.backbones.tiny.tokenizer import build_tokenizer

PATCH_SIZE = {"qwen2_vl": 14, "qwen2_5_vl": 14, "qwen3_vl": 16}
MERGE_SIZE = 2  # 2x2 patches become one LLM token
TEMPORAL_PATCH_SIZE = 2  # 2 consecutive frames (or an image repeated) form one patch
VISION_HEAD_DIM = 16
# Fractions of the head_dim / 2 rotary frequencies given to the height and width axes (the
# rest go to time), as in the real checkpoints' mrope_section: Qwen2/2.5-VL [16, 24, 24] of 64,
# Qwen3-VL [24, 20, 20] of 64.
MROPE_FRACTIONS = {
    "qwen2_vl": (0.375, 0.375),
    "qwen2_5_vl": (0.375, 0.375),
    "qwen3_vl": (0.3125, 0.3125),
}
ROPE_THETA = {"qwen2_vl": 1_000_000.0, "qwen2_5_vl": 1_000_000.0, "qwen3_vl": 5_000_000.0}
# Qwen3-VL's video processor bounds a whole clip's pixels, not a frame's: allow this many
# frames at max_pixels each.
MAX_VIDEO_FRAMES_AT_FULL_SIZE = 16
PROCESSOR_CLASS = {
    "qwen2_vl": Qwen2VLProcessor,
    "qwen2_5_vl": Qwen2_5_VLProcessor,
    "qwen3_vl": Qwen3VLProcessor,
}


def mrope_section(family: str, head_dim: int) -> list[int]:
    """Rotary frequencies per (temporal, height, width) axis; they sum to head_dim / 2."""
    half = head_dim // 2
    h_frac, w_frac = MROPE_FRACTIONS[family]
    h, w = round(half * h_frac), round(half * w_frac)
    return [half - h - w, h, w]


def _check_sizes(hidden_size: int, num_heads: int, num_kv_heads: int, vision_hidden_size: int) -> int:
    """Validate the text/vision sizes; return the text head_dim."""
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}")
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} must be a multiple of num_kv_heads={num_kv_heads}")
    head_dim = hidden_size // num_heads
    if head_dim % 8 or head_dim < 16:
        raise ValueError(
            f"head_dim = hidden_size / num_heads = {head_dim} must be a multiple of 8 and at least 16 "
            "so that the multimodal RoPE can split it over time, height and width"
        )
    if vision_hidden_size % VISION_HEAD_DIM:
        raise ValueError(f"vision_hidden_size={vision_hidden_size} must be a multiple of {VISION_HEAD_DIM}")
    return head_dim


def _vision_config(
    family: str,
    *,
    hidden_size: int,
    vision_hidden_size: int,
    vision_depth: int,
    num_layers: int,
    max_pixels: int,
) -> dict:
    """vision_config dict; its output width (`out_hidden_size`) is the text `hidden_size`."""
    common = {
        "depth": vision_depth,
        "num_heads": vision_hidden_size // VISION_HEAD_DIM,
        "patch_size": PATCH_SIZE[family],
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        "in_channels": 3,
    }
    if family == "qwen2_vl":  # Qwen2-VL names: embed_dim = ViT width, hidden_size = output width
        return {**common, "embed_dim": vision_hidden_size, "hidden_size": hidden_size, "mlp_ratio": 4}
    common |= {
        "hidden_size": vision_hidden_size,
        "intermediate_size": 4 * vision_hidden_size,
        "out_hidden_size": hidden_size,
    }
    if family == "qwen2_5_vl":
        # Window attention (112 px windows) in all blocks but the last, as the real tower does.
        return {
            **common,
            "window_size": 112,
            "fullatt_block_indexes": [vision_depth - 1],
            "tokens_per_second": 2,
        }
    # Qwen3-VL: a learned position grid (resampled per image): one entry per patch of a
    # square max_pixels image; DeepStack feeds up to 3 intermediate ViT layers into the first
    # text layers, so there can be no more of them than text layers.
    side = max(2, round(max_pixels**0.5 / PATCH_SIZE[family]))
    deepstack = list(range(vision_depth - 1))[: min(3, num_layers)]
    return {**common, "num_position_embeddings": side * side, "deepstack_visual_indexes": deepstack}


# Each family writes its own tiny config in its folder (transformers' rule: nothing about a family outside it).
def model_config(
    family: str,
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    intermediate_size: int,
    vision_hidden_size: int,
    vision_depth: int,
    max_pixels: int,
) -> PretrainedConfig:
    """The family's real config class, sized down, with token ids read from `tokenizer`.

    The vocabulary is padded to a multiple of 64 rows as the real checkpoints pad theirs, so
    logits have more columns than the tokenizer has tokens (ids past len(tokenizer) decode to
    nothing) exactly as with a real model.
    """
    head_dim = _check_sizes(hidden_size, num_heads, num_kv_heads, vision_hidden_size)
    ids = tokenizer.convert_tokens_to_ids
    rope = {
        "rope_type": "default",
        "rope_theta": ROPE_THETA[family],
        "mrope_section": mrope_section(family, head_dim),
    }
    if family == "qwen3_vl":
        rope["mrope_interleaved"] = True
    text = {
        **decoder_sizes(tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                        num_kv_heads=num_kv_heads, intermediate_size=intermediate_size),
        "rms_norm_eps": 1e-6,
        "attention_dropout": 0.0,
        "rope_parameters": rope,
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if family == "qwen3_vl":
        text["head_dim"] = head_dim
    vision = _vision_config(
        family,
        hidden_size=hidden_size,
        vision_hidden_size=vision_hidden_size,
        vision_depth=vision_depth,
        num_layers=num_layers,
        max_pixels=max_pixels,
    )
    return AutoConfig.for_model(
        family,
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,  # as in the small real checkpoints (2B to 4B)
        dtype="float32",
    )


def processor(
    family: str, tokenizer: PreTrainedTokenizerBase, *, min_pixels: int, max_pixels: int
) -> ProcessorMixin:
    """The family's real processor with its real image and video processors, sized down.

    `min_pixels` / `max_pixels` bound one image's (or one video frame's) resized area, H * W.
    """
    patch = PATCH_SIZE[family]
    grid = {"patch_size": patch, "temporal_patch_size": TEMPORAL_PATCH_SIZE, "merge_size": MERGE_SIZE}
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    if family == "qwen3_vl":
        half = [0.5, 0.5, 0.5]
        images = Qwen2VLImageProcessor(size=size, image_mean=half, image_std=half, **grid)
        factor = patch * MERGE_SIZE
        videos = Qwen3VLVideoProcessor(
            # Qwen3-VL sizes a whole clip (frames * H * W); the per-frame cap below keeps each
            # frame within max_pixels, like an image.
            size={
                "shortest_edge": min_pixels,
                "longest_edge": max_pixels * MAX_VIDEO_FRAMES_AT_FULL_SIZE,
            },
            cap_pixels_per_frame=True,
            max_video_tokens=max(1, max_pixels // factor**2),
            image_mean=half,
            image_std=half,
            **grid,
        )
    else:
        clip = {"image_mean": OPENAI_CLIP_MEAN, "image_std": OPENAI_CLIP_STD}
        images = Qwen2VLImageProcessor(size=size, **clip, **grid)
        # cap_pixels_per_frame=True is the reference (qwen-vl-utils) behaviour; with the default
        # total budget it changes nothing for short clips, and it silences a per-call warning.
        videos = Qwen2VLVideoProcessor(size=dict(size), cap_pixels_per_frame=True, **clip, **grid)
    return PROCESSOR_CLASS[family](
        image_processor=images,
        tokenizer=tokenizer,
        video_processor=videos,
        chat_template=tokenizer.chat_template,
    )


def build(name: str, out: Path, *, min_pixels: int, max_pixels: int, seed: int, **sizes: int) -> Path:
    """Write the tiny ``name`` model (``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl``) to ``out``; ``sizes``
    as :func:`thinkspace.backbones.tiny.build_tiny`."""
    tokenizer = build_tokenizer(name)
    config = model_config(name, tokenizer, max_pixels=max_pixels, **sizes)
    return save_hf_tiny(config, processor(name, tokenizer, min_pixels=min_pixels, max_pixels=max_pixels),
                        tokenizer, out, seed)
