"""The weights the optimizer updates stay float32 under mixed precision (fp32 master weights).

With bfloat16 weights, AdamW's update ``lr * m / sqrt(v)`` is added to the weight in
bfloat16, which keeps 8 significant bits: a step smaller than half the spacing around the
weight rounds away. At lr 1e-5 that is every step of a norm weight near 1.0 (spacing
2^-7 = 0.0078) and of most weights drawn from N(0, 0.02). ``bf16-mixed`` only autocasts
the compute, so a backbone loaded with ``dtype: bfloat16`` trained that way, silently.

The rule (:func:`keep_fp32_masters`, run by the module's ``configure_model`` when fitting):
under ``bf16-mixed`` / ``16-mixed`` every *trainable* parameter below float32 becomes
float32; autocast (and FSDP2's ``param_dtype``) still computes in bfloat16. Frozen weights
keep the dtype they were loaded in (a frozen vision tower stays bf16: half the memory, and
it never steps). Pure bf16, as 3DThinker's released stage 1 trained (bf16 backbone weights
stepped by AdamW, float32 projector, bf16 autocast), is ``model.master_weights: false``.
DeepSpeed's bf16 mode keeps float32 masters of its own, so its fragments train as these do.
"""

from __future__ import annotations

import torch
from torch import nn

#: trainer precisions that compute in low precision around float32 weights (Lightning's names), and the
#: dtype each computes in (autocast's; FSDP2's ``param_dtype: auto``)
MIXED_COMPUTE_DTYPE = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def keep_fp32_masters(module: nn.Module) -> list[str]:
    """Cast every trainable floating parameter of ``module`` below float32 to float32, in place.

    Tied parameters are one tensor and stay tied. Call before the optimizer is built (its
    states take the parameters' dtype) and before sharding (FSDP2 shards what it finds).

    Returns:
        The names of the parameters cast (empty when all were float32 or frozen).
    """
    cast = []
    for name, param in module.named_parameters():
        if param.requires_grad and param.dtype in MIXED_COMPUTE_DTYPE.values():
            param.data = param.data.float()
            cast.append(name)
    return cast


def wants_masters(precision: object) -> bool:
    """Whether a run at Lightning ``precision`` (``"bf16-mixed"``, ``"bf16-true"``, ...) keeps masters."""
    return str(precision) in MIXED_COMPUTE_DTYPE
