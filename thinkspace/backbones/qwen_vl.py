"""The Qwen-VL family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) through transformers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import torch
from torch import nn

from thinkspace.backbones.base import EmbedsHook, VLMBackbone
from thinkspace.backbones.lora import LoraSettings, apply_lora, unwrap
from thinkspace.backbones.outputs import IGNORE_INDEX, BackboneOutput, Batch
from thinkspace.backbones.paths import read_model_type, resolve_model_path
from thinkspace.data.collate import Collator, VisionLayout

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class QwenVL(VLMBackbone):
    """A Qwen-VL checkpoint: a local directory, a Hub id, or ``tiny:<family>``.

    ``tiny:qwen2_5_vl`` (or ``tiny:qwen2_vl``, ``tiny:qwen3_vl``) builds a tiny
    random-initialised model once into the local cache (see
    :mod:`thinkspace.backbones.tiny`) and then loads it through the same
    ``from_pretrained`` calls a real checkpoint takes.

    Args:
        path: model directory, Hub id, or ``tiny:<family>``.
        dtype: weight dtype to load (``auto``: as stored). Keep float32 weights with
            ``precision: bf16-mixed``; load bfloat16 to save memory with pure bf16.
        attn_implementation: ``sdpa`` (default), ``flash_attention_2`` or ``eager``.
        min_pixels: override the image processor's minimum pixels per image.
        max_pixels: override the image processor's maximum pixels per image (fewer
            pixels, fewer visual tokens).
        lora: wrap the language model's linear layers with LoRA adapters (peft).
    """

    families = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

    def __init__(
        self,
        path: str,
        dtype: Dtype = "auto",
        attn_implementation: str = "sdpa",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        lora: LoraSettings | None = None,
    ) -> None:
        super().__init__()
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.path = resolve_model_path(path)
        model_type = read_model_type(self.path)
        if model_type not in self.families:
            raise ValueError(
                f"{self.path}: model_type {model_type!r} is not a Qwen-VL family model; "
                f"QwenVL supports {list(self.families)}"
            )
        self.family = model_type
        pixel_kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        self.processor = AutoProcessor.from_pretrained(self.path, **pixel_kwargs)
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

    def layout(self) -> VisionLayout:
        config = self.hf.config
        return VisionLayout(
            image_token_id=int(config.image_token_id),
            video_token_id=int(config.video_token_id),
            spatial_merge=int(config.vision_config.spatial_merge_size),
            temporal_patch=int(config.vision_config.temporal_patch_size),
        )

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

    def collator(self, objectives: dict[str, Any] | None = None, max_length: int | None = None,
                 with_response: bool = True) -> Collator:
        return Collator(self.processor, self.layout(), objectives, max_length, with_response)

    def language_model(self) -> nn.Module:
        return self.hf.model.language_model

    def enable_gradient_checkpointing(self) -> None:
        model = self.hf
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

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
            out = self.hf.model(**batch.inputs, use_cache=False, return_dict=True)
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
            out = self.hf.generate(**prompts.inputs, **generation)
        new_tokens = out[:, prompts.inputs["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def prompt_batch(batch: Batch, pad_id: int) -> Batch:
    """The batch's prompts alone, left-padded for generation; visual positions shifted to match."""
    ids, types = batch.inputs["input_ids"], batch.inputs["mm_token_type_ids"]
    lengths = batch.prompt_lengths
    width = int(lengths.max())
    shift = width - lengths  # [B] left padding per sample
    new_ids = ids.new_full((len(lengths), width), pad_id)
    new_types = torch.zeros_like(new_ids, dtype=types.dtype)
    mask = torch.zeros_like(new_ids)
    for b, n in enumerate(lengths.tolist()):
        s = width - n
        new_ids[b, s:], new_types[b, s:], mask[b, s:] = ids[b, :n], types[b, :n], 1
    inputs = dict(batch.inputs, input_ids=new_ids, attention_mask=mask, mm_token_type_ids=new_types)
    visual = replace(batch.visual, position=batch.visual.position + shift[batch.visual.sample])
    return replace(batch, inputs=inputs, labels=torch.full_like(new_ids, IGNORE_INDEX),
                   prompt_lengths=torch.full_like(lengths, width), visual=visual)
