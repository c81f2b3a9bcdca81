"""Vision-language backbones behind one contract (:class:`VLMBackbone`).

Exports resolve lazily, so importing a submodule (``thinkspace.backbones.outputs``)
does not import every family and its transformers classes. Every family in
:mod:`thinkspace.backbones.registry` exports its backbone class here
(``thinkspace.backbones.QwenVL``, ...), the ``class_path`` configs name it by.
"""

from __future__ import annotations

import importlib
from typing import Any

from thinkspace.backbones.registry import FAMILIES

_EXPORTS = {
    "VLMBackbone": "thinkspace.backbones.base",
    "LoraSettings": "thinkspace.backbones.lora",
    **{family.backbone: family.package for family in FAMILIES.values()},
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'thinkspace.backbones' has no attribute {name!r}")
