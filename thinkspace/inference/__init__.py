"""From a trained run to a usable model: ``thinkspace export``, :func:`load` and ``ask``.

``load`` and the classes resolve lazily, so ``import thinkspace`` stays light.
"""

from __future__ import annotations

from thinkspace.utils.lazy_exports import lazy_exports

_EXPORTS = {
    "load": "thinkspace.inference.load",
    "export": "thinkspace.inference.export",
    "SpatialModel": "thinkspace.inference.model",
    "Answer": "thinkspace.inference.model",
}

__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
