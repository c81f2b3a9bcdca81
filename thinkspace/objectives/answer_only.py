"""An objective as the ``thinkspace test`` and ``predict`` loaders see it: prompt edits only.

A question that is only answered needs the objective's prompt edits (a latent slot,
``<Pos><Ori>``) but none of its training targets: layout targets from depth, situation
targets, teacher features. Computing them at test time would demand geometry that a
benchmark does not ship (VSI-Bench's ARKitScenes and ScanNet++ videos have no depth) and
run teachers for nothing. Input cues are not wrapped: their inputs (camera tokens) are
part of the model's input at test time too.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from thinkspace.data.schema import SpatialSample


class AnswerOnly:
    """Wraps an objective for the collator: :meth:`prepare` is the objective's
    ``prepare_for_answer``; no targets (``batch.targets[name]`` is ``None``), labels unchanged."""

    def __init__(self, objective: Any) -> None:
        self.objective = objective

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        return self.objective.prepare_for_answer(sample)

    def mask_labels(self, ids: Tensor, labels: Tensor) -> Tensor:
        return labels

    def grid_targets(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> None:
        return None

    def collate(self, targets: list[Any]) -> None:
        return None
