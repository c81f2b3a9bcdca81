"""A prompt batch run once through the model (its KV cache kept), for decoding or a scoring pass.

:func:`prefill` runs left-padded prompts once; :class:`Prefill` holds what decoding continues
from (cache, last hidden states, mask, Qwen-VL's 3D-RoPE offsets) and can be repeated per GRPO
group, asked for the next text positions, or kept as it is for a later pass.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.data.batch import Batch


@dataclass
class Prefill:
    """A prompt batch run once through the model, with its KV cache.

    Attributes:
        cache: the ``DynamicCache`` after the prompt.
        hidden: ``[B, Lp, D]`` last-layer hidden states of the prompt (after the final norm).
        mask: ``[B, Lp]`` attention mask of the left-padded prompt.
        deltas: ``[B, 1]`` offset of each sample's next text position (3D RoPE), or 0.
        mrope: the model uses multimodal (3-axis) RoPE.
        out: the prompt's :class:`BackboneOutput` (inputs embeddings for the projector).
    """

    cache: Any
    hidden: Tensor
    mask: Tensor
    deltas: Tensor | int
    mrope: bool
    out: BackboneOutput

    def repeat(self, group: int) -> Prefill:
        """The same prefix for ``B x group`` rows (cache tensors repeated, graph kept)."""
        if group == 1:
            return self
        self.cache.batch_repeat_interleave(group)
        deltas = self.deltas.repeat_interleave(group, 0) if isinstance(self.deltas, Tensor) else self.deltas
        return Prefill(self.cache, self.hidden.repeat_interleave(group, 0), self.mask.repeat_interleave(group, 0),
                       deltas, self.mrope, self.out)

    def positions(self, steps: int, start: int = 0) -> Tensor:
        """Text positions ``[3, N, steps]`` (3D RoPE) or ``[N, steps]`` of the next ``steps`` tokens
        after the prompt (and ``start`` tokens already decoded)."""
        valid = self.mask.sum(1, keepdim=True) + self.deltas  # [N, 1]
        pos = valid.to(self.hidden.device) + start + torch.arange(steps, device=self.hidden.device)
        return pos[None].expand(3, *pos.shape) if self.mrope else pos

    def kept(self) -> Prefill:
        """This prefix as it is now, for a later pass: the cache's layers are shallow copies holding
        today's key/value tensors (decoding replaces a layer's tensors or copies them, never
        writes into them), so extending this cache leaves the copy as it was."""
        cache = copy.copy(self.cache)
        cache.layers = [copy.copy(layer) for layer in self.cache.layers]
        return Prefill(cache, self.hidden, self.mask, self.deltas, self.mrope, self.out)


def prefill(backbone: Any, prompts: Batch, inputs_embeds_hook: Any = None) -> Prefill:
    """Run the left-padded ``prompts`` once with a fresh KV cache (gradients follow the caller's mode)."""
    from transformers import DynamicCache

    hf = backbone.hf
    cache = DynamicCache()
    seen: dict[str, Tensor] = {}

    def keep(embeds: Tensor, b: Batch) -> Tensor:
        seen["embeds"] = inputs_embeds_hook(embeds, b) if inputs_embeds_hook is not None else embeds
        return seen["embeds"]

    mrope = backbone.multimodal_rope  # Qwen-VL: 3D RoPE; others: 1D positions
    if mrope:
        hf.model.rope_deltas = None  # recomputed by this prefill, never left over from another batch
    extra = {}
    if not mrope:  # left padding: positions count valid tokens only, as in (right-padded) training
        extra["position_ids"] = (prompts.inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with backbone.inputs_embeds_hook(keep, prompts):
        out = hf.model(**backbone.model_inputs(prompts), past_key_values=cache, use_cache=True, return_dict=True,
                       **extra)
    hidden = out.last_hidden_state
    deltas = getattr(hf.model, "rope_deltas", None) if mrope else None  # [B, 1]
    return Prefill(cache=cache, hidden=hidden, mask=prompts.inputs["attention_mask"],
                   deltas=0 if deltas is None else deltas.to(hidden.device), mrope=mrope,
                   out=BackboneOutput(hidden=hidden, visual=prompts.visual, lm_head=hf.lm_head,
                                      inputs_embeds=seen.get("embeds")))
