"""``NoisyGeometryTeacher``: another teacher's features, computed from geometry with the
errors of an estimator (VGGT-shaped noise), so cues can be given "as estimated".

An estimator that never sees the answer: the wrapped teacher encodes the sample's depth
and cameras after they are perturbed the way a feed-forward reconstruction model errs,
with the sizes chosen to match what VGGT reports on real scenes (docs/ablations.md says
which numbers and why). The noise of a sample is seeded by ``(seed, sample id)`` alone,
so the same sample gets the same estimate in every epoch, worker and run, as a
deterministic network's output would.

Noise model, per sample of S views:

* depth: multiplied by ``exp(n)``, ``n`` a smooth field per view (Gaussian on a 4 x 4 grid,
  bilinearly upsampled, rescaled so every pixel's standard deviation is
  ``depth_rel_error * sqrt(pi / 2)``), so the mean absolute relative error ``|d' - d| / d``
  is about ``depth_rel_error`` (errors of an estimator are smooth, not per-pixel noise);
* cameras: view 1 is the reference, as in VGGT (its pose is the world frame's, exact);
  every other camera is turned about a random axis through its centre by an angle of
  mean ``rotation_deg`` degrees (half-normal), and its centre moved in a random direction
  by a mean of ``translation_rel`` times its distance from the first camera;
* intrinsics are kept (the synthetic cameras share one known field of view).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from thinkspace.data.schema import Geometry, SpatialSample
from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures

HALF_NORMAL_MEAN = math.sqrt(2 / math.pi)  # mean of |N(0, 1)|


class NoisyGeometryTeacher(GeometryTeacher):
    """Wraps ``teacher`` (which must read ground truth, like the oracle) and feeds it perturbed geometry.

    Args:
        teacher: the teacher whose features are returned (e.g. ``OracleGeometryTeacher``).
        depth_rel_error: mean absolute relative depth error (0.05 = 5%).
        rotation_deg: mean rotation error of each non-reference camera (degrees).
        translation_rel: mean error of each non-reference camera centre, as a fraction of
            its distance from the first camera.
        seed: with the sample id, the only source of the noise.
    """

    def __init__(self, teacher: GeometryTeacher, depth_rel_error: float = 0.05, rotation_deg: float = 3.5,
                 translation_rel: float = 0.06, seed: int = 0) -> None:
        for key, value in (("depth_rel_error", depth_rel_error), ("rotation_deg", rotation_deg),
                           ("translation_rel", translation_rel)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"NoisyGeometryTeacher.{key} must be a finite number >= 0, got {value}")
        if not getattr(teacher, "runs_in_workers", True):
            raise ValueError(f"NoisyGeometryTeacher: {type(teacher).__name__} does not run in the data workers; "
                             "wrap a teacher that encodes geometry (e.g. OracleGeometryTeacher)")
        self.teacher = teacher
        self.depth_rel_error = float(depth_rel_error)
        self.rotation_deg = float(rotation_deg)
        self.translation_rel = float(translation_rel)
        self.seed = int(seed)
        self.channels = teacher.channels
        self.num_register = teacher.num_register
        self.runs_in_workers = True

    def grid(self, height: int, width: int) -> tuple[int, int]:
        return self.teacher.grid(height, width)

    def signature(self) -> dict[str, Any]:
        return {**self.teacher.signature(), "noise": {"depth_rel_error": self.depth_rel_error,
                                                      "rotation_deg": self.rotation_deg,
                                                      "translation_rel": self.translation_rel, "seed": self.seed}}

    def encode(self, sample: SpatialSample) -> TeacherFeatures:
        return self.teacher.encode(self.perturb(sample))

    def point_cloud(self, features: TeacherFeatures, sample: SpatialSample):
        return self.teacher.point_cloud(features, sample)

    def perturb(self, sample: SpatialSample) -> SpatialSample:
        """The sample with estimated geometry in place of the true one (same shapes and frames)."""
        geometry = sample.geometry
        if geometry is None:
            raise ValueError(f"sample {sample.id!r} ({sample.source}): NoisyGeometryTeacher needs geometry to perturb")
        rng = np.random.default_rng([self.seed, zlib.crc32(str(sample.id).encode())])
        cam_from_world = perturb_cameras(geometry.cam_from_world, rng, self.rotation_deg, self.translation_rel)
        depth = None if geometry.depth is None else perturb_depth(geometry.depth, rng, self.depth_rel_error)
        return replace(sample, geometry=Geometry(geometry.intrinsics, cam_from_world, depth))


def perturb_depth(depth: torch.Tensor, rng: np.random.Generator, rel_error: float) -> torch.Tensor:
    """``depth [S, H, W]`` (metres, 0 invalid) times ``exp`` of a smooth field; 0 stays 0."""
    s, h, w = depth.shape
    sigma = rel_error / HALF_NORMAL_MEAN
    coarse = torch.as_tensor(rng.normal(0.0, sigma, size=(s, 1, 4, 4)), dtype=torch.float32)
    field = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)[:, 0]
    # interpolation shrinks the spread between grid points: rescale so every pixel's is sigma
    basis = F.interpolate(torch.eye(16).reshape(16, 1, 4, 4), size=(h, w), mode="bilinear", align_corners=True)
    field = field / basis.square().sum(0)[0].sqrt()
    return depth * torch.exp(field).to(depth.dtype)


def perturb_cameras(cam_from_world: torch.Tensor, rng: np.random.Generator, rotation_deg: float,
                    translation_rel: float) -> torch.Tensor:
    """``[S, 4, 4]`` camera-from-world with every camera but the first turned and moved (see the module doc)."""
    poses = cam_from_world.double().numpy().copy()
    first_centre = -poses[0, :3, :3].T @ poses[0, :3, 3]
    for k in range(1, len(poses)):
        rot, t = poses[k, :3, :3], poses[k, :3, 3]
        centre = -rot.T @ t
        angle = math.radians(rotation_deg) / HALF_NORMAL_MEAN * abs(rng.normal())
        turn = _axis_angle(_unit(rng.normal(size=3)), angle)
        shift = translation_rel * np.linalg.norm(centre - first_centre) / HALF_NORMAL_MEAN * abs(rng.normal())
        centre = centre + shift * _unit(rng.normal(size=3))
        rot = rot @ turn.T  # world_from_cam turned by ``turn``: the camera rotates about its own centre
        poses[k, :3, :3], poses[k, :3, 3] = rot, -rot @ centre
    return torch.as_tensor(poses, dtype=cam_from_world.dtype)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """``[3, 3]`` rotation by ``angle`` (rad) about the unit ``axis`` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
