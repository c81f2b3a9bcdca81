"""The FLOPs estimate's parameter counts under FSDP2 on two CPU processes.

Run by ``tests/test_throughput.py`` as ``torchrun --standalone --nproc_per_node 2 sharded_counts_probe.py OUT``.
Every rank counts the tiny Qwen2.5-VL's parameters (``thinkspace.training.throughput.parameter_counts``)
unsharded, shards it as the FSDP2 strategy does (decoder layers and vision blocks as units, the rest in
the root), counts again, and saves ``OUT/rank{r}.pt``: both counts and the elements this rank holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from thinkspace.backbones import QwenVL
    from thinkspace.training.shard_groups import shard_groups
    from thinkspace.training.strategies import layer_classes
    from thinkspace.training.throughput import parameter_counts

    torch.manual_seed(0)
    backbone = QwenVL("tiny:qwen2_5_vl")
    for p in backbone.hf.model.visual.parameters():
        p.requires_grad_(False)  # frozen vision tower, as the paper configs
    whole = parameter_counts(backbone)
    every = sum(p.numel() for p in backbone.parameters())
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    shard_groups(backbone, layer_classes(backbone.hf), lambda module, name, unit: fully_shard(module, mesh=mesh))
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in backbone.parameters())
    torch.save({"whole": whole, "sharded": parameter_counts(backbone), "local": local,
                "every": every}, out / f"rank{dist.get_rank()}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
