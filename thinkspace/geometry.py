"""3D math shared by objectives, teachers, datasets, scoring and the synthetic world.

Conventions: OpenCV cameras (x right, y down, z forward; integer pixel coordinates are
pixel centres), ``cam_from_world`` 4x4,
depth in metres along the camera z axis with 0 for invalid pixels, angles in radians,
quaternions (x, y, z, w). The angle helpers take floats, numpy arrays or tensors alike.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
from torch import Tensor

Angle = TypeVar("Angle", float, Any)  # a float, a numpy array or a tensor: what goes in comes out


def pixel_grid(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """Pixel centres ``[H, W, 2]`` as (u, v) = (column, row): OpenCV's convention, in
    which integer coordinates are pixel centres (as in ScanNet and the synthetic world)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def backproject(depth: Tensor, intrinsics: Tensor, cam_from_world: Tensor) -> Tensor:
    """World points ``[H, W, 3]`` (metres) of every pixel of one depth map.

    Args:
        depth: ``[H, W]`` metres (0 = invalid; those points are meaningless, mask them).
        intrinsics: ``[3, 3]`` pixels.
        cam_from_world: ``[4, 4]``.
    """
    h, w = depth.shape
    uv = pixel_grid(h, w, depth.device)
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    cam = torch.stack([x, y, depth], dim=-1)
    world_from_cam = torch.linalg.inv(cam_from_world.double()).to(depth.dtype)
    return cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]


def wrap_angle(angle: Angle) -> Angle:
    """Angles (radians) wrapped to ``[-pi, pi)``: a float, numpy array or tensor (``%`` is
    the floored remainder in all three)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def yaw_error_degrees(a: Angle, b: Angle) -> Angle:
    """``min(|a - b|, 2 pi - |a - b|)`` in degrees (in [0, 180]) for yaws ``a, b`` in radians,
    floats or tensors of one shape: SQA3D's ``utils/localization_metric.py`` rule."""
    diff = abs(a - b) % (2 * math.pi)  # unchanged for yaws in [-pi, pi], as the official rule takes them
    closest = torch.minimum(diff, 2 * math.pi - diff) if isinstance(diff, Tensor) else min(diff, 2 * math.pi - diff)
    return closest / math.pi * 180.0


def quaternion_yaw(x: float, y: float, z: float, w: float) -> float:
    """z component (radians) of the rotation vector of the unit quaternion (x, y, z, w).

    The rotation angle is taken in [0, pi] (the quaternion's sign flipped when w < 0),
    so for a turn about +z by yaw in (-pi, pi] this returns yaw.
    """
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if norm == 0:
        raise ValueError("quaternion (0, 0, 0, 0) is not a rotation")
    x, y, z, w = (v / norm for v in (x, y, z, w))
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    sin_half = math.sqrt(x * x + y * y + z * z)
    if sin_half < 1e-12:
        return 2.0 * z  # small-angle limit of angle * axis_z
    angle = 2.0 * math.atan2(sin_half, w)
    return angle * z / sin_half


def as_position(value: Any, where: str) -> tuple[float, float]:
    """(x, y) of ``{"x", "y", "z"}`` or ``[x, y, z]`` (``where`` names the record in the error)."""
    if isinstance(value, dict):
        return float(value["x"]), float(value["y"])
    if isinstance(value, (list, tuple)) and len(value) >= 2 and not isinstance(value[0], (list, dict)):
        return float(value[0]), float(value[1])
    raise ValueError(f"{where}: position {value!r} is neither {{x, y, z}} nor [x, y, z]")


def as_quaternion(value: Any, where: str) -> tuple[float, float, float, float]:
    """(x, y, z, w) of ``{"_x", "_y", "_z", "_w"}`` (or without underscores) or ``[x, y, z, w]``."""
    if isinstance(value, dict):
        get = lambda k: value[f"_{k}"] if f"_{k}" in value else value[k]  # noqa: E731
        return tuple(float(get(k)) for k in "xyzw")  # type: ignore[return-value]
    if isinstance(value, (list, tuple)) and len(value) == 4 and not isinstance(value[0], (list, dict)):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    raise ValueError(f"{where}: rotation {value!r} is neither {{_x, _y, _z, _w}} nor [x, y, z, w]")


def yaw_bin_centres(num_bins: int, device: torch.device | None = None) -> Tensor:
    """Centres ``[K]`` of ``num_bins`` equal yaw bins tiling ``[-pi, pi)``."""
    width = 2 * math.pi / num_bins
    return -math.pi + width * (torch.arange(num_bins, device=device, dtype=torch.float32) + 0.5)


def wrapped_gaussian(yaw: Tensor, num_bins: int, sigma_bins: float) -> Tensor:
    """Soft yaw targets ``[B, K]``: a Gaussian over the wrapped distance to each bin centre.

    Args:
        yaw: ``[B]`` radians.
        sigma_bins: standard deviation in bins (2 bins of 36 = 20 degrees).
    """
    centres = yaw_bin_centres(num_bins, yaw.device)
    sigma = sigma_bins * 2 * math.pi / num_bins
    distance = wrap_angle(centres[None, :] - yaw[:, None])
    weights = torch.exp(-0.5 * (distance / sigma) ** 2)
    return weights / weights.sum(-1, keepdim=True)


def circular_soft_argmax(probs: Tensor) -> Tensor:
    """Yaw ``[B]`` (radians) from bin probabilities ``[B, K]``: atan2 of the weighted sin and cos."""
    centres = yaw_bin_centres(probs.shape[-1], probs.device)
    return torch.atan2((probs * centres.sin()).sum(-1), (probs * centres.cos()).sum(-1))


def gaussian_nll(pred: Tensor, log_var: Tensor, target: Tensor) -> Tensor:
    """Diagonal Gaussian negative log-likelihood per row (constant dropped).

    ``0.5 * sum_d [(target - pred)^2 / exp(log_var) + log_var]`` for ``[..., D]`` inputs;
    returns ``[...]``.
    """
    return 0.5 * ((target - pred) ** 2 * torch.exp(-log_var) + log_var).sum(-1)
