"""The backbone contract every VLM family implements."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from thinkspace.backbones.outputs import BackboneOutput

from thinkspace.data.batch import Batch

if TYPE_CHECKING:
    from thinkspace.data.collate import Collator

#: ``hook(inputs_embeds [B, L, D], batch) -> inputs_embeds``, applied after the visual
#: features have been written into the embeddings and before the first decoder layer.
EmbedsHook = Callable[[Tensor, Batch], Tensor]


class VLMBackbone(nn.Module):
    """A vision-language model seen the way objectives need it.

    Attributes:
        model: the Hugging Face model (``...ForConditionalGeneration``).
        processor: its processor (tokenizer + image and video processors).
        tokenizer: the processor's tokenizer.
        hidden_size: width ``D`` of the language model's hidden states.
    """

    model: nn.Module
    processor: Any

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def hidden_size(self) -> int:
        raise NotImplementedError

    def add_tokens(self, tokens: list[str]) -> list[int]:
        """Add special tokens (idempotent), resize the embeddings; return their ids."""
        raise NotImplementedError

    def collator(self, objectives: dict[str, Any], max_length: int | None = None) -> Collator:
        """A picklable callable turning ``list[SpatialSample]`` into a :class:`Batch`."""
        raise NotImplementedError

    def language_model(self) -> nn.Module:
        """The decoder stack whose ``inputs_embeds`` the hook edits."""
        raise NotImplementedError

    def forward(self, batch: Batch, inputs_embeds_hook: EmbedsHook | None = None) -> BackboneOutput:
        raise NotImplementedError

    @contextmanager
    def _embeds_hook(self, hook: EmbedsHook | None, batch: Batch) -> Iterator[None]:
        """Apply ``hook`` to the decoder's ``inputs_embeds`` for the duration of a call."""
        if hook is None:
            yield
            return

        calls = 0

        def pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            nonlocal calls
            # Only the full-sequence pass: training, or the prefill of generation (the
            # later decoding steps see one new token each).
            if calls == 0 and kwargs.get("inputs_embeds") is not None:
                kwargs["inputs_embeds"] = hook(kwargs["inputs_embeds"], batch)
            calls += 1
            return args, kwargs

        handle = self.language_model().register_forward_pre_hook(pre_hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def save_pretrained(self, out_dir: str | Path, merge_lora: bool = True) -> dict[str, Any]:
        """Write the backbone's own files (weights, config, processor with the added tokens) into
        ``out_dir`` and return the JSON-able ``init_args`` that rebuild it from there.

        Every returned init arg whose key ends in ``path`` is relative to ``out_dir`` (the
        loader joins them). ``merge_lora``: fold LoRA adapters into the base weights (else
        keep them as a peft adapter beside the base weights).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot be exported (no save_pretrained)")

    @torch.no_grad()
    def generate(self, batch: Batch, **generation: Any) -> list[str]:
        """Greedy or sampled continuations of each sample's prompt, decoded to text."""
        raise NotImplementedError
