"""What every transformers-backed family shares: loading, tokens, forward and generation.

A family (:class:`~thinkspace.backbones.qwen_vl.QwenVL`,
:class:`~thinkspace.backbones.llava_onevision.LlavaOneVision`) adds its supported
``model_type`` values, its capabilities, its visual-token layout, its collator class and
``tokens_per_frame``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from thinkspace.backbones.attention import check_attn_implementation
from thinkspace.backbones.base import EmbedsHook, VLMBackbone
from thinkspace.backbones.lora import (
    LoraSettings,
    apply_lora,
    resize_vocabulary,
    unwrap,
)
from thinkspace.backbones.merge import merged_copy
from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.backbones.paths import read_model_type, resolve_model_path
from thinkspace.data.batch import Batch
from thinkspace.data.collate import Collator

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class HFBackbone(VLMBackbone):
    """A ``...ForConditionalGeneration`` model with ``model.language_model`` and ``lm_head``.

    Attributes:
        families: the ``model_type`` values the subclass supports.
        collator_class: the family's :class:`~thinkspace.data.collate.Collator` subclass.
        family: the loaded model's ``model_type``.
    """

    families: tuple[str, ...] = ()
    collator_class: type[Collator] = Collator

    def _load(self, path: str, dtype: Dtype, attn_implementation: str, lora: LoraSettings | None,
              adapter_path: str | None = None, **processor_kwargs: Any) -> None:
        """Resolve ``path``, refuse other families, load processor and model (train mode), then
        add LoRA adapters: new ones (``lora``) or saved ones (``adapter_path``, a peft directory)."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        check_attn_implementation(attn_implementation, path)
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
        if lora is not None and adapter_path is not None:
            raise ValueError(f"{self.path}: give lora (new adapters) or adapter_path (saved ones), not both")
        if lora is not None:
            self.model = apply_lora(self.model, lora)
        elif adapter_path is not None:
            from peft import PeftModel

            if not (Path(adapter_path) / "adapter_config.json").is_file():
                raise FileNotFoundError(f"adapter_path {adapter_path}: no adapter_config.json; expected a peft "
                                        "adapter directory")
            self.model = PeftModel.from_pretrained(self.model, adapter_path, is_trainable=True)
        self.load_args: dict[str, Any] = {"attn_implementation": attn_implementation, **processor_kwargs}

    def save_pretrained(self, out_dir: str | Path, merge_lora: bool = True) -> dict[str, Any]:
        """Write a Hugging Face model directory (weights as safetensors, config, processor with
        the added tokens) that ``AutoModelForImageTextToText`` / ``AutoProcessor`` load as they are.

        LoRA adapters are merged into the base weights (``merge_lora``) or written as a peft
        adapter in ``out_dir/adapter`` beside the unmerged base weights. The live model is
        left untouched (the merge happens on a copy).

        Returns:
            ``init_args`` rebuilding this backbone from ``out_dir`` (``path`` ".", and
            ``adapter_path`` "adapter" for a kept adapter).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        args: dict[str, Any] = {"path": ".", **self.load_args}
        if self.model is self.hf:
            self.hf.save_pretrained(out)
        elif merge_lora:  # a LoRA'd lm_head tied to the embeddings is untied (backbones/merge.py)
            merged_copy(self.model).save_pretrained(out)
        else:
            copy.deepcopy(self.model).unload().save_pretrained(out)  # base weights without adapter layers
            self.model.save_pretrained(out / "adapter")
            args["adapter_path"] = "adapter"
        self.processor.save_pretrained(out)
        return args

    @property
    def hf(self) -> nn.Module:
        """The transformers model, LoRA layers included, without the peft wrapper."""
        return unwrap(self.model)

    @property
    def hidden_size(self) -> int:
        return int(self.hf.config.text_config.hidden_size)

    def add_tokens(self, tokens: list[str], exact_vocabulary: bool = False) -> list[int]:
        tokenizer = self.tokenizer
        new = [t for t in tokens if t not in tokenizer.get_vocab()]
        if new:
            tokenizer.add_tokens(new, special_tokens=True)  # in the order given: it decides the ids
        rows = self.hf.get_input_embeddings().weight.shape[0]
        # Qwen pads its vocabulary: new ids often fit in rows that already exist (kept unless exact)
        if len(tokenizer) > rows or (exact_vocabulary and len(tokenizer) != rows):
            resize_vocabulary(self.hf, len(tokenizer))
        return tokenizer.convert_tokens_to_ids(tokens)

    def language_model(self) -> nn.Module:
        return self.hf.model.language_model

    def enable_gradient_checkpointing(self) -> None:
        model = self.hf
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def collator(self, objectives: dict[str, Any] | None = None, max_length: int | None = None,
                 with_response: bool = True) -> Collator:
        return self.collator_class(self.processor, self.layout(), objectives, max_length, with_response,
                                   support=self.support())

    def forward(self, batch: Batch, inputs_embeds_hook: EmbedsHook | None = None) -> BackboneOutput:
        """Run the model on a collated batch.

        Returns hidden states ``[B, L, D]`` after the final norm; logits come from
        :meth:`BackboneOutput.logits_at` where an objective needs them.
        """
        seen: dict[str, torch.Tensor] = {}

        def hook(embeds: torch.Tensor, b: Batch) -> torch.Tensor:  # keeps a reference to the decoder input
            seen["embeds"] = inputs_embeds_hook(embeds, b) if inputs_embeds_hook is not None else embeds
            return seen["embeds"]

        with self.inputs_embeds_hook(hook, batch):
            out = self.hf.model(**self.model_inputs(batch), use_cache=False, return_dict=True)
        return BackboneOutput(hidden=out.last_hidden_state, visual=batch.visual, lm_head=self.hf.lm_head,
                              inputs_embeds=seen.get("embeds"))
