"""The per-token decode step as a handful of tensor operations (the lean step).

A Hugging Face forward of one position costs far more in per-module Python and kernel launches
than in arithmetic for small models (about 3 ms for 16 rows at hidden 128, 3 layers, on a CPU).
While a rollout decodes the weights do not change, so :class:`LeanDecoder` prepares once per
rollout what every token needs, and each token then runs about 25 tensor operations per layer:

* weights: LoRA folded in, q/k/v and gate/up fused (:mod:`thinkspace.generation.decoder_weights`,
  which also refuses, naming the reason, a decoder the step would not compute exactly), and on a
  CPU, for decoders too large for its cache, packed for oneDNN (:mod:`thinkspace.generation.packed_linear`);
* a static KV cache: one buffer ``[N, KV, Lp + T, hd]`` per layer and for keys and values, filled
  from the prefill's ``DynamicCache`` once and written in place at column ``Lp + t``;
* a static additive attention mask ``[N, 1, 1, Lp + T]`` (0 = attend, -inf = not): the prompt's
  padding mask, then one column per step, set when the step runs (-inf until then, so attention
  over the whole buffer sees only the tokens so far);
* rotary cos/sin of every step's positions, computed before the loop by the model's own rotary
  module from the positions the loop uses (``[3, N, T]`` for Qwen-VL's 3D RoPE, ``[N, T]``).

The step itself (:func:`decode_layers`) reads nothing back from the device and branches only on
the model's structure. By default step ``t`` attends over the first ``Lp + t + 1`` buffer
columns, the shapes of the Hugging Face step, whose numbers it then gives bit for bit when no
adapter is folded and no weight packed (same kernels on the same shapes; LoRA folding and
oneDNN's packed products round differently, within 1e-5). With ``fixed_shapes`` (on with
``compile=True``: ``torch.compile`` of the step) every step attends over the whole buffer,
masked beyond the current step: fixed shapes, as a compiled step or a CUDA graph needs, equal
to float rounding. Attention is ``scaled_dot_product_attention`` with the query heads of each
key/value head folded into the query axis (grouped-query attention without repeating keys), as
transformers' SDPA path does for one query token. Tested in float32 for every tiny family, LoRA
included (``tests/test_decoder_step.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thinkspace.generation.decoder_weights import DecoderWeights, LeanStepUnsupported, decoder_weights
from thinkspace.generation.packed_linear import linear, packed, packing_pays

logger = logging.getLogger(__name__)
_LOGGED: set[str] = set()  # fallback reasons already logged
#: with fixed shapes the KV buffers' length is rounded up to a multiple of this (masked beyond the last step)
LENGTH_BUCKET = 64


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """RMSNorm over the last axis as the Qwen families compute it (statistics in float32)."""
    if x.dtype == torch.float32:  # the same operations without the two casts (each a call per token)
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


def project(x: Tensor, parts: list[tuple[Tensor, Tensor | None]]) -> Tensor:
    """``x`` ``[N, D]`` through projections whose outputs concatenate (one stacked matrix, or several)."""
    if len(parts) == 1:
        return linear(x, *parts[0])
    return torch.cat([linear(x, weight, bias) for weight, bias in parts], dim=-1)


def signed_sin(sin: Tensor) -> Tensor:
    """``sin`` ``[..., hd]`` with its first half negated: ``x.roll(hd / 2, -1) * signed_sin(sin)`` is the
    rotary term ``rotate_half(x) * sin`` (second half negated, then the first) in one fewer operation, the
    same numbers bit for bit (``(-a) * b == a * (-b)`` in floating point)."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


