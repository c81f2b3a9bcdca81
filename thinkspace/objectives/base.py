"""The objective protocol: a small head plus a loss, keyed by name in the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from thinkspace.backbones.base import VLMBackbone
    from thinkspace.backbones.outputs import BackboneOutput, Batch
    from thinkspace.data.schema import SpatialSample


class Objective(nn.Module):
    """One training signal. Subclasses set ``terms`` and implement :meth:`loss`.

    Life cycle: the module sets ``name`` (the key in ``model.objectives``) and calls
    :meth:`setup` once with the backbone (add tokens, size heads). In the data workers
    the collator calls :meth:`prepare` (edit the sample, e.g. insert a latent slot into
    the response) and :meth:`targets` on every sample and :meth:`collate` on the list.
    In the training step :meth:`loss` returns one scalar per term.

    Args:
        weight: multiplies every term of this objective in the mixer; 0 switches the
            objective off (its loss is not computed).
    """

    #: term names this objective returns from :meth:`loss`, with fixed relative factors.
    terms: dict[str, float] = {"loss": 1.0}

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)
        self.name = type(self).__name__.lower()

    @property
    def enabled(self) -> bool:
        return self.weight != 0.0

    def setup(self, backbone: VLMBackbone) -> None:
        """Add tokens to the backbone and size heads from it. Default: nothing."""

    def default_weights(self) -> dict[str, float]:
        """``{"{name}.{term}": weight * factor}`` for the mixer."""
        return {f"{self.name}.{term}": self.weight * factor for term, factor in self.terms.items()}

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        """Edit a sample before encoding (runs in data workers). Default: unchanged."""
        return sample

    def targets(self, sample: SpatialSample) -> Any:
        """Per-sample targets computed in the data workers. Default: none."""
        return None

    def grid_targets(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> Any:
        """Targets that depend on how the frames were cut into visual tokens.

        The collator calls this (it defaults to :meth:`targets`) with ``grids[f] =
        (rows, cols)``, the merged token grid of the sample's frame (or temporal group)
        ``f``; token ``(r, c)`` covers rows ``[r/rows, (r+1)/rows)`` and columns
        ``[c/cols, (c+1)/cols)`` of the frame as a fraction of its size.
        """
        return self.targets(sample)

    def mask_labels(self, input_ids: Tensor, labels: Tensor) -> Tensor:
        """Labels ``[B, L]`` after padding, with positions this objective hides from
        cross-entropy set to -100 (e.g. latent pads). Default: unchanged."""
        return labels

    def collate(self, targets: list[Any]) -> Any:
        """Batch the per-sample targets: tensors of one shape are stacked."""
        if all(t is None for t in targets):
            return None
        if all(isinstance(t, Tensor) for t in targets) and len({t.shape for t in targets}) == 1:
            return torch.stack(targets)
        return targets

    def loss(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        """Scalar loss per term name in :attr:`terms`."""
        raise NotImplementedError
