"""LoRA adapters on a backbone's language model, through peft."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

#: the language model's attention and MLP projections (not the vision tower's).
LANGUAGE_LINEAR = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
#: every Linear outside the vision tower of a Qwen-VL model: the projections above and ``lm_head``
#: (3DThinker's released stage 2 adapts every ``nn.Linear`` whose name lacks "visual",
#: ``open_r1/trainer/grpo_trainer.py``, ``find_all_linear_names``).
LANGUAGE_LINEAR_AND_HEAD = rf"(?:{LANGUAGE_LINEAR}|lm_head)"


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (3DThinker's stage 2: r 64, alpha 128, dropout 0.05).

    Attributes:
        r: adapter rank.
        alpha: scaling numerator (scale = alpha / r).
        dropout: dropout on the adapter input.
        target_modules: regular expression over module names to adapt.
        modules_to_save: modules trained in full beside the adapters (e.g. ``lm_head``).
    """

    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: str = LANGUAGE_LINEAR
    modules_to_save: list[str] = field(default_factory=list)


def apply_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    """Wrap ``model`` in a peft model; only adapters (and ``modules_to_save``) train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        modules_to_save=settings.modules_to_save or None,
    )
    with warnings.catch_warnings():
        # peft warns that a tied lm_head is adapted: intended (the embeddings stay the base's, as in
        # 3DThinker's release), and the export unties it before merging (thinkspace/backbones/merge.py)
        warnings.filterwarnings("ignore", message=r"Model has `tie_word_embeddings=True` and a tied layer is part "
                                                  r"of the adapter")
        return get_peft_model(model, config)


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers stay in place)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def resize_vocabulary(model: nn.Module, rows: int) -> None:
    """``model.resize_token_embeddings(rows)`` (new rows mean-initialised, a tied head resized with the
    embeddings), also when peft's LoRA adapts the LM head: its base layer is resized and re-tied as a plain
    head, and its ``lora_B`` rows (one per token) are cut or extended with zeros (a new token's adapter
    output starts at 0). Whether each weight trains is kept.

    Raises:
        ValueError: an LM head peft wraps otherwise (``modules_to_save``, DoRA), naming it.
    """
    head = model.get_output_embeddings()
    base = getattr(head, "base_layer", None)
    embed_grad = model.get_input_embeddings().weight.requires_grad
    if base is None:
        model.resize_token_embeddings(rows, mean_resizing=True)
        model.get_input_embeddings().weight.requires_grad_(embed_grad)
        return
    if not isinstance(getattr(head, "lora_B", None), nn.ModuleDict) or getattr(head, "lora_magnitude_vector", None):
        raise ValueError(f"resizing the vocabulary to {rows} rows: the LM head is wrapped by {type(head).__name__}, "
                         "which thinkspace cannot resize; add the tokens before LoRA (a model directory that has "
                         "them) or adapt the head with plain LoRA")
    head_grad = base.weight.requires_grad
    model.lm_head = base  # peft's wrapper off: transformers resizes (and ties) a plain Linear
    try:
        model.resize_token_embeddings(rows, mean_resizing=True)
    finally:
        head.base_layer = model.get_output_embeddings()
        model.lm_head = head
    head.base_layer.weight.requires_grad_(head_grad)
    model.get_input_embeddings().weight.requires_grad_(embed_grad)
    for name, old in list(head.lora_B.items()):
        new = nn.Linear(old.in_features, rows, bias=old.bias is not None, device=old.weight.device,
                        dtype=old.weight.dtype)
        with torch.no_grad():
            new.weight.zero_()
            keep = min(rows, old.out_features)
            new.weight[:keep] = old.weight[:keep]
            if old.bias is not None:
                new.bias.zero_()
                new.bias[:keep] = old.bias[:keep]
        new.requires_grad_(old.weight.requires_grad)
        head.lora_B[name] = new
    head.out_features = rows
