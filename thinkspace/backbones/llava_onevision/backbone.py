"""The LLaVA-OneVision family (SigLIP + Qwen2; LLaVA-OneVision, LLaVA-Video) through transformers.

Which placeholder tokens make up a frame's grid (anyres images, multi-image sets, pooled
video frames) is described in :mod:`thinkspace.backbones.llava_onevision.collator`.
"""

from __future__ import annotations

from thinkspace.backbones.capabilities import (
    FRAME_PREFIX_IN_VIDEO,
    LATENT_DECODING,
    VIDEO,
)
from thinkspace.backbones.hf_backbone import Dtype, HFBackbone
from thinkspace.backbones.llava_onevision.collator import (
    OneVisionCollator,
    OneVisionLayout,
)
from thinkspace.backbones.llava_onevision.row_newlines import (
    VideoNewline,
    install_row_newlines,
    video_newline_setting,
)
from thinkspace.backbones.lora import LoraSettings
from thinkspace.backbones.registry import FAMILIES


class LlavaOneVision(HFBackbone):
    """A LLaVA-OneVision checkpoint: a local directory, a Hub id, or ``tiny:llava_onevision``.

    Loc3R-VLM's base model, LLaVA-Video-7B, has this architecture (``model_type``
    ``llava_onevision`` in its transformers conversion). Video frames are every one its own
    frame (``frames_per_group`` 1); the model has no temporal position encoding, so
    timestamps reach it only as text, through the time instruction.

    Video input layout (:mod:`.row_newlines`, :mod:`.time_instruction`): transformers' conversion
    puts one newline after a video's frames and no time text; LLaVA-Video was trained with a
    newline after every pooled row (``mm_newline_position: grid``) and the time instruction
    (``add_time_instruction: true``) in its original config.json. transformers' converted
    config.json keeps neither key, so a converted LLaVA-Video needs both set here
    (configs/loc3r/joint.yaml does).

    Args:
        path: model directory, Hub id, or ``tiny:llava_onevision``.
        dtype: weight dtype to load (``auto``: as stored).
        attn_implementation: ``sdpa`` (default), ``flash_attention_2`` or ``eager``.
        lora: wrap the language model's linear layers with LoRA adapters (peft).
        adapter_path: a saved peft adapter directory to load instead.
        video_newline: ``per_video`` (transformers) or ``per_row`` (LLaVA-Video's original); None:
            the checkpoint's ``mm_newline_position`` (``grid``: per_row, ``one_token``:
            per_video), ``per_video`` when its config.json has none.
        time_instruction: open video questions with LLaVA-Video's time instruction; None: the
            checkpoint's ``add_time_instruction``, False when its config.json has none.

    Raises:
        ValueError: the directory holds another family, or a checkpoint with
            ``vision_feature_select_strategy`` other than ``"full"`` (SigLIP has no CLS
            token; ``"default"`` would drop a patch token and break the token grids).
    """

    families = FAMILIES["llava_onevision"].model_types
    family_label = "LLaVA-OneVision"
    # no FIXED_TOKEN_GRID: a frame's grid depends on the sample (one image: P x P; several: the
    # part of P x P its aspect ratio covers; video: pooled Q x Q)
    capabilities = frozenset({VIDEO, LATENT_DECODING, FRAME_PREFIX_IN_VIDEO})
    collator_class = OneVisionCollator

    # Spelled out per family, not shared: the typed signature is the config schema jsonargparse reads.
    def __init__(
        self,
        path: str,
        dtype: Dtype = "auto",
        attn_implementation: str = "sdpa",
        lora: LoraSettings | None = None,
        adapter_path: str | None = None,
        video_newline: VideoNewline | None = None,
        time_instruction: bool | None = None,
    ) -> None:
        super().__init__()
        self._load(path, dtype, attn_implementation, lora, adapter_path)
        config = self.hf.config
        strategy = config.vision_feature_select_strategy
        if strategy != "full":
            raise ValueError(
                f"{self.path}: vision_feature_select_strategy {strategy!r} in config.json is not supported; "
                "LlavaOneVision expects 'full' (every SigLIP patch token, as the released checkpoints use)"
            )
        self.video_newline = video_newline_setting(config, video_newline, str(self.path))
        self.time_instruction = bool(getattr(config, "add_time_instruction", False)
                                     if time_instruction is None else time_instruction)
        if self.video_newline == "per_row":
            install_row_newlines(self.hf.model)
        # a saved model (save_pretrained) is rebuilt with the same input layout
        self.load_args |= {"video_newline": self.video_newline, "time_instruction": self.time_instruction}

    def layout(self) -> OneVisionLayout:
        config = self.hf.config
        return OneVisionLayout(
            image_token_id=int(config.image_token_id),
            video_token_id=int(config.video_token_id),
            patches_per_side=int(config.vision_config.image_size) // int(config.vision_config.patch_size),
            video_newline=self.video_newline,
            time_instruction=self.time_instruction,
        )

    def tokens_per_frame(self, height: int, width: int) -> tuple[int, int]:
        """``(P, P)``: the base grid of a single image, whatever its size (the processor resizes the
        whole image onto one ``image_size`` crop). Several images per sample or video frames give
        other grids (see :mod:`.collator`), so the family has no fixed grid per frame size."""
        side = self.layout().patches_per_side
        return side, side
