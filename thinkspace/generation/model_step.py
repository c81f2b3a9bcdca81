"""The model's part of one decode step: the next token's input embeddings in, the last hidden states out.

Two ways, picked once per decode (``decode_step``): the lean step
(:class:`~thinkspace.generation.decoder_step.LeanDecoder`: weights read once, static KV buffers) where
the decoder supports it, or the Hugging Face step (the decoder's own forward over the prefill's
``DynamicCache``, with the mask prepared once: :class:`~thinkspace.generation.decode_state.DecodeMask`).

``decode_step: auto`` (the default) is the lean step on the CPU, where it is measured (docs/benchmarks.md),
and the Hugging Face step on any other device (CUDA) until ``benchmarks/gpu_smoke.py`` has measured the lean
step on a GPU; the choice and its reason are logged once per process.

Sharded weights (FSDP2, FSDP1, ZeRO-3) always take the Hugging Face step: each layer's forward
all-gathers its weights for the token and frees them again, so a decode never holds more than one
layer unsharded (gathering the whole decoder once per decode for the lean step would put every
weight, unsharded, on every GPU for the decode's duration: the peak sharding exists to avoid).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor

from thinkspace.generation.decode_state import DecodeMask, sliding_window_layers
from thinkspace.generation.decoder_step import lean_decoder_or_reason
from thinkspace.generation.prefill import Prefill

#: ``step(embeds [N, 1, D], t, live [N]) -> last hidden states [N, D]`` (after the final norm); a step
#: with a ``keep(index)`` method can drop finished rows from the running batch (``index`` ``[n]``: the rows to keep)
ModelStep = Callable[[Tensor, int, Tensor], Tensor]
#: why a sharded decoder decodes with the Hugging Face step (``Decoded.decoder_step``)
SHARDED_REASON = ("sharded weights: each layer all-gathers its weights per token; "
                  "the ranks agree every 8 tokens on when to stop")
_sharded_logged = False
#: why ``decode_step: auto`` decodes with the Hugging Face step off the CPU
UNMEASURED_REASON = ("decode_step auto: the lean step is measured on CPUs only; transformers' step until "
                     "benchmarks/gpu_smoke.py measures it on this device (decode_step: lean chooses it)")
_auto_logged = False


class HuggingFaceStep:
    """The decoder's own forward of one position per row, continuing the prefill ``pre``.

    Args:
        language_model: the decoder stack.
        pre: the (repeated) prefill: its cache grows by one position per step.
        steps: tokens to decode at most.
        fast: hand the decoder the attention mask prepared for all steps at once; ``False`` lets it
            build the mask at every token, as a plain forward does (the same tokens). A decoder with
            sliding-window layers always builds its own (one prepared mask cannot serve both kinds).
    """

    drops_rows = True  # :meth:`keep` shrinks the batch

    def __init__(self, language_model: Any, pre: Prefill, steps: int, fast: bool = True) -> None:
        self.decoder, self.cache, self.mrope = language_model, pre.cache, pre.mrope
        self.rows = pre.mask.shape[0]
        self.attention = DecodeMask(pre.mask, steps, prepared=fast and not sliding_window_layers(language_model.config))
        # text positions continue from each sample's own valid length (left padding is not counted);
        # a finished row's positions run on too, harmlessly: its outputs are never read again
        self.first_position = (pre.mask.sum(1, keepdim=True) + pre.deltas).to(pre.hidden.device)  # [N, 1]

    def __call__(self, embeds: Tensor, t: int, live: Tensor) -> Tensor:
        position = self.first_position + t
        position = position.view(1, self.rows, 1).expand(3, self.rows, 1) if self.mrope else position
        out = self.decoder(inputs_embeds=embeds, attention_mask=self.attention.step(t, live), position_ids=position,
                           past_key_values=self.cache, use_cache=True, return_dict=True)
        return out.last_hidden_state[:, -1]

    def keep(self, index: Tensor) -> None:
        """Continue with the rows ``index`` ``[n]`` only: the cache's rows (new tensors: a kept prefix's
        copy is not touched), the mask's and the positions'."""
        self.cache.batch_select_indices(index)
        self.attention.keep(index)
        self.first_position = self.first_position[index]
        self.rows = index.shape[0]


class LeanStep:
    """The lean step (:class:`~thinkspace.generation.decoder_step.LeanDecoder`) as a :data:`ModelStep`.

    Args:
        drops_rows: whether :meth:`keep` may shrink the batch; not for a compiled step (``torch.compile``
            with fixed shapes would compile again for every new row count).
    """

    def __init__(self, lean: Any, drops_rows: bool = True) -> None:
        self.lean, self.drops_rows = lean, drops_rows

    def __call__(self, embeds: Tensor, t: int, live: Tensor) -> Tensor:
        return self.lean.step(embeds[:, 0], t, live)

    def keep(self, index: Tensor) -> None:
        self.lean.keep(index)


def model_step(language_model: Any, pre: Prefill, steps: int, decode_step: str = "auto", fast: bool = True,
               rows_stop: bool = True, sharded: bool = False) -> tuple[ModelStep, str]:
    """``(step, name)``: the lean step (``decode_step`` ``lean``, or ``compiled`` through ``torch.compile``)
    where the decoder supports it, else the Hugging Face step; ``name`` says which ran and why
    (``"lean"``, ``"hugging face: <reason>"``). Built once per decode: the weights do not change while
    it decodes. ``rows_stop``: rows may stop before the last step. ``sharded``: the decoder's weights are
    sharded over processes: the Hugging Face step, whatever ``decode_step`` asks (logged once). ``auto``:
    :func:`auto_step`."""
    reason = "hugging face: decode_step hugging_face"
    if decode_step == "auto" and not sharded:  # sharded weights: the Hugging Face step anyway, for that reason
        decode_step = auto_step(device_type(pre.hidden))
        if decode_step == "hugging_face":
            reason = f"hugging face: {UNMEASURED_REASON}"
    if sharded:
        global _sharded_logged
        reason = f"hugging face: {SHARDED_REASON}"
        if decode_step != "hugging_face" and not _sharded_logged:
            _sharded_logged = True
            rank_zero_info(f"decoding with the Hugging Face step: {SHARDED_REASON}")
    elif decode_step != "hugging_face":
        lean, reason = lean_decoder_or_reason(language_model, pre.cache, pre.mask, pre.positions(steps),
                                              compile=decode_step == "compiled", rows_stop=rows_stop)
        if lean is not None:
            return LeanStep(lean, drops_rows=decode_step != "compiled"), reason
    return HuggingFaceStep(language_model, pre, steps, fast), reason


def auto_step(device: str) -> str:
    """``decode_step: auto`` on a device of type ``device``: ``lean`` on the CPU, else ``hugging_face``
    (logged once per process, on rank 0, with :data:`UNMEASURED_REASON`)."""
    if device == "cpu":
        return "lean"
    global _auto_logged
    if not _auto_logged:
        _auto_logged = True
        rank_zero_info(f"decoding on {device} with the Hugging Face step: {UNMEASURED_REASON}")
    return "hugging_face"


def device_type(tensor: Tensor) -> str:
    """The type of the device ``tensor`` is on (``cpu``, ``cuda``; a function a test can fake)."""
    return tensor.device.type
