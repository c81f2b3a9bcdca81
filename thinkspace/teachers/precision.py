"""TF32 for a teacher's float32 matrix products on CUDA, switched on for one call and restored after.

On Ampere and newer GPUs TF32 runs float32 matmuls and convolutions on tensor cores with
a 10-bit mantissa (about 8x faster than IEEE float32 at VGGT's sizes); with ``dtype:
bfloat16`` autocast already runs most of VGGT in bf16, and TF32 covers the products autocast
keeps in float32. CPUs have no TF32: on any other device nothing changes, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def tf32_allowed(device: torch.device | str, enabled: bool = True) -> Iterator[bool]:
    """Allow TF32 in CUDA matmuls and cuDNN convolutions inside the block when ``enabled`` and
    ``device`` is CUDA; the previous settings come back after. Yields whether it switched them."""
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        yield False
        return
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision, conv.fp32_precision = "tf32", "tf32"
    try:
        yield True
    finally:
        matmul.fp32_precision, conv.fp32_precision = before
