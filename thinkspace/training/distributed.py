"""Losses that mean the same thing in one process and in N.

Data-parallel training (DDP, FSDP, DeepSpeed) averages the ranks' gradients. When each
rank's loss is a mean over *its own* tokens, that average weights every rank equally, not
every token: a rank with 3 supervised tokens counts as much as one with 300, and the
result differs from one process on the same global batch. :func:`mean_over_ranks` makes
each rank's loss its share of the mean over *all* ranks' elements, so the averaged
gradient is exactly the single-process one.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Processes in the default group (1 without ``torch.distributed``)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_over_ranks(total: Tensor, count: Tensor | int) -> Tensor:
    """This rank's share of a mean over every rank's elements.

    Returns ``total * world_size / global_count``, where ``global_count`` is ``count``
    summed over ranks; after the gradient averaging of data parallelism the ranks'
    shares add up to ``sum(totals) / sum(counts)``. In one process this is
    ``total / count``. A zero global count gives ``total * 0`` (``total`` is then a sum
    of nothing).

    Every rank must call this the same number of times per step (it is a collective
    under ``torch.distributed``): call it unconditionally, also when ``count`` is 0.

    Args:
        total: scalar sum of this rank's per-element losses (with its graph).
        count: number of elements behind ``total`` on this rank.
    """
    count = torch.as_tensor(count, dtype=torch.float32, device=total.device).detach().clone()
    world = world_size()
    if world > 1:
        dist.all_reduce(count)  # a few bytes; no host sync
    return total * world / count.clamp(min=1.0)
