"""Which modules become FSDP2 (``fully_shard``) groups, so that no group mixes dtypes.

FSDP2 flattens each group's parameters for its all-gather and refuses a group whose
parameters differ in dtype ("FSDP expects uniform original parameter dtype"). A VLM mixes
them: a bf16 backbone (or its frozen bf16 vision tower) beside float32 heads, projector,
camera prior and LoRA adapters. :func:`shard_groups` shards

1. every module of a unit class (decoder layers, vision blocks): the memory-saving groups;
2. inside a unit, and then in the rest of the model, every module that directly owns
   parameters of another dtype than the group keeps (a head's ``Linear``, a LoRA
   ``lora_A``): its own group, all-gathered in its own forward. A group keeps the dtype of
   its tied weights (embeddings shared with the output head must stay together), else the
   dtype of most of its elements;
3. the root last: whatever is left (embeddings, tied output head, final norm, heads of the
   root's dtype) in one group.

Groups of step 2 are the modules that own the parameters (``nn.Linear``, ``nn.LayerNorm``,
...): FSDP2 all-gathers a group in its module's ``forward``, and these are the modules whose
``forward`` runs where their weights are used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def shard_groups(model: nn.Module, units: set[type[nn.Module]], shard: Callable[[nn.Module, str, bool], Any]) -> list[str]:
    """Call ``shard(module, name, is_unit)`` on every group of ``model``, innermost first, the root last.

    Args:
        model: the module to shard (the root group).
        units: module classes sharded as units whatever their size (``layer_classes``).
        shard: applies ``fully_shard`` to one module; ``is_unit`` tells a unit from the
            other groups (they may take another mixed-precision policy).

    Returns:
        The qualified names of the groups in the order sharded (``""`` is the root).

    Raises:
        ValueError: a module directly owns parameters of several dtypes (no group can hold
            them), or a parameter shared by modules would be split between groups.
    """
    done: set[int] = set()  # ids of parameters already in a group
    order: list[str] = []
    names = {id(m): n for n, m in model.named_modules()}
    owners = Counter(id(p) for m in model.modules() for p in m.parameters(recurse=False))  # 2: tied weights

    def group(module: nn.Module, is_unit: bool) -> None:
        split_minority(module)
        shard(module, names[id(module)], is_unit)
        done.update(id(p) for p in module.parameters())
        order.append(names[id(module)])

    def split_minority(module: nn.Module) -> None:
        left = [p for p in module.parameters() if id(p) not in done]
        keep = _group_dtype(left, owners)
        for owner in module.modules():
            own = [p for p in owner.parameters(recurse=False) if id(p) not in done]
            dtypes = {p.dtype for p in own}
            if len(dtypes) > 1:
                raise ValueError(f"FSDP2: module {names[id(owner)] or '<root>'} ({type(owner).__name__}) holds "
                                 f"parameters of dtypes {sorted(map(str, dtypes))} directly; a sharded group needs "
                                 "one dtype: give them one dtype (model dtype settings) or put them in submodules")
            if owner is not module and dtypes and dtypes != {keep}:
                shared = [n for n, p in owner.named_parameters(recurse=False) if owners[id(p)] > 1]
                if shared:
                    raise ValueError(f"FSDP2: {names[id(owner)]}.{shared[0]} ({next(iter(dtypes))}) is shared with "
                                     f"another module; shared parameters must have the dtype of the rest "
                                     f"({keep}) to stay in one group")
                shard(owner, names[id(owner)], False)
                done.update(id(p) for p in own)
                order.append(names[id(owner)])

    for module in reversed(list(model.modules())):  # bottom-up: a unit inside a unit first
        if type(module) in units and module is not model:
            group(module, True)
    group(model, False)
    return order


def _group_dtype(params: list[nn.Parameter], owners: Counter[int]) -> torch.dtype | None:
    """The dtype a group keeps: that of its shared (tied) parameters, which cannot leave it, else
    the dtype holding most elements (None without parameters)."""
    counts: Counter[torch.dtype] = Counter()
    for p in params:
        counts[p.dtype] += p.numel()
    shared = [p.dtype for p in params if owners[id(p)] > 1]
    return shared[0] if shared else counts.most_common(1)[0][0] if counts else None
