"""The dtype boundary between a backbone and thinkspace's heads.

A paper config loads the backbone in bfloat16 (``dtype: bfloat16``) while every head
(latent projector, layout and situation heads, camera-prior and point-map MLPs) is built in
float32. In training, ``bf16-mixed`` autocast casts both sides of every matmul to bfloat16,
so the two meet without a cast; at inference (``thinkspace.load``, ``ask``) there is no
autocast and a bfloat16 hidden state would meet a float32 weight ("expected m1 and m2 to
have the same dtype"). So a head takes its input in its own dtype and hands its output to
the backbone in the backbone's: at inference the heads compute in float32 on the bfloat16
hidden states. Under autocast nothing changes: bfloat16 -> float32 is exact and autocast
casts the value back to bfloat16 before the head's first matmul (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def head_dtype(head: nn.Module) -> torch.dtype:
    """The dtype ``head`` computes in: that of its first floating parameter (float32 if it has none)."""
    return next((p.dtype for p in head.parameters() if p.is_floating_point()), torch.float32)


def into_head(x: Tensor, head: nn.Module) -> Tensor:
    """``x`` (e.g. hidden states ``[..., D]`` of a bfloat16 backbone) in ``head``'s dtype."""
    return x.to(head_dtype(head))
