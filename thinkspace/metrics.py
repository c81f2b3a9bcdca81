"""Answer parsing and accuracy metrics reduced across processes by torchmetrics."""

from __future__ import annotations

import re

import torch
from torchmetrics import Metric

_LETTER = re.compile(r"\b([A-E])\b")


def parse_choice(text: str) -> str | None:
    """The first standalone option letter A-E in ``text`` (``"B. red cube"`` -> ``"B"``)."""
    match = _LETTER.search(text)
    return match.group(1) if match else None


class ChoiceAccuracy(Metric):
    """Share of predictions whose parsed option letter equals the gold letter, overall
    and per task; synchronised across processes."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, predictions: list[str], answers: list[str]) -> None:
        hits = [parse_choice(p) == str(a).strip().upper() for p, a in zip(predictions, answers)]
        self.correct += sum(hits)
        self.total += len(hits)

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1)
