"""What objectives and input cues share: a module with a data side in the collator.

Life cycle: the model sets ``name`` (the component's key in the config) and calls
:meth:`setup` once with the backbone (add tokens, size heads). In the data workers the
collator calls :meth:`prepare` on every sample (edit it, e.g. insert tokens into the
prompt), then :meth:`grid_targets` (which defaults to :meth:`targets`) and
:meth:`collate` on the list; the result lands in ``batch.targets[name]``. After padding,
:meth:`mask_labels` may hide positions from the cross-entropy. The test and predict loaders
call :meth:`prepare_for_answer` on objectives instead and compute no objective targets
(:class:`~thinkspace.objectives.answer_only.AnswerOnly`); cues run as in training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from thinkspace.backbones.base import VLMBackbone
    from thinkspace.data.schema import SpatialSample


class Component(nn.Module):
    """Base of :class:`~thinkspace.objectives.base.Objective` and
    :class:`~thinkspace.cues.base.Cue`: the hooks the collator calls."""

    def __init__(self) -> None:
        super().__init__()
        self.name = type(self).__name__.lower()

    def setup(self, backbone: VLMBackbone) -> None:
        """Add tokens to the backbone and size heads from it. Default: nothing."""

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        """Edit a sample before encoding (runs in data workers). Default: unchanged."""
        return sample

    def prepare_for_answer(self, sample: SpatialSample) -> SpatialSample:
        """Edit a sample that is only answered, not trained on (``thinkspace test`` and ``predict``
        loaders). Default: :meth:`prepare`, the training prompt."""
        return self.prepare(sample)

    def targets(self, sample: SpatialSample) -> Any:
        """Per-sample tensors computed in the data workers. Default: none."""
        return None

    def grid_targets(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> Any:
        """Per-sample tensors that depend on how the frames were cut into visual tokens.

        The collator calls this (it defaults to :meth:`targets`) with ``grids[f] =
        (rows, cols)``, the merged token grid of the sample's frame (or temporal group)
        ``f``; token ``(r, c)`` covers rows ``[r/rows, (r+1)/rows)`` and columns
        ``[c/cols, (c+1)/cols)`` of the frame as a fraction of its size.
        """
        return self.targets(sample)

    def mask_labels(self, input_ids: Tensor, labels: Tensor) -> Tensor:
        """Labels ``[B, L]`` after padding, with positions this component hides from
        cross-entropy set to -100 (e.g. latent pads). Default: unchanged."""
        return labels

    def collate(self, targets: list[Any]) -> Any:
        """Batch the per-sample targets: tensors of one shape are stacked."""
        if all(t is None for t in targets):
            return None
        if all(isinstance(t, Tensor) for t in targets) and len({t.shape for t in targets}) == 1:
            return torch.stack(targets)
        return targets
