"""The Qwen-VL family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) through transformers."""

from __future__ import annotations

from thinkspace.backbones.capabilities import FIXED_TOKEN_GRID, LATENT_DECODING, VIDEO
from thinkspace.backbones.hf_backbone import Dtype, HFBackbone
from thinkspace.backbones.lora import LoraSettings
from thinkspace.backbones.qwen_vl.collator import QwenVLCollator, QwenVLLayout
from thinkspace.backbones.registry import FAMILIES


class QwenVL(HFBackbone):
    """A Qwen-VL checkpoint: a local directory, a Hub id, or ``tiny:<family>``.

    ``tiny:qwen2_5_vl`` (or ``tiny:qwen2_vl``, ``tiny:qwen3_vl``) builds a tiny
    random-initialised model once into the local cache (see
    :mod:`thinkspace.backbones.tiny`, builders in :mod:`.tiny`) and then loads it through the same
    ``from_pretrained`` calls a real checkpoint takes.

    Args:
        path: model directory, Hub id, or ``tiny:<family>``.
        dtype: weight dtype to load (``auto``: as stored). Fitting under ``bf16-mixed``, the
            trainable weights become float32 masters and frozen ones keep this dtype
            (:mod:`thinkspace.training.master_weights`); ``model.master_weights: false``
            trains them in this dtype (pure bf16).
        attn_implementation: ``sdpa`` (default), ``flash_attention_2`` or ``eager``.
        min_pixels: override the image processor's minimum pixels per image.
        max_pixels: override the image processor's maximum pixels per image (fewer
            pixels, fewer visual tokens).
        lora: wrap the language model's linear layers with LoRA adapters (peft).
        adapter_path: a saved peft adapter directory to load instead (e.g. ``thinkspace export
            --keep-adapter``'s ``adapter/``).
    """

    families = FAMILIES["qwen_vl"].model_types
    family_label = "Qwen-VL"
    # per-frame prefixes of a video stand before its block (the 3D RoPE needs it contiguous), not inside
    capabilities = frozenset({VIDEO, LATENT_DECODING, FIXED_TOKEN_GRID})
    collator_class = QwenVLCollator

    # Spelled out per family, not shared: the typed signature is the config schema jsonargparse reads.
    def __init__(
        self,
        path: str,
        dtype: Dtype = "auto",
        attn_implementation: str = "sdpa",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        lora: LoraSettings | None = None,
        adapter_path: str | None = None,
    ) -> None:
        super().__init__()
        pixel_kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        self._load(path, dtype, attn_implementation, lora, adapter_path, **pixel_kwargs)

    @property
    def multimodal_rope(self) -> bool:
        return True

    def layout(self) -> QwenVLLayout:
        config = self.hf.config
        return QwenVLLayout(
            image_token_id=int(config.image_token_id),
            video_token_id=int(config.video_token_id),
            spatial_merge=int(config.vision_config.spatial_merge_size),
            temporal_patch=int(config.vision_config.temporal_patch_size),
        )

    def tokens_per_frame(self, height: int, width: int) -> tuple[int, int]:
        """The image processor's rule: smart-resize to multiples of ``patch * merge`` px with the area
        within its ``[min_pixels, max_pixels]``, then ``merge x merge`` patches per token."""
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        images = self.processor.image_processor
        patch, merge = int(images.patch_size), int(images.merge_size)
        size = images.size
        h, w = smart_resize(height, width, factor=patch * merge, min_pixels=size["shortest_edge"],
                            max_pixels=size["longest_edge"])
        return h // (patch * merge), w // (patch * merge)
