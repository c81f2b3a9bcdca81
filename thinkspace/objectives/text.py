"""Next-token cross-entropy on the response."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from thinkspace.backbones.outputs import BackboneOutput

from thinkspace.data.batch import IGNORE_INDEX, Batch
from thinkspace.training.distributed import mean_over_ranks
from thinkspace.objectives.base import Objective


class TextCrossEntropy(Objective):
    """Cross-entropy of the response tokens, averaged over all supervised tokens of the batch
    (of the global batch across data-parallel ranks, see :mod:`thinkspace.training.distributed`).

    The collator masks the prompt and padding (label -100); other objectives may mask
    more (e.g. latent pads). Logits are computed only at supervised positions.

    Args:
        weight: weight of the term ``"{name}.ce"``.
        label_smoothing: as in ``torch.nn.functional.cross_entropy``.
    """

    terms = {"ce": 1.0}

    def __init__(self, weight: float = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__(weight)
        self.label_smoothing = label_smoothing

    def loss(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        labels = batch.labels[:, 1:]
        # the step's one host read here: how many positions are supervised decides the logits' shape
        rows, cols = (labels != IGNORE_INDEX).nonzero(as_tuple=True)
        count = rows.numel()
        if count == 0:  # e.g. prompts only: a zero that keeps the graph
            total = out.hidden.sum() * 0.0
        else:
            logits = out.logits_at(out.hidden[rows, cols]).float()
            total = F.cross_entropy(logits, labels[rows, cols], reduction="sum", label_smoothing=self.label_smoothing)
        return {"ce": mean_over_ranks(total, count)}
