"""A synthetic episode's question as a :class:`~thinkspace.data.schema.SpatialSample`.

The sample is in its own world frame: origin at the first camera's centre, +x along its
heading, +z up (:func:`thinkspace.synth.cameras.world_from_room`); the situation's yaw is
turned into that frame and wrapped to ``[-pi, pi)``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from thinkspace.data.schema import VIDEO_DURATION, Geometry, Situation, SpatialSample
from thinkspace.geometry import wrap_angle
from thinkspace.synth.cameras import heading_of, world_from_room
from thinkspace.synth.episodes import Episode
from thinkspace.synth.question import Question


def to_sample(episode: Episode, question: Question, source: str = "synthetic") -> SpatialSample:
    """The ``SpatialSample`` of one question, geometry and situation in the world frame."""
    world = world_from_room(episode.cams[0])
    cam_from_world = episode.cams @ np.linalg.inv(world)
    s = len(episode.frames)
    geometry = Geometry(
        intrinsics=torch.as_tensor(np.broadcast_to(episode.K, (s, 3, 3)).copy(), dtype=torch.float32),
        cam_from_world=torch.as_tensor(cam_from_world, dtype=torch.float32),
        depth=torch.as_tensor(np.stack([f.depth for f in episode.frames])),
    )
    situation = None
    if question.situation is not None:
        x, y = question.situation["position"]
        p = world @ np.array([x, y, 0.0, 1.0])
        yaw = float(wrap_angle(question.situation["yaw"] - heading_of(episode.cams[0])))
        situation = Situation(position=(float(p[0]), float(p[1])), yaw=yaw, text=question.situation["text"])
    if episode.is_video:
        frames: list[Image.Image] | np.ndarray = np.stack([f.rgb for f in episode.frames])
        timestamps = torch.as_tensor(episode.timestamps, dtype=torch.float32)
    else:
        frames, timestamps = [Image.fromarray(f.rgb) for f in episode.frames], None
    return SpatialSample(
        id=question.id,
        source=source,
        task=question.task,
        frames=frames,
        prompt=question.prompt(),
        response=question.response(),
        answer=question.answer,
        answer_type=question.answer_type,
        timestamps=timestamps,
        geometry=geometry,
        situation=situation,
        meta={
            "scene": episode.scene.name,
            "setting": episode.setting,
            "options": list(question.options),
            "facts": dict(question.facts),
            "world_from_room": world.tolist(),
            **({VIDEO_DURATION: episode.duration} if episode.duration is not None else {}),
        },
    )
