"""Accuracy metrics reduced across processes by torchmetrics."""

from __future__ import annotations

from typing import Literal

import torch
from torchmetrics import Metric

from thinkspace.answers import choice, gold_choice
from thinkspace.utils.choices import check_choice
from thinkspace.geometry import yaw_error_degrees

LocalizationKind = Literal["position", "yaw"]


class ChoiceAccuracy(Metric):
    """Share of predictions whose option letter, read by thinkspace's rule
    (:func:`~thinkspace.answers.choice`, as the GRPO answer reward reads it), equals the gold letter;
    synchronised across processes."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, predictions: list[str], answers: list[str]) -> None:
        hits = [choice(p) == gold_choice(a) for p, a in zip(predictions, answers)]
        self.correct += sum(hits)
        self.total += len(hits)

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1)


class LocalizationAccuracy(Metric):
    """Share of situations localized within a threshold, synchronised across processes.

    ``kind="position"``: distance in the xy plane (metres) strictly below ``threshold``.
    ``kind="yaw"``: absolute yaw error wrapped to [0, 180] degrees strictly below
    ``threshold`` degrees (SQA3D's Acc@0.5m, Acc@1.0m, Acc@15deg, Acc@30deg).
    """

    full_state_update = False

    def __init__(self, kind: LocalizationKind, threshold: float) -> None:
        super().__init__()
        check_choice("LocalizationAccuracy kind", kind, LocalizationKind)
        self.kind, self.threshold = kind, threshold
        self.add_state("hits", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, pred_xy: torch.Tensor, pred_yaw: torch.Tensor, xy: torch.Tensor, yaw: torch.Tensor) -> None:
        """``pred_xy, xy``: ``[B, 2]`` metres; ``pred_yaw, yaw``: ``[B]`` radians."""
        if self.kind == "position":
            error = torch.linalg.norm(pred_xy.float() - xy.float(), dim=-1)
        else:
            error = yaw_error_degrees(pred_yaw.float(), yaw.float())
        self.hits += (error < self.threshold).sum()
        self.total += error.numel()

    def compute(self) -> torch.Tensor:
        return self.hits / self.total.clamp(min=1)

