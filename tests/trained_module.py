"""A module built from configs whose heads and adapters moved off their initial values, saved as a .ckpt:
what export and inference tests start from."""

from __future__ import annotations

from pathlib import Path

import torch

from thinkspace.inference.build import module_from_config


def trained_like(configs: list[Path], tmp_path: Path, name: str):
    """``(module in eval mode, ckpt)``: the module of the stacked ``configs``, its non-backbone parameters
    and LoRA B matrices moved by 0.05 x N(0, 1) (seed 1), saved as ``tmp_path/name.ckpt``."""
    module, _ = module_from_config(configs)
    torch.manual_seed(1)
    with torch.no_grad():
        for key, param in module.named_parameters():
            if "lora_B" in key or not key.startswith("backbone."):
                param.add_(0.05 * torch.randn_like(param))
    ckpt = tmp_path / f"{name}.ckpt"
    torch.save({"state_dict": module.state_dict(), "global_step": 3}, ckpt)
    return module.eval(), ckpt
