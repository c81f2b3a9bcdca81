"""What every transformers-backed family shares: loading, tokens, forward and generation.

A family (:class:`~thinkspace.backbones.qwen_vl.QwenVL`,
:class:`~thinkspace.backbones.llava_onevision.LlavaOneVision`) adds its supported
``model_type`` values, its visual-token layout and its collator.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from thinkspace.backbones.base import EmbedsHook, VLMBackbone
from thinkspace.backbones.lora import LoraSettings, apply_lora, unwrap
from thinkspace.backbones.outputs import BackboneOutput, Batch
from thinkspace.backbones.paths import read_model_type, resolve_model_path
from thinkspace.backbones.prompts import prompt_batch

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class HFBackbone(VLMBackbone):
    """A ``...ForConditionalGeneration`` model with ``model.language_model`` and ``lm_head``.

    Attributes:
        families: the ``model_type`` values the subclass supports.
        family_label: the family's name in error messages (``"Qwen-VL"``).
        path: the resolved model directory or Hub id.
        family: the loaded model's ``model_type``.
    """

    families: tuple[str, ...] = ()
    family_label: str = ""

    def _load(self, path: str, dtype: Dtype, attn_implementation: str, lora: LoraSettings | None,
              **processor_kwargs: Any) -> None:
        """Resolve ``path``, refuse other families, load processor and model (train mode)."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.path = resolve_model_path(path)
        model_type = read_model_type(self.path)
        if model_type not in self.families:
            raise ValueError(
                f"{self.path}: model_type {model_type!r} is not a {self.family_label} family model; "
                f"{type(self).__name__} supports {list(self.families)}"
            )
        self.family = model_type
        self.processor = AutoProcessor.from_pretrained(self.path, **processor_kwargs)
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForImageTextToText.from_pretrained(
            self.path, dtype=torch_dtype, attn_implementation=attn_implementation
        )
        self.model.train()  # from_pretrained returns eval mode; the LightningModule decides
        if lora is not None:
            self.model = apply_lora(self.model, lora)

    @property
    def hf(self) -> nn.Module:
        """The transformers model, LoRA layers included, without the peft wrapper."""
        return unwrap(self.model)

    @property
    def hidden_size(self) -> int:
        return int(self.hf.config.text_config.hidden_size)

    def add_tokens(self, tokens: list[str]) -> list[int]:
        tokenizer = self.tokenizer
        new = [t for t in tokens if t not in tokenizer.get_vocab()]
        if new:
            tokenizer.add_tokens(new, special_tokens=True)
            rows = self.hf.get_input_embeddings().weight.shape[0]
            # Qwen pads its vocabulary: new ids often fit in rows that already exist.
            if len(tokenizer) > rows:
                self.hf.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        return tokenizer.convert_tokens_to_ids(tokens)

    def language_model(self) -> nn.Module:
        return self.hf.model.language_model

    def enable_gradient_checkpointing(self) -> None:
        model = self.hf
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def model_inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The batch's inputs the transformers model takes (all of them by default)."""
        return batch.inputs

    def forward(self, batch: Batch, inputs_embeds_hook: EmbedsHook | None = None) -> BackboneOutput:
        """Run the model on a collated batch.

        Returns hidden states ``[B, L, D]`` after the final norm; logits come from
        :meth:`BackboneOutput.logits_at` where an objective needs them.
        """
        seen: dict[str, torch.Tensor] = {}

        def hook(embeds: torch.Tensor, b: Batch) -> torch.Tensor:  # keeps a reference to the decoder input
            seen["embeds"] = inputs_embeds_hook(embeds, b) if inputs_embeds_hook is not None else embeds
            return seen["embeds"]

        with self._embeds_hook(hook, batch):
            out = self.hf.model(**self.model_inputs(batch), use_cache=False, return_dict=True)
        return BackboneOutput(hidden=out.last_hidden_state, visual=batch.visual, lm_head=self.hf.lm_head,
                              inputs_embeds=seen.get("embeds"))

    @torch.no_grad()
    def generate(self, batch: Batch, inputs_embeds_hook: EmbedsHook | None = None, **generation: Any) -> list[str]:
        """Continue each sample's prompt (the response in ``batch`` is ignored).

        Args:
            inputs_embeds_hook: applied to the prefill, with the left-padded prompt batch.
            generation: ``transformers`` generation arguments (``max_new_tokens``,
                ``do_sample``, ``temperature``, ``top_p``, ...).
        """
        prompts = prompt_batch(batch, self.tokenizer.pad_token_id)
        generation.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        with self._embeds_hook(inputs_embeds_hook, prompts):
            out = self.hf.generate(**self.model_inputs(prompts), **generation)
        new_tokens = out[:, prompts.inputs["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
