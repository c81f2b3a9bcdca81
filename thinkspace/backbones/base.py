"""The backbone contract: what objectives, cues, modules, generation and GRPO call, and nothing else.

Callers outside ``thinkspace/backbones/`` use only the names declared here. A family (one
folder under ``thinkspace/backbones/``) implements them; transformers-backed families get most
of them from :class:`~thinkspace.backbones.hf_backbone.HFBackbone`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from thinkspace.backbones.capabilities import Support
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
        model: the model as trained (``...ForConditionalGeneration``, peft-wrapped with LoRA).
        processor: its processor (tokenizer + image and video processors).
        path: the resolved model directory or Hub id (error messages name it).
        family_label: the family's name in error messages (``"Qwen-VL"``).
        capabilities: the optional features it has (names from
            :mod:`thinkspace.backbones.capabilities`); :meth:`require` checks one.
    """

    model: nn.Module
    processor: Any
    path: str = ""
    family_label: str = ""
    capabilities: frozenset[str] = frozenset()

    @property
    def tokenizer(self) -> Any:
        """The processor's tokenizer."""
        return self.processor.tokenizer

    @property
    def hf(self) -> nn.Module:
        """The transformers model, LoRA layers included, without the peft wrapper: ``hf.model.language_model``
        (the decoder), ``hf.get_input_embeddings()``, ``hf.lm_head``, ``hf.config``, ``hf.state_dict()``."""
        raise NotImplementedError

    @property
    def hidden_size(self) -> int:
        """Width ``D`` of the language model's hidden states."""
        raise NotImplementedError

    @property
    def multimodal_rope(self) -> bool:
        """Whether text positions are 3D (Qwen-VL's multimodal RoPE: ``[3, B, L]`` position ids and
        per-sample ``hf.model.rope_deltas`` set by a prefill) rather than 1D ``[B, L]``."""
        return False

    # -- capabilities -----------------------------------------------------------------

    def support(self) -> Support:
        """What this backbone supports, as a small picklable object (collators carry it)."""
        return Support(self.family_label or type(self).__name__, str(self.path), frozenset(self.capabilities))

    def require(self, feature: str, by: str) -> None:
        """Raise ``ValueError`` naming the family, the path, ``feature`` and ``by`` (who needs it)
        unless the backbone has ``feature``. Call it in ``setup``."""
        self.support().require(feature, by)

    # -- token layout -----------------------------------------------------------------

    def layout(self) -> Any:
        """The family's token layout (placeholder ids, grid rules) its collator reads."""
        raise NotImplementedError

    def tokens_per_frame(self, height: int, width: int) -> tuple[int, int]:
        """``(rows, cols)`` of the visual-token grid one ``height x width`` px image becomes, by the
        family's processor rules (no image is processed)."""
        raise NotImplementedError

    def collator(self, objectives: dict[str, Any] | None = None, max_length: int | None = None,
                 with_response: bool = True) -> Collator:
        """A picklable callable turning ``list[SpatialSample]`` into a :class:`Batch` (prompts only
        when not ``with_response``; samples over ``max_length`` tokens are an error)."""
        raise NotImplementedError

    def model_inputs(self, batch: Batch) -> dict[str, Tensor]:
        """The batch's inputs the transformers model takes, as keyword arguments."""
        return batch.inputs

    # -- running ----------------------------------------------------------------------

    def add_tokens(self, tokens: list[str], exact_vocabulary: bool = False) -> list[int]:
        """Add special tokens (idempotent; new ones get ids in the order given), resize the embeddings
        when the tokenizer outgrows them; return their ids.

        ``exact_vocabulary``: resize the embeddings (and a tied LM head) to exactly the tokenizer's
        length, dropping a padded vocabulary's spare rows, as 3DThinker's stage 1 does
        (``model.resize_token_embeddings(len(tokenizer))``: Qwen2.5-VL's 151,936 rows become 151,668)."""
        raise NotImplementedError

    def language_model(self) -> nn.Module:
        """The decoder stack whose ``inputs_embeds`` the hook edits."""
        raise NotImplementedError

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in the backward pass (memory for time)."""
        raise NotImplementedError

    def forward(self, batch: Batch, inputs_embeds_hook: EmbedsHook | None = None) -> BackboneOutput:
        """Hidden states ``[B, L, D]`` of the batch (``inputs_embeds_hook`` edits the decoder's input)."""
        raise NotImplementedError

    @contextmanager
    def inputs_embeds_hook(self, hook: EmbedsHook | None, batch: Batch) -> Iterator[None]:
        """Apply ``hook`` to the decoder's ``inputs_embeds`` ``[B, L, D]`` of the first (full-sequence)
        call made inside this context: a training forward or a generation prefill."""
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
