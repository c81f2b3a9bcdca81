"""When a decode must stop on every rank at once: sharded weights make each model step a collective.

Under FSDP2 (``fully_shard``: DTensor parameters), FSDP1 (flat parameters) or DeepSpeed ZeRO-3 every
forward of a sharded layer all-gathers its weights from the other ranks, so all ranks must run the
same number of model steps. Each rank decodes its own rows, which stop at different steps; a rank
leaving the loop on its own ``done.all()`` while another still steps leaves that one waiting in an
all-gather forever. With sharded weights the loop's stop test (every 8 tokens) therefore becomes one
decision of all ranks: each says whether all its rows are done (one ``int32`` all-reduced with ``MIN``
over the sharding's process group) and every rank stops only when every rank is done; until then a
finished rank keeps stepping with its rows masked, as finished rows already are. Unsharded (one
process, DDP: each rank holds whole weights) the test stays the rank's own ``done.all()``: no
collective and no host read beyond the one the loop always had.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

#: ``all_done(done [N] bool) -> bool``: whether decoding stops now (the loop's only host read)
AllDone = Callable[[Tensor], bool]


def rows_done(done: Tensor) -> bool:
    """This rank's rows all done (unsharded weights: the rank decides alone)."""
    return bool(done.all())


def sharded_weights(module: nn.Module) -> bool:
    """Whether ``module``'s forward gathers weights from other ranks: an FSDP2 DTensor parameter, an FSDP1
    flat parameter or a DeepSpeed ZeRO-3 partitioned one."""
    for param in module.parameters():
        if type(param).__name__ in ("DTensor", "FlatParameter") or hasattr(param, "ds_id"):
            return True
    return False


def sharding_group(module: nn.Module) -> dist.ProcessGroup | None:
    """The process group whose ranks take part in ``module``'s forwards: a one-dimensional FSDP2 mesh's
    group; otherwise every rank (``None``, the default group: a 2D mesh's replicas or FSDP1/ZeRO-3
    ranks all decode in validation, so agreeing over all of them is stricter but never wrong)."""
    for param in module.parameters():
        mesh = getattr(param, "device_mesh", None)
        if mesh is not None and mesh.ndim == 1:
            return mesh.get_group()
    return None


def every_rank_done(group: dist.ProcessGroup | None = None) -> AllDone:
    """A stop test that all ranks of ``group`` agree on: True once every rank's rows are all done.

    A collective: every rank must call it at the same steps (the loop calls it every 8 tokens)."""

    def all_done(done: Tensor) -> bool:
        flag = done.all().to(torch.int32)  # 0-d, on the rows' device (gloo: CPU, NCCL: the GPU)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=group)
        return bool(flag)

    return all_done


def stop_test(language_model: nn.Module) -> tuple[AllDone, bool]:
    """``(all_done, sharded)``: the loop's stop test for a decoder, collective when its weights are sharded
    over several processes, else :func:`rows_done`. Checked once per decode (one pass over the parameters)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 and sharded_weights(language_model):
        return every_rank_done(sharding_group(language_model)), True
    return rows_done, False
