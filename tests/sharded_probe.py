"""For sharded multi-process tests: a callback recording each step's gradient norm before and after clipping."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


def total_norm(optimizer: torch.optim.Optimizer) -> float:
    """L2 norm of every gradient the optimizer holds, whole (DTensor shards gathered), as a float."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


class GradNorms(L.Callback):
    """Append ``"<norm before clipping> <norm at the optimizer step>"`` per step to ``{out_dir}/rank{rank}.txt``.

    Lightning runs the backward inside ``optimizer.step(closure)`` and clips after
    ``on_before_optimizer_step``; the clipped gradients are still there in the optimizer's step
    post-hook (they are zeroed at the next step's start). Every rank computes both (collectives
    under FSDP2).
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.before: float | None = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        file = self.out_dir / f"rank{trainer.global_rank}.txt"

        def at_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
            with open(file, "a") as f:
                f.write(f"{self.before} {total_norm(optimizer)}\n")

        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(at_step)

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer) -> None:
        self.before = total_norm(optimizer)
