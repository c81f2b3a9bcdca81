"""Pictures of what the model imagines: point clouds as ``.ply`` files and TensorBoard meshes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def write_ply(path: str | Path, points: Tensor | np.ndarray, colours: Tensor | np.ndarray | None = None) -> Path:
    """Write a coloured point cloud with open3d.

    Args:
        points: ``[N, 3]`` metres.
        colours: ``[N, 3]`` RGB in ``[0, 1]``.
    """
    import open3d as o3d

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    if colours is not None:
        cloud.colors = o3d.utility.Vector3dVector(np.clip(np.asarray(colours, dtype=np.float64), 0, 1).reshape(-1, 3))
    if not o3d.io.write_point_cloud(str(path), cloud):
        raise OSError(f"{path}: open3d could not write the point cloud")
    return path


def patch_colours(frames: list[Any], grid: tuple[int, int]) -> Tensor:
    """Mean RGB ``[S, rows * cols, 3]`` in ``[0, 1]`` of every patch of every frame."""
    out = []
    for frame in frames:
        pixels = torch.from_numpy(np.array(frame.convert("RGB") if hasattr(frame, "convert") else frame))
        image = pixels.permute(2, 0, 1)[None].float() / 255.0
        pooled = torch.nn.functional.adaptive_avg_pool2d(image, grid)[0]  # [3, rows, cols]
        out.append(pooled.flatten(1).T)
    return torch.stack(out)


def log_point_cloud(logger: Any, tag: str, points: Tensor, colours: Tensor, step: int) -> None:
    """Add a point cloud to a TensorBoard logger (``points`` ``[N, 3]``, ``colours`` ``[N, 3]`` in [0, 1])."""
    experiment = getattr(logger, "experiment", None)
    if experiment is None or not hasattr(experiment, "add_mesh"):
        return
    experiment.add_mesh(tag, vertices=points[None].float().cpu(),
                        colors=(colours[None].clamp(0, 1) * 255).to(torch.uint8).cpu(), global_step=step)
