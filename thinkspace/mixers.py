"""Loss mixers: turn the named loss terms of all objectives into one scalar.

Terms are named ``"{objective}.{term}"`` (e.g. ``"text.ce"``, ``"situation.orientation"``).
Every objective reports a default weight per term (its ``weight`` times any fixed
factor inside it, e.g. 3.5 on orientation); a mixer's own ``weights`` override those
per term. A per-term warm-up ramps a term's weight linearly from 0 after an optional
delay, which every mixer supports.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LossMixer(nn.Module):
    """Base class: per-term weights, delays and warm-ups; subclasses define the combination.

    Args:
        weights: per-term weight overriding the objective's default, e.g. ``{"layout.nll": 0.05}``.
        warmup_steps: per-term number of optimizer steps over which the weight ramps
            linearly from 0 to its full value (after the delay).
        delay_steps: per-term number of steps during which the term is off (weight 0).
    """

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        warmup_steps: dict[str, int] | None = None,
        delay_steps: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.weights = dict(weights or {})
        self.warmup_steps = dict(warmup_steps or {})
        self.delay_steps = dict(delay_steps or {})
        self.default_weights: dict[str, float] = {}

    def setup(self, default_weights: dict[str, float]) -> None:
        """Learn the term names and their default weights; called once before training.

        Raises:
            KeyError: a configured term name that no objective produces.
        """
        self.default_weights = dict(default_weights)
        for option in ("weights", "warmup_steps", "delay_steps"):
            unknown = sorted(set(getattr(self, option)) - set(default_weights))
            if unknown:
                raise KeyError(
                    f"mixer.{option} names unknown loss term(s) {unknown}; "
                    f"the objectives produce {sorted(default_weights)}"
                )

    def weight(self, name: str, step: int) -> float:
        """The effective weight of term ``name`` at optimizer step ``step``."""
        base = self.weights.get(name, self.default_weights.get(name, 1.0))
        delay = self.delay_steps.get(name, 0)
        if step < delay:
            return 0.0
        ramp = self.warmup_steps.get(name, 0)
        if ramp > 0:
            base *= min(1.0, (step - delay + 1) / ramp)
        return base

    def forward(self, terms: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Combine ``terms`` (scalars) at ``step``; return the total and extra values to log."""
        raise NotImplementedError


class WeightedSum(LossMixer):
    """``total = sum_i w_i(step) * L_i`` with fixed (or warmed-up) weights."""

    def forward(self, terms: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, Tensor]]:
        total = _zero_like(terms)
        logs: dict[str, Tensor] = {}
        for name, value in terms.items():
            w = self.weight(name, step)
            logs[f"weight/{name}"] = torch.tensor(w)
            if w != 0.0:
                total = total + w * value
        return total, logs


class UncertaintyWeighting(LossMixer):
    """Learned homoscedastic-uncertainty weighting (Kendall, Gal and Cipolla, 2018).

    Each term gets a learned log variance ``s_i`` and contributes
    ``w_i(step) * (0.5 * exp(-s_i) * L_i + 0.5 * s_i)``: the scheduled weight still
    applies, so warm-ups and a weight of 0 switch terms off as in ``WeightedSum``. The log variances are trained by
    the same optimizer as the model.

    Args:
        init_log_var: initial ``s_i`` for every term.
        learn: names of the terms that get a learned ``s_i``; default all.
    """

    def __init__(
        self,
        init_log_var: float = 0.0,
        learn: list[str] | None = None,
        weights: dict[str, float] | None = None,
        warmup_steps: dict[str, int] | None = None,
        delay_steps: dict[str, int] | None = None,
    ) -> None:
        super().__init__(weights, warmup_steps, delay_steps)
        self.init_log_var = init_log_var
        self.learn = learn
        self.log_vars = nn.ParameterDict()

    def setup(self, default_weights: dict[str, float]) -> None:
        super().setup(default_weights)
        names = self.learn if self.learn is not None else list(default_weights)
        unknown = sorted(set(names) - set(default_weights))
        if unknown:
            raise KeyError(f"mixer.learn names unknown loss term(s) {unknown}; known: {sorted(default_weights)}")
        for name in names:
            # ParameterDict keys may not contain "."
            self.log_vars[_key(name)] = nn.Parameter(torch.tensor(float(self.init_log_var)))

    def forward(self, terms: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, Tensor]]:
        total = _zero_like(terms)
        logs: dict[str, Tensor] = {}
        for name, value in terms.items():
            w = self.weight(name, step)
            if w == 0.0:
                continue
            key = _key(name)
            if key in self.log_vars:
                s = self.log_vars[key]
                total = total + w * (0.5 * torch.exp(-s) * value + 0.5 * s)
                logs[f"log_var/{name}"] = s.detach()
            else:
                total = total + w * value
        return total, logs


def _key(name: str) -> str:
    return name.replace(".", "__")


def _zero_like(terms: dict[str, Tensor]) -> Tensor:
    for value in terms.values():
        return value.new_zeros(())
    return torch.zeros(())


__all__ = ["LossMixer", "WeightedSum", "UncertaintyWeighting"]
