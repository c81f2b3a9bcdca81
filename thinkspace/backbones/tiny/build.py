"""Tiny random-initialised vision-language models, built offline as ordinary model directories.

`build_tiny("qwen2_5_vl", out_dir)` writes `config.json`, `generation_config.json`,
`model.safetensors` (float32), the tokenizer files and the processor files of a model of
about a million parameters, using the family's real model, image-processor, video-processor
and processor classes. So `AutoProcessor.from_pretrained(out_dir)` and
`AutoModelForImageTextToText.from_pretrained(out_dir)` load it offline exactly as they load a
real checkpoint, and every code path that handles a real model runs on it in seconds.

This module is family-independent: which family builds a tiny name is read from
:mod:`thinkspace.backbones.registry`, and the family's `tiny.py` (`build(name, out, **sizes)`)
writes the files, with :func:`save_hf_tiny` for transformers-backed families.

`tiny_model_dir(family, **overrides)` builds such a directory once per set of arguments under a
cache root and returns it on later calls.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from thinkspace.backbones.registry import family_of_tiny, tiny_names

#: every `tiny:<name>` the registered families build
TINY_FAMILIES: tuple[str, ...] = tiny_names()

# Bump when the builder changes what it writes, so cached directories are rebuilt.
BUILD_VERSION = 1


def check_family(family: str) -> None:
    """Raise ValueError naming `family` and the supported ones unless it is one of TINY_FAMILIES."""
    family_of_tiny(family)


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
    `max_pixels` bound the resized area of one image or video frame (pixels, i.e. H * W); for Qwen-VL
    the number of visual tokens per image is between about min_pixels / (patch * 2)**2 and
    max_pixels / (patch * 2)**2 (patch 14 for Qwen2/2.5-VL, 16 for Qwen3-VL). For
    `llava_onevision`, `min_pixels` is the area of one square crop (56 px crops of 4 x 4
    tokens by default) and `max_pixels` bounds the anyres crop grids (see `llava_onevision/tiny.py`).
    For `composed` (timm ViT + Qwen2 causal LM), frames are sqrt(max_pixels) px squares (see
    `composed/tiny.py`) and the directory is a composed one (`composed/io.py`).
    The same arguments give byte-identical `model.safetensors` (seeded init on the CPU).
    """
    check_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    builder = importlib.import_module(f"{family_of_tiny(family).package}.tiny")
    return builder.build(family, out, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                         num_kv_heads=num_kv_heads, intermediate_size=intermediate_size or 4 * hidden_size,
                         vision_hidden_size=vision_hidden_size, vision_depth=vision_depth, min_pixels=min_pixels,
                         max_pixels=max_pixels, seed=seed)


def decoder_sizes(tokenizer: Any, *, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                  intermediate_size: int) -> dict[str, int]:
    """The text-config entries every tiny decoder shares: its sizes and a vocabulary padded to a
    multiple of 64 rows (as the real checkpoints pad theirs, so added tokens often fit)."""
    return {
        "vocab_size": -(-len(tokenizer) // 64) * 64,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "max_position_embeddings": 32768,
    }


def save_hf_tiny(config: Any, processor: Any, tokenizer: Any, out: Path, seed: int) -> Path:
    """Initialise ``AutoModelForImageTextToText`` from ``config`` with ``seed`` (float32, on the CPU,
    without moving the caller's random stream) and write it, its generation config and ``processor``."""
    from transformers import AutoModelForImageTextToText, GenerationConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        # A chat turn ends with <|im_end|>; plain-text continuations with <|endoftext|>.
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    save_quietly(model, out)
    processor.save_pretrained(out)
    return out


def save_quietly(model: torch.nn.Module, out: Path) -> None:
    """save_pretrained without its progress bar (a one-shard file is not worth one per build)."""
    from transformers.utils import logging as hf_logging

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
        return _complete(final)

    parent.mkdir(parents=True, exist_ok=True)
    # Hidden name: a crashed build leaves only a dot-directory that nothing ever reads.
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
    try:
        build_tiny(family, tmp, **args)
        if not (tmp / "config.json").is_file():
            # Under torch.distributed, transformers' save_pretrained writes the model on global rank 0
            # only: this rank's build holds the processor alone. Rank 0 builds the same directory.
            return _built_elsewhere(final)
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


#: how long a rank whose build wrote no model waits for global rank 0's (s)
WAIT_FOR_RANK_ZERO = 600.0


def _built_elsewhere(final: Path, timeout: float = WAIT_FOR_RANK_ZERO) -> Path:
    """``final`` once another process (global rank 0) has renamed its complete build there."""
    deadline = time.monotonic() + timeout
    while not final.is_dir():
        if time.monotonic() > deadline:
            raise RuntimeError(f"tiny model {final.name}: this process (a rank other than 0 under "
                               "torch.distributed, where transformers writes models on rank 0 only) waited "
                               f"{timeout:.0f} s for rank 0 to build {final}; does rank 0 build the same model, into the "
                               "same cache (a node-local cache on several nodes: set THINKSPACE_CACHE to a shared "
                               "directory, or build the tiny model once before starting the ranks)?")
        time.sleep(0.2)
    return _complete(final)


def _complete(final: Path) -> Path:
    """``final``, refused when it holds no ``config.json`` (written by thinkspace before 2026-12-08 from a
    rank other than 0 under torch.distributed, whose save_pretrained wrote nothing)."""
    if not (final / "config.json").is_file():
        raise RuntimeError(f"tiny model cache {final} is incomplete (no config.json: built on a rank other "
                           "than 0 under torch.distributed by an older thinkspace); delete that directory")
    return final
