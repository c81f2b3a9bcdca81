"""Text cue: the cameras' poses written into the prompt, as plain text."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from thinkspace.data.batch import Batch
from thinkspace.cues.base import Cue
from thinkspace.data.schema import SpatialSample


def camera_text(sample: SpatialSample, decimals: int = 1) -> str:
    """One line naming every frame's camera position (metres) and heading (degrees).

    Positions are camera centres in the world frame (+z up); the heading is the yaw of
    the viewing direction projected on the floor, about +z from +x, in ``(-180, 180]``.
    E.g. ``"Cameras (x, y, z in metres; heading in degrees): view 1 at (0.0, 0.0, 1.4)
    heading 0; view 2 at (1.2, -0.3, 1.4) heading 35."``

    Raises:
        ValueError: naming the sample, when it has no camera poses.
    """
    geometry = sample.geometry
    if geometry is None or geometry.cam_from_world is None:
        raise ValueError(f"sample {sample.id!r} ({sample.source}) has no camera poses; the camera text cue needs "
                         "geometry.cam_from_world")
    world_from_cam = torch.linalg.inv(geometry.cam_from_world.double())
    unit = "frame" if sample.is_video else "view"
    parts = []
    for i, pose in enumerate(world_from_cam):
        x, y, z = (round(float(v), decimals) + 0.0 for v in pose[:3, 3])  # + 0.0 turns -0.0 into 0.0
        forward = pose[:3, 2]  # the camera's +z (viewing) axis in the world frame
        heading = round(math.degrees(math.atan2(float(forward[1]), float(forward[0])))) + 0
        parts.append(f"{unit} {i + 1} at ({x:.{decimals}f}, {y:.{decimals}f}, {z:.{decimals}f}) heading {heading}")
    return "Cameras (x, y, z in metres; heading in degrees): " + "; ".join(parts) + "."


class CameraText(Cue):
    """Writes the ground-truth camera poses (:func:`camera_text`) into the prompt.

    The line goes before the question (``where="before"``) or after it (``"after"``),
    separated by a newline. The input embeddings are those of the edited text, so
    :meth:`edit_embeds` changes nothing; the cue lives entirely in the data workers.

    Args:
        decimals: decimals of the positions (metres).
        where: ``"before"`` or ``"after"`` the question.
    """

    def __init__(self, decimals: int = 1, where: str = "before") -> None:
        super().__init__()
        if where not in ("before", "after"):
            raise ValueError(f"CameraText.where must be 'before' or 'after', got {where!r}")
        if not 0 <= decimals <= 4:
            raise ValueError(f"CameraText.decimals must lie in [0, 4], got {decimals}")
        self.decimals = decimals
        self.where = where

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        line = camera_text(sample, self.decimals)
        prompt = f"{line}\n{sample.prompt}" if self.where == "before" else f"{sample.prompt}\n{line}"
        return replace(sample, prompt=prompt)

    def edit_embeds(self, embeds: Tensor, batch: Batch) -> Tensor:
        return embeds