class LeanDecoder:
    """Decodes ``N`` rows for up to ``T`` steps after a prefill, one token per :meth:`step`.

    Args:
        language_model: the decoder stack (``hf.model.language_model``); its weights must stay
            unchanged while this object is used.
        cache: the prefill's ``DynamicCache`` (``N`` rows, prompt length ``Lp``); copied, not changed.
        prompt_mask: ``[N, Lp]`` 1 for prompt tokens, 0 for left padding.
        positions: the text positions of the ``T`` steps, ``[3, N, T]`` (3D RoPE) or ``[N, T]``.
        compile: run the step through ``torch.compile``.
        fixed_shapes: attend over the whole buffer at every step (masked beyond the current step), so
            every step has the same shapes (what ``compile`` and a CUDA graph need; default: as
            ``compile``); otherwise over the positions so far, the Hugging Face step's shapes, which
            gives its numbers bit for bit where the weights need no folding (tested).
        fuse: stack q/k/v and gate/up (see :func:`~thinkspace.generation.decoder_weights.decoder_weights`;
            default: when the copies are small).
        rows_stop: rows may stop before the last step (``step``'s ``live`` then masks a finished row's
            tokens). ``False``: every row decodes every step, so without fixed shapes the steps' mask
            columns are opened once here and ``step`` ignores ``live`` (attention over the positions so
            far never reaches a later column).
        pack: pack the projections for oneDNN (:mod:`~thinkspace.generation.packed_linear`; float32 on
            a CPU only); default: where that was measured to pay and the copies are allowed, never
            with ``compile``.

    Raises:
        LeanStepUnsupported: the decoder or cache has something the lean step does not compute
            (the message names it); the caller keeps the Hugging Face step.
    """

    def __init__(self, language_model: nn.Module, cache: Any, prompt_mask: Tensor, positions: Tensor,
                 compile: bool = False, fixed_shapes: bool | None = None, fuse: bool | None = None,
                 rows_stop: bool = True, pack: bool | None = None) -> None:
        if compile and pack:
            raise ValueError("LeanDecoder: compile=True takes plain weights, not pack=True (oneDNN's packed "
                             "tensors are not traced)")
        if compile and fixed_shapes is False:
            raise ValueError("LeanDecoder: compile=True needs fixed_shapes (a compiled step with a new key "
                             "length at every token would recompile at every token)")
        self.fixed_shapes = compile if fixed_shapes is None else fixed_shapes
        self.weights: DecoderWeights = decoder_weights(language_model, fuse)
        w = self.weights
        layers = getattr(cache, "layers", None)
        if layers is None or len(layers) != len(w.layers) or any(getattr(c, "keys", None) is None for c in layers):
            raise LeanStepUnsupported(f"cache {type(cache).__name__}: expected a filled DynamicCache with "
                                      f"{len(w.layers)} layers")
        rows, kv_heads, prompt_length, head_dim = layers[0].keys.shape
        if (kv_heads, head_dim) != (w.kv_heads, w.head_dim) or tuple(prompt_mask.shape) != (rows, prompt_length):
            raise LeanStepUnsupported(f"cache keys {tuple(layers[0].keys.shape)} do not fit {w.kv_heads} key/value "
                                      f"heads x {w.head_dim} and the prompt mask {tuple(prompt_mask.shape)}")
        steps = positions.shape[-1]
        self.rows, self.prompt_length, self.steps = rows, prompt_length, steps
        self.packed = (packing_pays(w) and not compile) if pack is None else pack
        if self.packed:
            self.weights = packed(w, rows)
        length = prompt_length + steps
        if self.fixed_shapes:  # a few buffer lengths for all prompt lengths: a compiled step recompiles per shape
            length = -(-length // LENGTH_BUCKET) * LENGTH_BUCKET
        self.keys, self.values = [], []
        for layer in layers:
            for store, filled in ((self.keys, layer.keys), (self.values, layer.values)):
                buffer = filled.new_zeros(rows, kv_heads, length, head_dim)
                buffer[:, :, :prompt_length] = filled
                store.append(buffer)
        device = prompt_mask.device
        # additive mask (0 attend, -inf not): what SDPA turns a boolean mask into at every call
        dtype = layers[0].keys.dtype
        self.mask = torch.full((rows, 1, 1, length), float("-inf"), dtype=dtype, device=device)
        self.mask[:, 0, 0, :prompt_length].masked_fill_(prompt_mask.bool(), 0.0)
        self.masks_each_step = rows_stop or self.fixed_shapes
        if not self.masks_each_step:
            self.mask[:, 0, 0, prompt_length:prompt_length + steps] = 0.0
        self._blocked = torch.tensor(float("-inf"), dtype=dtype, device=device)
        probe = layers[0].keys.new_empty(0)  # the rotary module reads only its device and dtype
        with torch.no_grad():
            cos, sin = language_model.rotary_emb(probe, positions.to(device))  # [N, T, hd]
        self.cos = cos.transpose(0, 1)[:, :, None].contiguous()  # [T, N, 1, hd]: step t's rows are a view
        self.sin = signed_sin(sin.transpose(0, 1)[:, :, None]).contiguous()
        self.columns = torch.arange(prompt_length, prompt_length + steps, device=device)  # [T] each step's column
        self._run = compiled_decode_layers() if compile else decode_layers

    def step(self, embeds: Tensor, t: int, live: Tensor) -> Tensor:
        """Decode step ``t`` (0-based): ``embeds`` ``[N, D]`` input embeddings of the new tokens, ``live``
        ``[N]`` rows whose new token counts in the mask (a finished row's does not, as in the loop).
        Returns ``[N, D]`` last-layer hidden states after the final norm."""
        column = self.columns[t:t + 1]
        if self.masks_each_step:
            self.mask.index_copy_(3, column, torch.where(live.view(self.rows, 1, 1, 1).bool(), 0.0, self._blocked))
        if self.fixed_shapes:
            return self._run(embeds, self.cos[t], self.sin[t], column, self.mask, self.weights, self.keys, self.values)
        seen = self.prompt_length + t + 1  # attend over the positions so far only: the Hugging Face step's shapes
        return self._run(embeds, self.cos[t], self.sin[t], column, self.mask[..., :seen], self.weights,
                         [k[:, :, :seen] for k in self.keys], [v[:, :, :seen] for v in self.values])

    def keep(self, index: Tensor) -> None:
        """Continue with the rows ``index`` ``[n]`` only: their KV buffers, mask and rotary tables (copies of
        ``n`` rows: later steps cost ``n`` rows, not ``N``). Packed weights stay (packed for ``N`` rows, they
        multiply any number)."""
        self.keys = [k[index] for k in self.keys]
        self.values = [v[index] for v in self.values]
        self.mask = self.mask[index]
        self.cos, self.sin = self.cos[:, index], self.sin[:, index]
        self.rows = index.shape[0]


def lean_decoder_or_reason(language_model: nn.Module, cache: Any, prompt_mask: Tensor, positions: Tensor,
                           compile: bool = False, rows_stop: bool = True) -> tuple[LeanDecoder | None, str]:
    """``(LeanDecoder, "lean")``, or ``(None, reason)`` when the decoder has something the lean step does
    not compute (the reason is logged once per process; the caller keeps the Hugging Face step)."""
    try:
        return LeanDecoder(language_model, cache, prompt_mask, positions, compile=compile, rows_stop=rows_stop), "lean"
    except LeanStepUnsupported as err:
        reason = str(err)
        if reason not in _LOGGED:
            _LOGGED.add(reason)
            logger.info("decoding with the Hugging Face step: %s", reason)
        return None, f"hugging face: {reason}"


def decode_layers(x: Tensor, cos: Tensor, sin: Tensor, column: Tensor, mask: Tensor, weights: DecoderWeights,
                  keys: list[Tensor], values: list[Tensor]) -> Tensor:
    """The layers for one token: ``x`` ``[N, D]`` input embeddings, ``cos`` and ``sin`` ``[N, 1, hd]`` (``sin``
    with its first half negated, :func:`signed_sin`), ``column``
    ``[1]`` the buffer column to write, ``mask`` ``[N, 1, 1, L]`` additive, ``keys``/``values`` per layer
    ``[N, KV, L, hd]`` (written in place). Returns ``[N, D]`` after the final norm. Fixed shapes, no
    host reads, branches only on the model's structure (graph-capturable)."""
    w = weights
    rows, heads, kv_heads, head_dim = x.shape[0], w.heads, w.kv_heads, w.head_dim
    qk_width = (heads + kv_heads) * head_dim
    for layer, layer_keys, layer_values in zip(w.layers, keys, values):
        h = rms_norm(x, layer.input_norm, layer.input_eps)
        qkv = project(h, layer.qkv)  # [N, (H + 2 KV) hd]
        qk = qkv[:, :qk_width].view(rows, heads + kv_heads, head_dim)
        if layer.qk_norm is not None:
            qk = rms_norm(qk, layer.qk_norm, layer.qk_eps)
        qk = qk * cos + qk.roll(head_dim // 2, -1) * sin  # q and k rotated together (sin signed)
        layer_keys.index_copy_(2, column, qk[:, heads:, None])
        layer_values.index_copy_(2, column, qkv[:, qk_width:].view(rows, kv_heads, 1, head_dim))
        # the H / KV query heads sharing a key/value head become that head's query rows
        query = qk[:, :heads].reshape(rows, kv_heads, heads // kv_heads, head_dim)
        attended = F.scaled_dot_product_attention(query, layer_keys, layer_values, attn_mask=mask, scale=w.scaling)
        x = x + linear(attended.reshape(rows, heads * head_dim), layer.out, layer.out_bias)
        h = rms_norm(x, layer.post_norm, layer.post_eps)
        gate, up = project(h, layer.gate_up).chunk(2, dim=-1)
        x = x + linear(F.silu(gate) * up, layer.down, layer.down_bias)
    return rms_norm(x, w.norm, w.norm_eps)


_COMPILED: dict[str, Any] = {}


def compiled_decode_layers() -> Any:
    """:func:`decode_layers` through ``torch.compile``, compiled once per process (it then recompiles
    only for new shapes, dtypes or layer structures, not for each rollout)."""
    if "step" not in _COMPILED:
        _COMPILED["step"] = torch.compile(decode_layers, dynamic=False)
    return _COMPILED["step"]
