"""SQA3D's situation frame, to and from thinkspace's world frame.

SQA3D frame (read from the official ``utils/visualize_data.py``): ScanNet's scene frame
(the camera poses' frame, not axis-aligned) translated by minus the axis-aligned
bounding-box centre of ``{scene}_vh_clean_2.ply``; metres, +z up. The agent is rotated by
``rotation`` (quaternion x, y, z, w) and then moved to ``position``. At rotation 0 the
official arrow faces **-x**: its cone is built along +z and turned by
``[[0, 0, -1], [0, 1, 0], [1, 0, 0]]``, which sends +z to -x, and is put at x = -0.15,
beyond the shaft's end. So with ``r`` the z component of the rotation vector (the angle
SQA3D's localization metric compares), the agent faces the direction at angle ``r + pi``.

thinkspace's world frame (:mod:`thinkspace.data.datasets.scannet`): origin at the first
selected camera, +x along its heading, +z up; a situation's ``yaw`` is the direction the
agent faces (0 along +x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from thinkspace.geometry import wrap_angle

#: the angle the SQA3D agent faces at rotation 0 (-x), radians
FACING_AT_ROTATION_ZERO = math.pi


def _turn(rotation: np.ndarray, angle: float) -> float:
    """Angle (rad) of the floor direction at ``angle`` after ``rotation`` [3, 3], projected on the floor."""
    d = rotation @ np.array([math.cos(angle), math.sin(angle), 0.0])
    return math.atan2(d[1], d[0])


@dataclass
class SituationFrame:
    """The rigid map from SQA3D's frame of one scene to the world frame of its selected frames.

    Attributes:
        world_from_sqa3d: ``[4, 4]`` float64.
        facing_at_zero: the angle (rad) the agent faces at rotation 0 in the file's frame:
            pi for SQA3D's files, 0 for files that face +x (the synthetic world's).
    """

    world_from_sqa3d: np.ndarray
    facing_at_zero: float = FACING_AT_ROTATION_ZERO

    def to_world(self, xy: tuple[float, float], rotation_z: float) -> tuple[tuple[float, float], float]:
        """SQA3D ``position`` (x, y) metres and rotation-vector z (rad) -> world (x, y) and facing yaw in (-pi, pi]."""
        point = self.world_from_sqa3d @ np.array([xy[0], xy[1], 0.0, 1.0])
        yaw = _turn(self.world_from_sqa3d[:3, :3], rotation_z + self.facing_at_zero)
        return (float(point[0]), float(point[1])), yaw

    def to_sqa3d(self, xy: tuple[float, float], yaw: float) -> tuple[list[float], list[float]]:
        """World (x, y) metres and facing yaw (rad) -> SQA3D ``agent_pos`` ``[x, y, z]`` (z 0, as
        in SQA3D's files) and ``agent_rot`` ``[x, y, z, w]``, a turn about +z by an angle in (-pi, pi]."""
        sqa3d_from_world = np.linalg.inv(self.world_from_sqa3d)
        point = sqa3d_from_world @ np.array([xy[0], xy[1], 0.0, 1.0])
        facing = _turn(sqa3d_from_world[:3, :3], yaw)
        r = wrap_angle(facing - self.facing_at_zero)
        return [float(point[0]), float(point[1]), 0.0], [0.0, 0.0, math.sin(r / 2), math.cos(r / 2)]


def situation_frame(world_from_scene: np.ndarray, centre: np.ndarray | None,
                    align: np.ndarray | None = None, facing_at_zero: float = FACING_AT_ROTATION_ZERO) -> SituationFrame:
    """The frame of a scene whose mesh bounding box is centred at ``centre`` [3] (scene frame).

    Args:
        world_from_scene: ``[4, 4]`` from the (possibly axis-aligned) scene frame to the world.
        centre: the mesh's bounding-box centre in the raw scene frame; ``None`` when the
            positions are already in the poses' frame (no translation).
        align: ``[4, 4]`` ScanNet ``axisAlignment`` applied to the poses, if any.
        facing_at_zero: see :class:`SituationFrame`.
    """
    shift = np.eye(4)
    if centre is not None:
        shift[:3, 3] = np.asarray(centre, dtype=np.float64)
    aligned = np.eye(4) if align is None else np.asarray(align, dtype=np.float64)
    return SituationFrame(np.asarray(world_from_scene, dtype=np.float64) @ aligned @ shift, facing_at_zero)
