"""The objective protocol: a small head plus a loss, keyed by name in the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from thinkspace.component import Component

if TYPE_CHECKING:
    from thinkspace.backbones.outputs import BackboneOutput
    from thinkspace.data.batch import Batch


class Objective(Component):
    """One training signal. Subclasses set ``terms`` and implement :meth:`loss`.

    The data-side hooks (``setup``, ``prepare``, ``targets``, ``grid_targets``,
    ``mask_labels``, ``collate``) are those of :class:`~thinkspace.component.Component`.
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

    @property
    def enabled(self) -> bool:
        return self.weight != 0.0

    def default_weights(self) -> dict[str, float]:
        """``{"{name}.{term}": weight * factor}`` for the mixer."""
        return {f"{self.name}.{term}": self.weight * factor for term, factor in self.terms.items()}

    def loss(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        """Scalar loss per term name in :attr:`terms`."""
        raise NotImplementedError
