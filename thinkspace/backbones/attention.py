"""The attention kernels a backbone loads with (``attn_implementation``), checked before loading.

``sdpa`` (the default) is PyTorch's scaled-dot-product attention. Qwen2.5-VL's vision tower
attends window by window, one small SDPA call per window and image, thousands per image set;
``flash_attention_2`` runs them as one variable-length call. It needs the ``flash-attn``
package (CUDA GPUs, bfloat16 or float16 weights); without it the setting is an error that says
so before any weights are read, instead of transformers' message from deep inside loading.
"""

from __future__ import annotations

import importlib.util

FLASH_ATTENTION = "flash_attention_2"


def check_attn_implementation(value: str, where: str) -> None:
    """Refuse ``attn_implementation: flash_attention_2`` when ``flash_attn`` is not installed.

    Args:
        where: the backbone (its path) named in the error.

    Raises:
        ImportError: naming ``where``, the setting and what to install or use instead.
    """
    if value == FLASH_ATTENTION and importlib.util.find_spec("flash_attn") is None:
        raise ImportError(f"{where}: attn_implementation: {FLASH_ATTENTION} needs the flash-attn package, which is "
                          "not installed (pip install flash-attn on a CUDA machine; bfloat16 or float16 weights); "
                          "use attn_implementation: sdpa")
