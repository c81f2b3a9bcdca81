"""Input-side geometric cues: geometry written into the model's input embeddings."""

from thinkspace.cues.base import Cue
from thinkspace.cues.camera_prior import CameraPrior
from thinkspace.cues.pointmap import PointMapCue
from thinkspace.cues.text_cue import CameraText

__all__ = ["Cue", "CameraPrior", "PointMapCue", "CameraText"]
