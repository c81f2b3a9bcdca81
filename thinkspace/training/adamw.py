"""``AdamW``: torch's AdamW with the step's implementation chosen by name (``implementation``).

torch's AdamW on CUDA defaults to the ``foreach`` step, which works on whole lists of tensors
at once: its intermediates (``sqrt(v) + eps`` for every parameter, ...) are as large as all the
parameters of a group together: 28 GiB at 7.6 B float32 trainable weights (14 GiB in bf16), on top
of the weights, gradients and moments (docs/scaling.md). The ``fused`` step does the same update in
one kernel per tensor list with no full-size intermediates, and is the fastest on CUDA. Clipping:
torch's fused AdamW declares that it can unscale float16 gradients inside its step
(``_step_supports_amp_scaling``), and Lightning's mixed-precision plugin then refuses
``gradient_clip_val`` ("does not allow for gradient clipping"), under ``bf16-mixed`` too, where no
scaler exists. This AdamW declares no such thing: a ``GradScaler`` (``16-mixed``) unscales the
gradients itself before Lightning clips them, and the fused step updates with the clipped gradients,
so the paper configs' ``gradient_clip_val: 1.0`` works with the fused step. The ``for_loop`` step
updates one parameter at a time (its intermediates one parameter large): the low-memory choice
where no fused kernel exists.

``implementation: auto`` (the default) is ``fused`` when every parameter is a floating tensor on
CUDA at construction (Lightning builds the optimizer after moving, and FSDP2 after sharding, the
model), else torch's own default (``for_loop`` on the CPU), so one config trains the same on a
CPU and fused on GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from thinkspace.utils.choices import check_choice

Implementation = Literal["auto", "fused", "foreach", "for_loop"]


class AdamW(torch.optim.AdamW):
    """torch's AdamW (same update, same state dict) with ``implementation`` naming its step.

    Args:
        params: parameters or parameter groups.
        lr, betas, eps, weight_decay, amsgrad: torch's AdamW arguments.
        implementation: ``auto`` (fused on CUDA, else torch's default), ``fused`` (one kernel, no
            full-size intermediates; CUDA and CPU), ``foreach`` (tensor lists: fast, intermediates as
            large as the group) or ``for_loop`` (one parameter at a time: the least memory, slowest).

    Attributes:
        implementation: the step used (``auto`` resolved), logged once on rank 0.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 implementation: Implementation = "auto") -> None:
        check_choice("model.optimizer.init_args.implementation", implementation, Implementation)
        groups = [{**g, "params": as_list(g["params"])} if isinstance(g, dict) else g for g in params]
        if implementation == "auto":
            implementation = "fused" if all_on_cuda(groups) else "default"
        flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for_loop": {"foreach": False}}
        super().__init__(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         **flags.get(implementation, {}))
        self.implementation = implementation if implementation != "default" else "torch's default"
        # the gradients are unscaled by the GradScaler, before clipping, never inside the step (see above)
        self._step_supports_amp_scaling = False
        rank_zero_info(f"AdamW: {self.implementation} step")


def as_list(params: Any) -> list[Any]:
    """A group's ``params`` (one tensor or an iterable of them) as a list (read twice: here and by torch)."""
    return [params] if isinstance(params, torch.Tensor) else list(params)


def all_on_cuda(groups: list[Any]) -> bool:
    """Whether every parameter of ``groups`` (tensors or ``{"params": [...]}`` groups) is a floating
    tensor on a CUDA device (what torch's fused kernel takes)."""
    tensors = [t for g in groups for t in (g["params"] if isinstance(g, dict) else [g])]
    return bool(tensors) and all(on_cuda(t) and torch.is_floating_point(t) for t in tensors)


def on_cuda(tensor: torch.Tensor) -> bool:
    """``tensor`` lives on a CUDA device (a function of its own so a test can fake a GPU)."""
    return tensor.device.type == "cuda"
