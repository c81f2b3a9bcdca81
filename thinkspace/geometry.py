"""3D math shared by objectives, teachers and datasets (torch, any device).

Conventions: OpenCV cameras (x right, y down, z forward; integer pixel coordinates are
pixel centres), ``cam_from_world`` 4x4,
depth in metres along the camera z axis with 0 for invalid pixels, angles in radians.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


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


def wrap_angle(angle: Tensor) -> Tensor:
    """Angles wrapped to ``[-pi, pi)``."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


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
