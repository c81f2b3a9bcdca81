"""Modules that moved: importing an old path raises an error naming the new one.

A user's script or config may still name a module by its old path; rather than a bare
``ModuleNotFoundError`` it gets one line saying where the module went.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

#: old module path -> new module path
MOVED = {
    "thinkspace.backbones.latent_decoding": "thinkspace.generation.decode",
    "thinkspace.backbones.decode_state": "thinkspace.generation.decode_state",
    "thinkspace.backbones.prompts": "thinkspace.data.batch",
    "thinkspace.backbones.tiny_configs": "thinkspace.backbones.qwen_vl.tiny",
    "thinkspace.backbones.tiny_llava_onevision": "thinkspace.backbones.llava_onevision.tiny",
    "thinkspace.backbones.tiny_tokenizer": "thinkspace.backbones.tiny.tokenizer",
    "thinkspace.data.collate_onevision": "thinkspace.backbones.llava_onevision.collator",
    "thinkspace.data.collate_composed": "thinkspace.backbones.composed.collator",
    "thinkspace.eval.answers": "thinkspace.answers",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Refuses the old paths in :data:`MOVED` with an error naming the new one."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname in MOVED:
            raise ModuleNotFoundError(f"{fullname} moved to {MOVED[fullname]}; import that instead",
                                      name=fullname)
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
