"""The objective protocol: a small head plus a loss, keyed by name in the config, and the
optional hooks an objective may own (metrics, decoding, locating the agent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor

from thinkspace.component import Component

if TYPE_CHECKING:
    from thinkspace.backbones.outputs import BackboneOutput
    from thinkspace.data.batch import Batch

#: hooks of which a model uses one owner at most (two owners would be ambiguous)
Hook = Literal["generate", "locate"]


class Objective(Component):
    """One training signal. Subclasses set ``terms`` and implement :meth:`loss`.

    The data-side hooks (``setup``, ``prepare``, ``targets``, ``grid_targets``,
    ``mask_labels``, ``collate``) are those of :class:`~thinkspace.component.Component`.
    In the training step :meth:`loss` returns one scalar per term.

    Optional hooks, each with a default that does nothing: :meth:`evaluate` (validation
    metrics), :meth:`generate` (an objective that owns decoding, e.g. latent steps) and
    :meth:`locate` (the agent's situation). An objective owns a hook when its class overrides
    it (:meth:`owns`); a model has one owner of ``generate`` and of ``locate`` at most
    (:func:`hook_owner`).

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

    def validate(self, out: BackboneOutput, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The validation step's ``(loss terms, metrics)`` of one batch: :meth:`loss` and
        :meth:`evaluate`. Override to share work between the two (computed once)."""
        return self.loss(out, batch), self.evaluate(out, batch)

    # -- optional hooks ------------------------------------------------------------------

    def evaluate(self, out: BackboneOutput, batch: Batch) -> dict[str, Any]:
        """Validation metrics by name (scalar tensors or torchmetrics, logged as
        ``val/{name}.{key}``). Default: none."""
        return {}

    def generate(self, backbone: Any, batch: Batch, inputs_embeds_hook: Any = None,
                 **generation: Any) -> list[str] | None:
        """Continuations of the batch's prompts when this objective decides how to decode (e.g. latent
        steps); ``generation`` as for :func:`~thinkspace.generation.decode.decode`. An objective that owns
        this hook also has ``decode`` (same arguments, the whole :class:`~thinkspace.generation.decoded.Decoded`),
        which the modules call. Default: ``None`` (the module decodes without a slot)."""
        return None

    def locate(self, out: BackboneOutput, batch: Batch) -> list[tuple[float, float, float]] | None:
        """Per sample the predicted world ``(x, y, yaw)`` (metres, radians of the facing
        direction) from the backbone output on the prompts. Default: ``None`` (no situation)."""
        return None

    def locates(self, batch: Batch) -> list[bool]:
        """Per sample, whether :meth:`locate` has a situation to predict for it (the module skips its
        forward for a batch of none). Default: every sample."""
        return [True] * len(batch.ids)

    @classmethod
    def owns(cls, hook: str) -> bool:
        """Whether this class overrides the optional hook ``hook`` (``evaluate``, ``generate``,
        ``locate``)."""
        return getattr(cls, hook) is not getattr(Objective, hook)


def hook_owner(objectives: Mapping[str, Objective], hook: Hook) -> Objective | None:
    """The one objective that owns ``hook``, or ``None``.

    ``locate`` counts enabled objectives only (a switched-off head is not trained);
    ``generate`` counts every objective, as its prompt edits (e.g. the latent slot) apply
    whatever the weight.

    Raises:
        ValueError: two objectives own the hook, naming both (which one decides is ambiguous).
    """
    owners = [(name, o) for name, o in objectives.items() if o.owns(hook) and (hook == "generate" or o.enabled)]
    if len(owners) > 1:
        names = ", ".join(f"{name!r} ({type(o).__name__})" for name, o in owners)
        what = "decoding (generate)" if hook == "generate" else "the situation (locate)"
        raise ValueError(f"model.objectives: {names} each own {what}; keep one of them")
    return owners[0][1] if owners else None
