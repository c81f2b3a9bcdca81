"""Which trainable parameters weight decay applies to (parameter groups for the optimizer)."""

from __future__ import annotations

import re
from typing import Any

from torch import nn


def decay_groups(module: nn.Module, no_decay: list[str] | None) -> list[Any]:
    """The trainable parameters of ``module``, split for the optimizer.

    ``no_decay``: regular expressions searched in each lower-cased parameter name; a match puts
    the parameter in a group with ``weight_decay: 0``. ``None`` or empty: one plain list, every
    parameter decayed. The Hugging Face Trainer's rule (which 3DThinker's stage 1 runs through
    ``SFTTrainer``) is ``["bias", "layernorm", "rmsnorm"]`` plus parameters of ``nn.LayerNorm``
    modules, which are also exempted here.

    Raises:
        ValueError: no pattern matches any trainable parameter (a typo would silently decay all);
            single unmatched patterns are allowed, as the rule is generic across model families.
    """
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not no_decay:
        return [p for _, p in named]
    layer_norms = {f"{m}.{n}" if m else n for m, sub in module.named_modules() if isinstance(sub, nn.LayerNorm)
                   for n, _ in sub.named_parameters(recurse=False)}
    patterns = [(p, re.compile(p)) for p in no_decay]
    used, decay, exempt = set(), [], []
    for name, param in named:
        hits = [p for p, regex in patterns if regex.search(name.lower())]
        used.update(hits)
        (exempt if hits or name in layer_norms else decay).append(param)
    if not used:
        raise ValueError(f"model.no_weight_decay: none of {list(no_decay)} matches a trainable parameter")
    return [{"params": decay}, {"params": exempt, "weight_decay": 0.0}]
