"""Package exports imported on first use (PEP 562), so importing a package stays light.

``thinkspace.backbones.QwenVL`` imports the Qwen-VL family (and its transformers classes) only
when asked; importing ``thinkspace.backbones.outputs`` imports none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: each name in ``exports`` from its module
    (``name -> dotted module``), imported on first access.

    Raises (from the returned function):
        AttributeError: a name that is not exported, naming the package.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
