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

import weakref
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

#: ``all_done(done) -> bool``: whether decoding stops now, given each row's done flag as read back once
#: by the loop (a list of ``N`` bools, already on the host)
AllDone = Callable[[list[bool]], bool]


def rows_done(done: list[bool]) -> bool:
    """This rank's rows all done (unsharded weights: the rank decides alone, no further read)."""
    return all(done)


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


def every_rank_done(group: dist.ProcessGroup | None = None, device: torch.device | str = "cpu") -> AllDone:
    """A stop test that all ranks of ``group`` agree on: True once every rank's rows are all done.

    A collective: every rank must call it at the same steps (the loop calls it every 8 tokens). The flag
    lives on ``device``, the one the backend communicates from (gloo: the CPU, NCCL: the rank's GPU)."""

    def all_done(done: list[bool]) -> bool:
        flag = torch.tensor(int(all(done)), dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=group)
        return bool(flag)

    return all_done


#: per module: ``(its first parameter, sharded, group, device)`` of the last pass over its parameters; a
#: new first parameter (``fully_shard`` swaps every parameter for a DTensor) means a new pass
_SHARDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sharded_over_ranks(module: nn.Module) -> tuple[bool, dist.ProcessGroup | None, torch.device | str]:
    """``(sharded, group, device)``: whether ``module``'s forwards are collectives (its weights sharded
    over several processes), over which group, and the device its flags live on. Looked up in one pass
    over the parameters, once per module (not at every decode or batch)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False, None, "cpu"
    first = next(module.parameters(), None)
    known = _SHARDING.get(module)
    if known is None or known[0] is not first:
        known = (first, sharded_weights(module), sharding_group(module), first.device if first is not None else "cpu")
        _SHARDING[module] = known
    return known[1:]


def stop_test(language_model: nn.Module) -> tuple[AllDone, bool]:
    """``(all_done, sharded)``: the loop's stop test for a decoder, collective when its weights are sharded
    over several processes (:func:`sharded_over_ranks`), else :func:`rows_done`."""
    sharded, group, device = sharded_over_ranks(language_model)
    return (every_rank_done(group, device), True) if sharded else (rows_done, False)


def any_rank_needs(needed: bool, module: nn.Module) -> bool:
    """Whether this rank decodes a batch with ``module``: where it needs the texts (``needed``), or, its
    weights sharded over ranks (every decoding step a collective), where any rank needs them (one
    all-reduce of a flag; all decode, or none). A collective then: every rank calls it for every batch."""
    sharded, group, device = sharded_over_ranks(module)
    if not sharded:
        return needed
    flag = torch.tensor(int(needed), dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group)
    return bool(flag)
