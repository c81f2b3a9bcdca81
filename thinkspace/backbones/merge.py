"""LoRA folded into a copy of the base weights, for export, tied embeddings kept as trained.

Qwen2.5-VL-3B (like most small checkpoints) ties ``lm_head`` to the input embeddings: one
tensor. 3DThinker's stage 2 adapts ``lm_head`` with LoRA, so in training the output layer
computes with ``W + dW`` while the embedding lookup still reads ``W``. Merging ``dW`` into
the shared tensor would change the embeddings too (peft warns). :func:`merged_copy` unties
first: the exported model has its own ``lm_head`` weight (``W + dW``), the base's embeddings
(``W``) and ``tie_word_embeddings: false`` in its config, which is what the trained module
computed, and what ``AutoModelForImageTextToText.from_pretrained`` then loads.

Precision: peft keeps adapter weights in float32 beside a bfloat16 base; the merge adds the
float32 ``scale * B @ A`` to the base weight and rounds once to the base's dtype, which is the
dtype the export is written in.
"""

from __future__ import annotations

import copy

from torch import nn


def adapted_tied_outputs(model: nn.Module) -> list[str]:
    """Names of the LoRA layers of ``model`` (a peft model) whose base weight is the input embeddings'."""
    from peft.tuners.lora import LoraLayer

    embeddings = model.get_input_embeddings().weight
    return [name for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and getattr(module.get_base_layer(), "weight", None) is embeddings]


def untie(model: nn.Module, names: list[str]) -> None:
    """Give each named LoRA layer's base a weight of its own (a copy of the shared one) and write
    ``tie_word_embeddings: false`` into the config and its text config, so nothing re-ties them."""
    modules = dict(model.named_modules())
    for name in names:
        base = modules[name].get_base_layer()
        base.weight = nn.Parameter(base.weight.detach().clone(), requires_grad=base.weight.requires_grad)
    config = model.get_base_model().config
    for part in {id(c): c for c in (config, config.get_text_config())}.values():
        if getattr(part, "tie_word_embeddings", False):
            part.tie_word_embeddings = False


def merged_copy(model: nn.Module) -> nn.Module:
    """The transformers model of ``model`` (a peft model) with LoRA merged, on a copy; the live model
    is untouched. An adapted output layer tied to the input embeddings is untied first."""
    clone = copy.deepcopy(model)
    tied = adapted_tied_outputs(clone)
    if tied:
        untie(clone, tied)
    return clone.merge_and_unload()
