"""From a trained run to a usable model: ``thinkspace export``, :func:`load` and ``ask``.

``load`` and the classes resolve lazily, so ``import thinkspace`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load": "thinkspace.inference.load",
    "export": "thinkspace.inference.export",
    "SpatialModel": "thinkspace.inference.model",
    "Answer": "thinkspace.inference.model",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'thinkspace.inference' has no attribute {name!r}")
