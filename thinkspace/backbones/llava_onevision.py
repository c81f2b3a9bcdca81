"""The LLaVA-OneVision family (SigLIP + Qwen2; LLaVA-OneVision, LLaVA-Video) through transformers.

Which placeholder tokens make up a frame's grid (anyres images, multi-image sets, pooled
video frames) is described in :mod:`thinkspace.data.collate_onevision`.
"""

from __future__ import annotations

from typing import Any

import torch

from thinkspace.backbones.hf_backbone import Dtype, HFBackbone
from thinkspace.backbones.lora import LoraSettings
from thinkspace.data.batch import Batch
from thinkspace.data.collate_onevision import OneVisionCollator, OneVisionLayout

#: Qwen-VL's multimodal RoPE input; the collator writes it, LLaVA-OneVision takes no such argument.
QWEN_ONLY_INPUTS = ("mm_token_type_ids",)


class LlavaOneVision(HFBackbone):
    """A LLaVA-OneVision checkpoint: a local directory, a Hub id, or ``tiny:llava_onevision``.

    Loc3R-VLM's base model, LLaVA-Video-7B, has this architecture (``model_type``
    ``llava_onevision`` in its transformers conversion). Video frames are every one its own
    frame (``frames_per_group`` 1); the model has no temporal position encoding, so
    timestamps do not reach it.

    Args:
        path: model directory, Hub id, or ``tiny:llava_onevision``.
        dtype: weight dtype to load (``auto``: as stored).
        attn_implementation: ``sdpa`` (default), ``flash_attention_2`` or ``eager``.
        lora: wrap the language model's linear layers with LoRA adapters (peft).
        adapter_path: a saved peft adapter directory to load instead.

    Raises:
        ValueError: the directory holds another family, or a checkpoint with
            ``vision_feature_select_strategy`` other than ``"full"`` (SigLIP has no CLS
            token; ``"default"`` would drop a patch token and break the token grids).
    """

    families = ("llava_onevision",)
    family_label = "LLaVA-OneVision"

    def __init__(
        self,
        path: str,
        dtype: Dtype = "auto",
        attn_implementation: str = "sdpa",
        lora: LoraSettings | None = None,
        adapter_path: str | None = None,
    ) -> None:
        super().__init__()
        self._load(path, dtype, attn_implementation, lora, adapter_path)
        strategy = self.hf.config.vision_feature_select_strategy
        if strategy != "full":
            raise ValueError(
                f"{self.path}: vision_feature_select_strategy {strategy!r} in config.json is not supported; "
                "LlavaOneVision expects 'full' (every SigLIP patch token, as the released checkpoints use)"
            )

    def layout(self) -> OneVisionLayout:
        config = self.hf.config
        return OneVisionLayout(
            image_token_id=int(config.image_token_id),
            video_token_id=int(config.video_token_id),
            patches_per_side=int(config.vision_config.image_size) // int(config.vision_config.patch_size),
        )

    def collator(self, objectives: dict[str, Any] | None = None, max_length: int | None = None,
                 with_response: bool = True) -> OneVisionCollator:
        return OneVisionCollator(self.processor, self.layout(), objectives, max_length, with_response)

    def model_inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {k: v for k, v in batch.inputs.items() if k not in QWEN_ONLY_INPUTS}
