"""Building a composed VLM from parts, and its directory format.

A composed directory (what ``tiny:composed`` builds and export writes)::

    config.json          ComposedConfig (model_type thinkspace_composed, text_config inside)
    model.safetensors    vision_tower.* and multi_modal_projector.* weights
    language_model/      a plain causal-LM directory (AutoModelForCausalLM + AutoTokenizer,
                         <image> among its added tokens)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from thinkspace.backbones.composed.config import IMAGE_TOKEN, MODEL_TYPE, ComposedConfig
from thinkspace.backbones.composed.encoder import build_encoder, encoder_geometry
from thinkspace.backbones.composed.model import ComposedForConditionalGeneration, causal_lm_shell

LM_DIR = "language_model"
VISION_FILE = "model.safetensors"
VISION_PREFIXES = ("vision_tower.", "multi_modal_projector.")


def load_causal_lm(lm_path: str, dtype: Any, attn_implementation: str) -> tuple[nn.Module, Any]:
    """``AutoModelForCausalLM`` and ``AutoTokenizer`` of a local directory or Hub id.

    Raises:
        FileNotFoundError: a directory without ``config.json``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from thinkspace.backbones.paths import resolve_model_path

    path = resolve_model_path(lm_path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn_implementation)
    return lm, AutoTokenizer.from_pretrained(path)


def compose(lm: nn.Module, tokenizer: Any, encoder: str, encoder_kwargs: dict[str, Any] | None = None,
            encoder_weights_path: str | None = None, encoder_pretrained: bool = False, pool: int = 1,
            projector_depth: int = 2) -> ComposedForConditionalGeneration:
    """Put a timm encoder, a new projector and a loaded causal LM together (adds ``<image>``)."""
    vision = build_encoder(encoder, encoder_kwargs, encoder_weights_path, encoder_pretrained)
    geometry = encoder_geometry(vision)
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    config = ComposedConfig(
        text_config=lm.config.to_dict(), encoder=encoder, encoder_kwargs=dict(encoder_kwargs or {}),
        encoder_dim=geometry.dim, image_size=list(geometry.image_size), patch_grid=list(geometry.patch_grid),
        pool=pool, projector_depth=projector_depth, image_token_id=int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)),
    )
    model = ComposedForConditionalGeneration(config, language_model=lm.model, vision_tower=vision, lm_head=lm.lm_head)
    model.generation_config = lm.generation_config
    model.to(lm.dtype)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return model


def is_composed_dir(path: str | Path) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == MODEL_TYPE


def load_composed(path: str | Path, dtype: Any,
                  attn_implementation: str) -> tuple[ComposedForConditionalGeneration, Any]:
    """The model and tokenizer of a composed directory (format above).

    Raises:
        FileNotFoundError: a file of the format is missing (named).
    """
    from safetensors.torch import load_file

    root = Path(path)
    for need in ("config.json", VISION_FILE, f"{LM_DIR}/config.json"):
        if not (root / need).is_file():
            raise FileNotFoundError(f"{root}: no {need}; expected a composed model directory (config.json with "
                                    f"model_type {MODEL_TYPE!r}, {VISION_FILE}, {LM_DIR}/)")
    lm, tokenizer = load_causal_lm(str(root / LM_DIR), dtype, attn_implementation)
    config = ComposedConfig.from_pretrained(root)
    config.text_config = lm.config  # the directory's LM is the truth (vocabulary size after added tokens)
    vision = build_encoder(config.encoder, config.encoder_kwargs)
    model = ComposedForConditionalGeneration(config, language_model=lm.model, vision_tower=vision, lm_head=lm.lm_head)
    model.generation_config = lm.generation_config
    missing, unexpected = model.model.load_state_dict(load_file(str(root / VISION_FILE)), strict=False)
    missing = [k for k in missing if k.startswith(VISION_PREFIXES)]
    if missing or unexpected:
        raise ValueError(f"{root / VISION_FILE}: missing {missing[:3]}, unexpected {unexpected[:3]} "
                         f"for encoder {config.encoder!r} with {config.encoder_kwargs}")
    model.to(lm.dtype)
    return model, tokenizer


def save_composed(model: ComposedForConditionalGeneration, tokenizer: Any, out_dir: str | Path) -> Path:
    """Write ``model`` (without LoRA layers: merge them first) as a composed directory."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    (out / LM_DIR).mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    state = {k: v.detach().contiguous().cpu() for k, v in model.model.state_dict().items()
             if k.startswith(VISION_PREFIXES)}
    save_file(state, str(out / VISION_FILE), metadata={"format": "pt"})
    shell = causal_lm_shell(model)
    shell.config = model.config.text_config
    shell.generation_config = model.generation_config
    from thinkspace.backbones.tiny.build import save_quietly

    save_quietly(shell, out / LM_DIR)
    tokenizer.save_pretrained(out / LM_DIR)
    return out
