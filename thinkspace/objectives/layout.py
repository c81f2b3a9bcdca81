"""Global layout reconstruction: every visual token predicts its bird's-eye position."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from thinkspace.backbones.outputs import BackboneOutput

from thinkspace.data.batch import Batch
from thinkspace.data.schema import SpatialSample
from thinkspace.data.token_geometry import token_geometry
from thinkspace.training.distributed import mean_over_ranks
from thinkspace.geometry import gaussian_nll
from thinkspace.heads.precision import into_head
from thinkspace.objectives.base import Objective


def bev_targets(sample: SpatialSample, grids: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
    """Bird's-eye (x, y) target of every visual token of a sample, and which are valid.

    Token ``(r, c)`` of frame group ``f`` covers the fraction ``[r/rows, (r+1)/rows) x
    [c/cols, (c+1)/cols)`` of each sampled frame in the group (1 frame for images, 2 for
    Qwen-VL video groups); its target is the mean world (x, y) of the valid depth pixels
    there, over all frames of the group. Tokens with no valid pixel are masked.

    Returns:
        ``([N, 2] metres, [N] bool)`` in the sample's visual-token order (frame, then
        row-major), ``N = sum(rows * cols)``.

    Raises:
        ValueError: the sample has no depth, or its depth has NaN or negative values
            (naming the sample).
    """
    points, _, valid = token_geometry(sample, grids, "layout targets need geometry.depth")
    return points[:, :2].contiguous(), valid


class LayoutReconstruction(Objective):
    """Each visual token's last-layer state predicts its world (x, y) with uncertainty.

    A linear head maps hidden ``[N, D]`` to ``(x, y, log_var_x, log_var_y)``; the loss is
    the diagonal Gaussian NLL averaged over tokens with a valid target (Loc3R-VLM's
    layout reconstruction). Samples without depth contribute no tokens when
    ``require_depth`` is False; otherwise they are an error.

    Args:
        weight: weight of the term ``"{name}.nll"`` (Loc3R-VLM: 0.05).
        require_depth: fail on samples without depth instead of skipping them.
    """

    terms = {"nll": 1.0}

    def __init__(self, weight: float = 1.0, require_depth: bool = True) -> None:
        super().__init__(weight)
        self.require_depth = require_depth

    def setup(self, backbone: Any) -> None:
        self.head = nn.Linear(backbone.hidden_size, 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def grid_targets(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        if not self.require_depth and (sample.geometry is None or sample.geometry.depth is None):
            n = sum(r * c for r, c in grids)
            return torch.zeros(n, 2), torch.zeros(n, dtype=torch.bool)
        return bev_targets(sample, grids)

    def collate(self, targets: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        return {"xy": torch.cat([t[0] for t in targets]), "valid": torch.cat([t[1] for t in targets])}

    def predict(self, out: BackboneOutput) -> tuple[Tensor, Tensor]:
        """Predicted ``(xy [N, 2], log_var [N, 2])`` for every visual token."""
        raw = self.head(into_head(out.visual.gather(out.hidden), self.head)).float()
        return raw[:, :2], raw[:, 2:]

    def loss(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        target = batch.targets[self.name]
        xy, log_var = self.predict(out)
        valid = target["valid"]
        # masked, not indexed: a boolean index waits for the device to count the tokens (a host sync)
        total = torch.where(valid, gaussian_nll(xy, log_var, target["xy"].float()), 0.0).sum()
        return {"nll": mean_over_ranks(total, valid.sum())}
