"""What every visual token covers in 3D: the mean world point and depth of its pixels."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from thinkspace.data.schema import SpatialSample
from thinkspace.geometry import backproject


def token_geometry(sample: SpatialSample, grids: list[tuple[int, int]], need: str) -> tuple[Tensor, Tensor, Tensor]:
    """Mean world point and mean depth of the valid depth pixels under every visual token.

    Token ``(r, c)`` of frame group ``f`` covers the fraction ``[r/rows, (r+1)/rows) x
    [c/cols, (c+1)/cols)`` of each sampled frame of the group (the same regions as the
    layout objective's targets). What the layout objective's targets and the point-map cue
    read, computed in one place.

    Returns:
        ``(points [N, 3] metres in the world frame, depth [N] metres, valid [N] bool)`` in
        visual-token order (frame group, then row-major), ``N = sum(rows * cols)``.

    Args:
        need: the end of the error for a sample without depth, what needs it
            (``"layout targets need geometry.depth"``).

    Raises:
        ValueError: naming the sample, when it has no depth or its depth is not finite
            and non-negative.
    """
    geometry = sample.geometry
    if geometry is None or geometry.depth is None:
        raise ValueError(f"sample {sample.id!r} ({sample.source}) has no depth; {need}")
    depth = geometry.depth.float()
    if not torch.isfinite(depth).all() or (depth < 0).any():
        raise ValueError(f"sample {sample.id!r} ({sample.source}): depth has NaN, infinite or negative values")
    per_group = math.ceil(sample.num_frames / len(grids))
    points, depths, valid = [], [], []
    for group, (rows, cols) in enumerate(grids):
        sums = torch.zeros(rows * cols, 4)  # x, y, z, depth
        counts = torch.zeros(rows * cols)
        for s in range(group * per_group, min((group + 1) * per_group, sample.num_frames)):
            d = depth[s]
            h, w = d.shape
            xyz = backproject(d, geometry.intrinsics[s].float(), geometry.cam_from_world[s].float())
            token = (torch.arange(h)[:, None] * rows // h) * cols + (torch.arange(w)[None, :] * cols // w)
            ok = d > 0
            sums.index_add_(0, token[ok], torch.cat([xyz[ok], d[ok][:, None]], dim=1))
            counts.index_add_(0, token[ok], torch.ones(int(ok.sum())))
        mean = sums / counts.clamp(min=1)[:, None]
        points.append(mean[:, :3])
        depths.append(mean[:, 3])
        valid.append(counts > 0)
    return torch.cat(points), torch.cat(depths), torch.cat(valid)
