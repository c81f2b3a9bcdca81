"""Tiny random-initialised vision-language models, built offline as ordinary Hugging Face dirs.

`build_tiny("qwen2_5_vl", out_dir)` writes `config.json`, `generation_config.json`,
`model.safetensors` (float32), the tokenizer files and the processor files of a model of
about a million parameters, using the family's real model, image-processor, video-processor
and processor classes. So `AutoProcessor.from_pretrained(out_dir)` and
`AutoModelForImageTextToText.from_pretrained(out_dir)` load it offline exactly as they load a
real checkpoint, and every code path that handles a real Qwen-VL model runs on it in seconds.

`tiny_model_dir(family, **overrides)` builds such a directory once per set of arguments under a
cache root and returns it on later calls.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, GenerationConfig
from transformers.utils import logging as hf_logging

from thinkspace.backbones import tiny_llava_onevision
from thinkspace.backbones.tiny_configs import model_config, processor
from thinkspace.backbones.tiny_tokenizer import build_tokenizer

TINY_FAMILIES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision", "composed")

# Bump when the builder changes what it writes, so cached directories are rebuilt.
BUILD_VERSION = 1


def check_family(family: str) -> None:
    """Raise ValueError naming `family` and the supported ones unless it is one of TINY_FAMILIES."""
    if family not in TINY_FAMILIES:
        raise ValueError(
            f"unknown tiny model family {family!r}; supported families: {', '.join(TINY_FAMILIES)}"
        )


def build_tiny(
    family: str,
    out_dir: str | Path,
    *,
    hidden_size: int = 128,
    num_layers: int = 3,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 64,
    vision_depth: int = 2,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
    seed: int = 0,
) -> Path:
    """Write config, safetensors weights, tokenizer and processor of a tiny model to out_dir; return it.

    Sizes: `hidden_size` is the text width (the vision tower projects to it); `num_heads` /
    `num_kv_heads` are the text attention heads (head_dim = hidden_size / num_heads);
    `intermediate_size` is the text MLP width (default 4 * hidden_size); `vision_hidden_size`
    and `vision_depth` size the vision tower (heads of 16 channels). `min_pixels` and
    `max_pixels` bound the resized area of one image or video frame (pixels, i.e. H * W), so
    the number of visual tokens per image is between about min_pixels / (patch * 2)**2 and
    max_pixels / (patch * 2)**2 (patch 14 for Qwen2/2.5-VL, 16 for Qwen3-VL). For
    `llava_onevision`, `min_pixels` is the area of one square crop (56 px crops of 4 x 4
    tokens by default) and `max_pixels` bounds the anyres crop grids (see `tiny_llava_onevision.py`).
    For `composed` (timm ViT + Qwen2 causal LM), frames are sqrt(max_pixels) px squares (see
    `composed/tiny.py`) and the directory is a composed one (`composed/io.py`).
    The same arguments give byte-identical `model.safetensors` (seeded init on the CPU).
    """
    check_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if family == "composed":  # timm ViT + Qwen2 causal LM; its own directory format
        from thinkspace.backbones.composed.tiny import build_tiny_composed

        return build_tiny_composed(out, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                                   num_kv_heads=num_kv_heads, intermediate_size=intermediate_size or 4 * hidden_size,
                                   vision_hidden_size=vision_hidden_size, vision_depth=vision_depth,
                                   max_pixels=max_pixels, seed=seed)

    tokenizer = build_tokenizer(family)
    llava = family == "llava_onevision"
    config = (tiny_llava_onevision.model_config if llava else partial(model_config, family))(
        tokenizer,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        vision_hidden_size=vision_hidden_size,
        vision_depth=vision_depth,
        **({"min_pixels": min_pixels} if llava else {}),
        max_pixels=max_pixels,
    )
    # Fork the RNG so building a model does not change the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        # A chat turn ends with <|im_end|>; plain-text continuations with <|endoftext|>.
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    _save_quietly(model, out)
    if llava:
        tiny_llava_onevision.processor(tokenizer, min_pixels=min_pixels, max_pixels=max_pixels).save_pretrained(out)
    else:
        processor(family, tokenizer, min_pixels=min_pixels, max_pixels=max_pixels).save_pretrained(out)
    return out


def _save_quietly(model: torch.nn.Module, out: Path) -> None:
    """save_pretrained without its progress bar (a one-shard file is not worth one per build)."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("THINKSPACE_CACHE"):
        return Path(os.environ["THINKSPACE_CACHE"])
    return Path.home() / ".cache" / "thinkspace"


def _build_args(family: str, overrides: dict) -> dict:
    """All build_tiny keyword arguments (defaults filled in), so equal models hash equal."""
    params = inspect.signature(build_tiny).parameters
    defaults = {k: p.default for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise TypeError(
            f"tiny_model_dir({family!r}): unknown override(s) {unknown}; expected some of {sorted(defaults)}"
        )
    return {**defaults, **overrides}


def tiny_model_dir(family: str, *, cache_dir: str | Path | None = None, **overrides) -> Path:
    """The directory of a tiny model built with these overrides, built once and cached.
    Cache root: cache_dir, else $THINKSPACE_CACHE, else ~/.cache/thinkspace; subdir
    tiny/{family}-{short hash of the overrides}. Built into a temporary sibling directory
    then renamed atomically, so a crash never leaves a half-written model and two
    processes building at once both end with a valid directory."""
    check_family(family)
    args = _build_args(family, overrides)
    key = json.dumps({"family": family, "version": BUILD_VERSION, **args}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    parent = _cache_root(cache_dir) / "tiny"
    final = parent / f"{family}-{digest}"
    if final.is_dir():  # only ever created by the rename below, so it is complete
        return final

    parent.mkdir(parents=True, exist_ok=True)
    # Hidden name: a crashed build leaves only a dot-directory that nothing ever reads.
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
    try:
        build_tiny(family, tmp, **args)
        tmp.chmod(0o755)  # mkdtemp makes it private; a cache may be shared
        try:
            os.rename(tmp, final)  # atomic on one filesystem
        except OSError:
            if not final.is_dir():  # not a lost race: a real error
                raise
            # Another process renamed its complete build first; use that one.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
