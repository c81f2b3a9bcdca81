"""The backbone families: one line each. Adding a family is a folder plus one line here.

A family is a package ``thinkspace.backbones.<name>`` that exports its backbone class and
has a ``tiny.py`` with ``build(tiny_name, out, **sizes)``. Nothing here imports a family:
lookups import it when asked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """One backbone family.

    Attributes:
        name: its folder, ``thinkspace/backbones/<name>/``.
        backbone: its backbone class, exported by the family's package.
        model_types: the ``config.json`` ``model_type`` values it loads.
        tiny: the ``tiny:<name>`` models its ``tiny.py`` builds.
    """

    name: str
    backbone: str
    model_types: tuple[str, ...]
    tiny: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        return f"thinkspace.backbones.{self.name}"

    @property
    def class_path(self) -> str:
        """The ``class_path`` a config names the backbone by."""
        return f"thinkspace.backbones.{self.backbone}"


_QWEN = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
_FAMILIES = (
    Family("qwen_vl", "QwenVL", model_types=_QWEN, tiny=_QWEN),
    Family("llava_onevision", "LlavaOneVision", model_types=("llava_onevision",), tiny=("llava_onevision",)),
    Family("composed", "ComposedVLM", model_types=("thinkspace_composed",), tiny=("composed",)),
    Family("gemma3", "Gemma3", model_types=("gemma3",), tiny=("gemma3",)),
)
#: family folder name -> :class:`Family`
FAMILIES: dict[str, Family] = {f.name: f for f in _FAMILIES}

TINY_PREFIX = "tiny:"


def tiny_names() -> tuple[str, ...]:
    """Every ``tiny:<name>`` the families build, in registry order."""
    return tuple(name for family in FAMILIES.values() for name in family.tiny)


def family_of_tiny(name: str) -> Family:
    """The family that builds ``tiny:<name>``.

    Raises:
        ValueError: no family builds it (naming the ones that exist).
    """
    for family in FAMILIES.values():
        if name in family.tiny:
            return family
    raise ValueError(f"unknown tiny model family {name!r}; supported families: {', '.join(tiny_names())}")


def family_of_model_type(model_type: str) -> Family | None:
    """The family that loads ``config.json``'s ``model_type`` (None: no family does)."""
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def model_types() -> list[str]:
    """Every ``model_type`` some family loads."""
    return sorted(t for f in FAMILIES.values() for t in f.model_types)


def backbone_class(family: str) -> Any:
    """The backbone class of the family folder ``family`` (imports it)."""
    entry = FAMILIES[family]
    return getattr(importlib.import_module(entry.package), entry.backbone)

