"""The composed VLM's transformers config: timm encoder, pooling, projector, causal LM."""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

MODEL_TYPE = "thinkspace_composed"
IMAGE_TOKEN = "<image>"


@strict
class ComposedConfig(PreTrainedConfig):
    """A LLaVA-style composition: timm image encoder -> pooling -> MLP projector -> causal LM.

    Attributes:
        text_config: the causal language model's config (any ``AutoModelForCausalLM`` type).
        encoder: ``timm.create_model`` name (e.g. ``vit_small_patch14_dinov2``).
        encoder_kwargs: extra ``timm.create_model`` keyword arguments (``img_size``, ``depth``, ...).
        encoder_dim: ``C``, width of the encoder's patch features.
        image_size: ``(H, W)`` pixels every frame is resized to (the whole frame, no crop).
        patch_grid: ``(h, w)`` encoder patch grid of one frame, before pooling.
        pool: average-pooling stride over the patch grid (1: none); a frame gives
            ``ceil(h / pool) x ceil(w / pool)`` visual tokens.
        projector_depth: linear layers of the projector (GELU between; LLaVA-1.5 uses 2).
        image_token_id: id of the ``<image>`` placeholder, one per visual token.
    """

    model_type = MODEL_TYPE
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2")}

    text_config: dict | PreTrainedConfig | None = None
    encoder: str = "vit_tiny_patch16_224"
    encoder_kwargs: dict | None = None
    encoder_dim: int = 192
    image_size: list | tuple = (224, 224)
    patch_grid: list | tuple = (14, 14)
    pool: int = 1
    projector_depth: int = 2
    image_token_id: int = 0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))
        if self.pool < 1 or self.projector_depth < 1:
            raise ValueError(f"composed config: pool ({self.pool}) and projector_depth ({self.projector_depth}) "
                             "must be at least 1")

    @property
    def token_grid(self) -> tuple[int, int]:
        """``(rows, cols)`` visual tokens of one frame after pooling."""
        h, w = self.patch_grid
        return -(-int(h) // self.pool), -(-int(w) // self.pool)
