"""The LLaVA-OneVision family (SigLIP + Qwen2; LLaVA-OneVision, LLaVA-Video): ``backbone``
(:class:`LlavaOneVision`), ``collator`` (its token layout), ``row_newlines`` and
``time_instruction`` (LLaVA-Video's own video layout), ``tiny`` (``tiny:llava_onevision``)."""

from thinkspace.backbones.llava_onevision.backbone import LlavaOneVision

__all__ = ["LlavaOneVision"]
