"""Learning-rate schedules configured by name in YAML."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class WarmupSchedule(LRScheduler):
    """A per-step multiplier of the base rate: linear warm-up, then a decay to ``total_steps``.

    Warm-up is transformers' rule: factor ``step / warmup_steps``, 0 at the first step.
    Stepped once per optimizer step. ``total_steps=None`` lets the module
    (:class:`SpatialVLM`, :class:`SpatialGRPO`) fill in the trainer's estimate
    (``max_steps`` or epochs x batches) before training. Subclasses give ``decay``.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 0, total_steps: int | None = None,
                 last_epoch: int = -1) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return step / self.warmup_steps
        return self.decay(step)

    def decay(self, step: int) -> float:
        """The multiplier after warm-up (``step >= warmup_steps``)."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        f = self.factor(max(self.last_epoch, 0))
        return [base * f for base in self.base_lrs]


class WarmupLinear(WarmupSchedule):
    """Linear warm-up from 0, then linear decay to 0 at ``total_steps``.

    The rule of transformers' ``get_linear_schedule_with_warmup`` (the Trainer's default
    ``lr_scheduler_type="linear"``, which 3DThinker's stage 1 and stage 2 use): factor
    ``step / warmup_steps`` during warm-up (0 at the first step), then
    ``(total - step) / (total - warmup)``, never below 0.

    Args:
        optimizer: the wrapped optimizer.
        warmup_steps: steps of linear warm-up.
        total_steps: step at which the rate reaches 0; None: set by the module.
    """

    def decay(self, step: int) -> float:
        if not self.total_steps:
            return 1.0
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))


class WarmupCosine(WarmupSchedule):
    """Linear warm-up from 0, then cosine decay to ``min_lr_ratio`` of the base rate.

    The rule of transformers' ``get_cosine_with_min_lr_schedule_with_warmup`` (with
    ``min_lr_rate``; ``get_cosine_schedule_with_warmup`` at 0): factor ``step / warmup_steps``
    during warm-up (0 at the first step), then ``min + (1 - min) * (1 + cos(pi * progress)) / 2``;
    after ``total_steps`` it stays at ``min_lr_ratio`` (transformers' cosine rises again).

    Args:
        optimizer: the wrapped optimizer.
        warmup_steps: steps of linear warm-up.
        total_steps: steps until the end of the cosine; None: set by the module.
        min_lr_ratio: final learning rate as a fraction of the base rate.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, warmup_steps, total_steps, last_epoch)

    def decay(self, step: int) -> float:
        if not self.total_steps or self.total_steps <= self.warmup_steps:
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
