"""Monocular video walks: a smooth camera path along the room's free band by the walls.

The camera moves on a superellipse ``|x/a|^4 + |y/b|^4 = 1`` that keeps 0.5 m from the
walls (objects keep 1 m, see :func:`~thinkspace.synth.scene.generate_scene`), at a
constant eye height above every object's top, covering 60 to 100 percent of a loop in
either direction. It keeps looking at a point near the middle of the objects, so the
whole room passes by. Positions, headings and pitch all vary smoothly with time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thinkspace.synth.cameras import intrinsics, look_at
from thinkspace.synth.scene import Scene

FOV_DEG = 70.0


@dataclass
class Walk:
    """Cameras of one video.

    Attributes:
        cams: ``[T, 4, 4]`` camera-from-room transforms (OpenCV axes).
        K: ``[3, 3]`` intrinsics (pixels).
        timestamps: ``[T]`` seconds.
        size: image width = height (pixels).
    """

    cams: np.ndarray
    K: np.ndarray
    timestamps: np.ndarray
    size: int


def superellipse(phi: np.ndarray, a: float, b: float, power: float = 4.0) -> np.ndarray:
    """``[..., 2]`` points of ``|x/a|^p + |y/b|^p = 1`` at parameter angles ``phi`` (rad)."""
    c, s = np.cos(phi), np.sin(phi)
    return np.stack([a * np.sign(c) * np.abs(c) ** (2 / power), b * np.sign(s) * np.abs(s) ** (2 / power)], axis=-1)


def make_walk(scene: Scene, rng: np.random.Generator, num_frames: int, size: int, fps: float = 4.0) -> Walk:
    """A smooth walk of ``num_frames`` frames at ``fps`` through ``scene``."""
    if num_frames < 2:
        raise ValueError(f"a walk needs at least 2 frames, got num_frames={num_frames}")
    a, b = scene.half - 0.5
    start = rng.uniform(-np.pi, np.pi)
    span = rng.uniform(1.2 * np.pi, 2.0 * np.pi) * (1 if rng.random() < 0.5 else -1)
    phi = start + span * np.linspace(0.0, 1.0, num_frames)
    xy = superellipse(phi, a, b)
    top = max(o.centre[2] + o.size[2] / 2 for o in scene.objects)
    height = max(rng.uniform(1.3, 1.6), top + 0.4)
    focus = np.mean([o.xy for o in scene.objects], axis=0) * 0.5
    cams = np.stack([look_at(np.array([x, y, height]), np.array([focus[0], focus[1], 0.2])) for x, y in xy])
    return Walk(cams, intrinsics(size, size, FOV_DEG), np.arange(num_frames, dtype=np.float64) / fps, size)
