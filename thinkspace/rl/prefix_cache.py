"""A shared prompt prefix that gradient checkpointing can replay.

GRPO scores a group's completions in one pass over the prompt's repeated KV cache
(:func:`~thinkspace.rl.rollout.sequence_logprobs`). A cache that each layer *extends*
cannot sit inside a checkpointed layer: the backward pass replays the layer, which would
extend it a second time, and transformers therefore drops the cache from checkpointed
layers, silently detaching the completions from their prompt. A :func:`read_only` cache
returns ``prefix + new`` keys and values without storing them, so a replay sees exactly
what the first pass saw; layers may then be checkpointed with it
(:func:`allow_read_only_cache`). The prefill, which does write its cache, runs with
checkpointing paused (:func:`checkpointing_paused`); it holds the ``B`` prompts, not the
``B x G`` completions, so its activations are the small part.

The rollout's own prefill can be that prefix (computed once with gradients, decoded from, then
scored from) when a pass in training mode computes what the rollout's pass in evaluation mode
did: :func:`train_mode_dropout` names what would make them differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd
from transformers.cache_utils import Cache, DynamicLayer
from transformers.modeling_layers import GradientCheckpointingLayer


class ReadOnlyLayer(DynamicLayer):
    """One layer's prefix keys and values ``[N, heads, Lp, head_dim]``, read by every pass, extended by none."""

    def __init__(self, keys: Tensor, values: Tensor) -> None:
        super().__init__()
        self.keys, self.values = keys, values
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        return torch.cat([self.keys, key_states], -2), torch.cat([self.values, value_states], -2)


def read_only(cache: Cache) -> Cache:
    """A cache over the same prefix tensors whose ``update`` returns ``prefix + new`` and stores nothing."""
    layers = []
    for i, layer in enumerate(cache.layers):
        if not isinstance(layer, DynamicLayer) or getattr(layer, "is_sliding", False):
            raise TypeError(f"read_only: layer {i} of the prefix cache is a {type(layer).__name__}; "
                            "expected a full-attention DynamicLayer")
        layers.append(ReadOnlyLayer(layer.keys, layer.values))
    return Cache(layers=layers)


def train_mode_dropout(model: nn.Module) -> str | None:
    """The first module that draws dropout in training mode (``"<name>: <kind> p"``), or ``None``.

    Dropout modules with ``p > 0`` count, and so do attention modules that keep their dropout rate as
    a float applied only in training (``attention_dropout``, as transformers' attention classes do).
    """
    for name, module in model.named_modules():
        if isinstance(module, _DropoutNd) and module.p > 0:
            return f"{name or type(module).__name__}: {type(module).__name__} p={module.p}"
        rate = getattr(module, "attention_dropout", None)
        if isinstance(rate, float) and rate > 0:
            return f"{name or type(module).__name__}: attention_dropout {rate}"
    return None


def checkpointed_layers(module: nn.Module) -> list[GradientCheckpointingLayer]:
    return [m for m in module.modules() if isinstance(m, GradientCheckpointingLayer)]


def allow_read_only_cache(decoder: nn.Module) -> None:
    """Let the decoder's checkpointed layers keep a cache (it must be :func:`read_only` in training)."""
    for layer in checkpointed_layers(decoder):
        layer._can_checkpoint_with_cache = True


@contextmanager
def checkpointing_paused(decoder: nn.Module) -> Iterator[None]:
    """Run the decoder's layers without gradient checkpointing (a pass that writes its cache)."""
    layers = [(layer, layer.gradient_checkpointing) for layer in checkpointed_layers(decoder)]
    for layer, _ in layers:
        layer.gradient_checkpointing = False
    try:
        yield
    finally:
        for layer, flag in layers:
            layer.gradient_checkpointing = flag
