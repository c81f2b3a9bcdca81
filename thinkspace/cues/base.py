"""The cue protocol: geometry fed into the input rather than used as supervision."""

from __future__ import annotations

from torch import Tensor

from thinkspace.component import Component
from thinkspace.data.batch import Batch

__all__ = ["Cue"]


class Cue(Component):
    """Edits the decoder's input embeddings, after the visual features are written in.

    Data-side hooks as in :class:`~thinkspace.component.Component` (their output lands
    in ``batch.targets[name]``); :meth:`edit_embeds` runs inside the backbone's forward
    (and the prefill of generation) through the inputs-embeds hook.
    """

    def edit_embeds(self, embeds: Tensor, batch: Batch) -> Tensor:
        """``[B, L, D]`` embeddings in, edited embeddings out."""
        raise NotImplementedError
