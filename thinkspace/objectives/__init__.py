"""Training signals: each a small head plus a loss, keyed by name in ``model.objectives``."""

from thinkspace.objectives.base import Objective
from thinkspace.objectives.latent3d import LatentAlignment
from thinkspace.objectives.layout import LayoutReconstruction
from thinkspace.objectives.situation import Situation
from thinkspace.objectives.text import TextCrossEntropy

__all__ = ["Objective", "TextCrossEntropy", "LatentAlignment", "LayoutReconstruction", "Situation"]
