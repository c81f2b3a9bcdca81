"""Pinhole cameras, OpenCV axes (x right, y down, z forward), and frame conversions.

Two frames meet here:

* the **room frame** of a scene (see :mod:`thinkspace.synth.scene`), used on disk;
* the **world frame** of a sample (see :mod:`thinkspace.data.schema`): origin at the
  first camera's centre, +z up, +x along the first camera's heading (its viewing
  direction projected on the floor), so the first camera has yaw 0. It is the room
  frame turned about +z and shifted: ``world_from_room`` below.

Pixel convention: pixel ``(u, v)`` (column, row) has its centre at integer coordinates,
so a point ``X`` in camera coordinates lands at ``K @ X / X_z`` and the principal point
of a centred ``W x H`` image is ``((W - 1) / 2, (H - 1) / 2)``.
"""

from __future__ import annotations

import numpy as np


def intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """``[3, 3]`` pinhole matrix in pixels with horizontal field of view ``fov_deg``."""
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``[4, 4]`` camera-from-room transform of a camera at ``eye`` looking at ``target``.

    The camera is level (no roll): its x axis stays horizontal, its y axis points down.
    """
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is vertical, the heading is undefined")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    cam = np.eye(4)
    cam[:3, :3] = np.stack([x, y, z])
    cam[:3, 3] = -cam[:3, :3] @ eye
    return cam


def look_along(eye: np.ndarray, heading: float, pitch: float = 0.0) -> np.ndarray:
    """Camera at ``eye`` facing ``heading`` (rad about +z from +x), tilted down by ``pitch`` (rad)."""
    direction = np.array([np.cos(heading) * np.cos(pitch), np.sin(heading) * np.cos(pitch), -np.sin(pitch)])
    return look_at(eye, np.asarray(eye, dtype=np.float64) + direction)


def centre_of(cam_from_x: np.ndarray) -> np.ndarray:
    """``[3]`` camera centre in the frame ``x`` of a ``[4, 4]`` camera-from-x transform."""
    return -cam_from_x[:3, :3].T @ cam_from_x[:3, 3]


def heading_of(cam_from_x: np.ndarray) -> float:
    """Yaw (rad about +z from +x) of the camera's viewing direction projected on the floor."""
    forward = cam_from_x[2, :3]
    return float(np.arctan2(forward[1], forward[0]))


def yaw_matrix(yaw: float) -> np.ndarray:
    """``[3, 3]`` rotation by ``yaw`` (rad) about +z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def world_from_room(first_cam_from_room: np.ndarray) -> np.ndarray:
    """``[4, 4]`` transform from the room frame to the sample's world frame.

    The world frame has its origin at the first camera's centre and its +x axis along
    the first camera's heading; +z stays up.
    """
    rot = yaw_matrix(-heading_of(first_cam_from_room))
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = -rot @ centre_of(first_cam_from_room)
    return out


def yaw_quaternion(yaw: float) -> dict[str, float]:
    """SQA3D-style rotation ``{"_x", "_y", "_z", "_w"}`` of a turn by ``yaw`` about +z."""
    return {"_w": float(np.cos(yaw / 2)), "_x": 0.0, "_y": 0.0, "_z": float(np.sin(yaw / 2))}

