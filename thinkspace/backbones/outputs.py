"""What the backbone hands the objectives (the batch types live in :mod:`thinkspace.data.batch`)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from thinkspace.data.batch import VisualTokens


@dataclass
class BackboneOutput:
    """The backbone's forward result.

    Attributes:
        hidden: ``[B, L, D]`` last-layer hidden states after the final norm.
        visual: where the visual tokens are (from the batch).
        lm_head: the output projection; use :meth:`logits_at` so logits are only
            computed where an objective needs them (a full ``[B, L, V]`` tensor is
            large for 150k-token vocabularies).
        inputs_embeds: ``[B, L, D]`` the decoder's input embeddings (visual features
            written in, after any embeds hook), when the backbone provides them.
    """

    hidden: Tensor
    visual: VisualTokens
    lm_head: nn.Module
    inputs_embeds: Tensor | None = None

    def logits_at(self, hidden: Tensor) -> Tensor:
        """Logits ``[..., V]`` of the given hidden states ``[..., D]``."""
        return self.lm_head(hidden)

    @property
    def logits(self) -> Tensor:
        """Full logits ``[B, L, V]`` (computed on demand)."""
        return self.lm_head(self.hidden)
