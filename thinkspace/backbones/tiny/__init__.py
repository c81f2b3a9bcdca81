"""Family-independent tiny-model machinery: the cache, build-once, the tiny tokenizer.

Each family's builders live in its own ``tiny.py`` (``thinkspace/backbones/<family>/tiny.py``).
"""

from thinkspace.backbones.tiny.build import BUILD_VERSION, TINY_FAMILIES, build_tiny, check_family, tiny_model_dir

__all__ = ["BUILD_VERSION", "TINY_FAMILIES", "build_tiny", "check_family", "tiny_model_dir"]
