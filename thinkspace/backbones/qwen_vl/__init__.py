"""The Qwen-VL family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL): ``backbone`` (:class:`QwenVL`),
``collator`` (its token layout), ``tiny`` (``tiny:qwen2_vl``, ``tiny:qwen2_5_vl``, ``tiny:qwen3_vl``)."""

from thinkspace.backbones.qwen_vl.backbone import QwenVL

__all__ = ["QwenVL"]
