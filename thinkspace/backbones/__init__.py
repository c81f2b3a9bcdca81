"""Vision-language backbones behind one contract (:class:`VLMBackbone`).

Exports resolve lazily, so importing a submodule (``thinkspace.backbones.outputs``)
does not import every family and its transformers classes. Every family in
:mod:`thinkspace.backbones.registry` exports its backbone class here
(``thinkspace.backbones.QwenVL``, ...), the ``class_path`` configs name it by.
"""

from __future__ import annotations

from thinkspace.backbones.registry import FAMILIES
from thinkspace.utils.lazy_exports import lazy_exports

_EXPORTS = {
    "VLMBackbone": "thinkspace.backbones.base",
    "LoraSettings": "thinkspace.backbones.lora",
    **{family.backbone: family.package for family in FAMILIES.values()},
}

__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
