"""Vision-language backbones behind one contract (:class:`VLMBackbone`)."""

from thinkspace.backbones.base import VLMBackbone
from thinkspace.backbones.lora import LoraSettings
from thinkspace.backbones.qwen_vl import QwenVL

__all__ = ["VLMBackbone", "QwenVL", "LoraSettings"]
