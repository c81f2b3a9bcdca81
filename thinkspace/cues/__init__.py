"""Input-side geometric cues: geometry written into the model's input embeddings."""

from thinkspace.cues.base import Cue
from thinkspace.cues.camera_prior import CameraPrior

__all__ = ["Cue", "CameraPrior"]
