"""Vision-language backbones behind one contract (:class:`VLMBackbone`).

Exports resolve lazily, so importing a submodule (``thinkspace.backbones.outputs``)
does not import every family and its transformers classes.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VLMBackbone": "thinkspace.backbones.base",
    "QwenVL": "thinkspace.backbones.qwen_vl",
    "LlavaOneVision": "thinkspace.backbones.llava_onevision",
    "ComposedVLM": "thinkspace.backbones.composed.backbone",
    "LoraSettings": "thinkspace.backbones.lora",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'thinkspace.backbones' has no attribute {name!r}")
