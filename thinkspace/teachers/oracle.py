"""``OracleGeometryTeacher``: teacher tokens encoded from ground-truth depth and cameras.

Trains the 3D-latent objective with no VGGT: on the synthetic world, or any data with
depth and poses (ScanNet-style). Every token is a fixed, invertible encoding, so
projected latents decode back into geometry (:meth:`OracleGeometryTeacher.decode_points`).

Per view, on a grid of ``rows x cols`` patches (``patch_size`` pixels each, patch
``(r, c)`` covering rows ``[r H / rows, (r + 1) H / rows)`` and the same for columns):

* patch token: Fourier features of the patch's world point (x, y, z in metres; the
  patch centre unprojected at the patch's mean valid depth), Fourier features of that
  depth, the mean surface normal in the world frame, and the fraction of valid pixels;
* camera token: the world-from-camera rotation (9 numbers), Fourier features of the
  camera centre (metres), and the intrinsics divided by the image size (fx/W, fy/H, cx/W, cy/H).

Both are zero-padded to a common width ``channels``. Integer pixel coordinates are pixel
centres (OpenCV), as in :mod:`thinkspace.geometry`, so patch ``(r, c)``'s centre is at
``(c + 0.5) W / cols - 0.5, (r + 0.5) H / rows - 0.5``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from thinkspace.data.schema import SpatialSample
from thinkspace.geometry import backproject
from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures, frame_size
from thinkspace.teachers.fourier import fourier_decode, fourier_encode


class OracleGeometryTeacher(GeometryTeacher):
    """Ground-truth geometry as teacher tokens.

    Args:
        patch_size: pixels per patch side; the grid is ``(H // patch_size, W // patch_size)``.
        bands: Fourier bands per coordinate (finest period ``2 * extent / 2^(bands-1)`` metres).
        extent: coordinates and depths must lie in ``[-extent, extent)`` metres.
    """

    num_register = 0
    runs_in_workers = True

    def __init__(self, patch_size: int = 14, bands: int = 6, extent: float = 16.0) -> None:
        if patch_size < 1 or bands < 1 or extent <= 0:
            raise ValueError(f"OracleGeometryTeacher: bad settings patch_size={patch_size}, bands={bands}, "
                             f"extent={extent}")
        self.patch_size = patch_size
        self.bands = bands
        self.extent = float(extent)
        two_l = 2 * bands
        self.patch_channels = 3 * two_l + two_l + 3 + 1
        self.camera_channels = 9 + 3 * two_l + 4
        self.channels = max(self.patch_channels, self.camera_channels)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        rows, cols = height // self.patch_size, width // self.patch_size
        if rows < 1 or cols < 1:
            raise ValueError(f"OracleGeometryTeacher: frames of {height}x{width} pixels are smaller than one "
                             f"{self.patch_size}-pixel patch")
        return rows, cols

    def signature(self) -> dict[str, Any]:
        return {"teacher": "oracle", "patch_size": self.patch_size, "bands": self.bands,
                "extent": self.extent, "channels": self.channels, "num_register": 0}

    def encode(self, sample: SpatialSample) -> TeacherFeatures:
        geometry = sample.geometry
        if geometry is None or geometry.depth is None:
            raise ValueError(f"sample {sample.id!r} ({sample.source}): the oracle teacher needs geometry with depth")
        depth = geometry.depth.float()
        if tuple(depth.shape[1:]) != frame_size(sample):
            raise ValueError(f"sample {sample.id!r} ({sample.source}): depth is {tuple(depth.shape[1:])} but the "
                             f"frames are {frame_size(sample)} pixels")
        return self.encode_geometry(depth, geometry.intrinsics.float(), geometry.cam_from_world.float())

    def encode_geometry(self, depth: Tensor, intrinsics: Tensor, cam_from_world: Tensor) -> TeacherFeatures:
        """Tokens from depth ``[S, H, W]`` (metres, 0 invalid), intrinsics ``[S, 3, 3]`` and
        ``cam_from_world`` ``[S, 4, 4]``."""
        s, h, w = depth.shape
        rows, cols = self.grid(h, w)
        valid = (depth > 0).float()
        mass = F.adaptive_avg_pool2d(valid[:, None], (rows, cols))[:, 0]  # [S, rows, cols]
        mean_depth = F.adaptive_avg_pool2d((depth * valid)[:, None], (rows, cols))[:, 0] / mass.clamp_min(1e-6)
        world_from_cam = torch.linalg.inv(cam_from_world.double()).float()
        points = self._unproject(mean_depth, intrinsics, world_from_cam, h, w)  # [S, rows, cols, 3]
        normals = self._normals(depth, intrinsics, cam_from_world, rows, cols)
        enc = lambda x: fourier_encode(x, self.extent, self.bands)  # noqa: E731
        patch = torch.cat([enc(points).flatten(-2), enc(mean_depth), normals, mass[..., None]], dim=-1)
        patch = patch * (mass[..., None] > 0)  # an all-invalid patch is all zeros
        size = torch.tensor([w, h, w, h], dtype=torch.float32)
        k = torch.stack([intrinsics[:, 0, 0], intrinsics[:, 1, 1], intrinsics[:, 0, 2], intrinsics[:, 1, 2]], -1)
        camera = torch.cat([world_from_cam[:, :3, :3].flatten(1), enc(world_from_cam[:, :3, 3]).flatten(1),
                            k / size], dim=-1)
        return TeacherFeatures(
            camera=_pad(camera, self.channels),
            register=depth.new_zeros(s, 0, self.channels),
            patch=_pad(patch.flatten(1, 2), self.channels),
            grid=(rows, cols),
        )

    def decode_points(self, features: TeacherFeatures, height: int, width: int) -> tuple[Tensor, Tensor]:
        """World points ``[S, rows * cols, 3]`` (metres) and validity ``[S, rows * cols]`` from tokens.

        Inverts the encoding: the camera token gives intrinsics and pose, the patch token
        gives depth, and each patch centre is unprojected at that depth.
        """
        two_l, b = 2 * self.bands, self.bands
        dec = lambda x: fourier_decode(x, self.extent, b)  # noqa: E731
        cam = features.camera.float()
        rotation = _orthonormal(cam[:, :9].reshape(-1, 3, 3))
        centre = dec(cam[:, 9:9 + 3 * two_l].reshape(-1, 3, two_l))
        size = torch.tensor([width, height, width, height], dtype=torch.float32)
        fx, fy, cx, cy = (cam[:, 9 + 3 * two_l:9 + 3 * two_l + 4] * size).unbind(-1)
        intrinsics = torch.zeros(cam.shape[0], 3, 3)
        intrinsics[:, 0, 0], intrinsics[:, 1, 1], intrinsics[:, 0, 2], intrinsics[:, 1, 2] = fx, fy, cx, cy
        intrinsics[:, 2, 2] = 1.0
        world_from_cam = torch.eye(4).repeat(cam.shape[0], 1, 1)
        world_from_cam[:, :3, :3], world_from_cam[:, :3, 3] = rotation, centre
        rows, cols = features.grid
        patch = features.patch.float().reshape(-1, rows, cols, features.patch.shape[-1])
        depth = dec(patch[..., 3 * two_l:4 * two_l])
        valid = patch[..., 4 * two_l + 3] > 0.5
        points = self._unproject(depth, intrinsics, world_from_cam, height, width)
        return points.flatten(1, 2), valid.flatten(1)

    def point_cloud(self, features: TeacherFeatures, sample: SpatialSample) -> tuple[Tensor, Tensor]:
        """Decoded patch points ``[M, 3]`` of the valid patches and their mean colours ``[M, 3]``."""
        from thinkspace.viz import patch_colours

        height, width = frame_size(sample)
        points, valid = self.decode_points(features, height, width)
        colours = patch_colours(list(sample.frames), features.grid)
        return points[valid], colours[valid]

    @staticmethod
    def _unproject(depth: Tensor, intrinsics: Tensor, world_from_cam: Tensor, height: int, width: int) -> Tensor:
        """World points ``[S, rows, cols, 3]`` of the patch centres at ``depth`` ``[S, rows, cols]``."""
        _, rows, cols = depth.shape
        v = (torch.arange(rows, dtype=torch.float32) + 0.5) * height / rows - 0.5
        u = (torch.arange(cols, dtype=torch.float32) + 0.5) * width / cols - 0.5
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        fx, fy = intrinsics[:, 0, 0, None, None], intrinsics[:, 1, 1, None, None]
        cx, cy = intrinsics[:, 0, 2, None, None], intrinsics[:, 1, 2, None, None]
        cam = torch.stack([(uu - cx) / fx * depth, (vv - cy) / fy * depth, depth], dim=-1)
        rot, t = world_from_cam[:, None, None, :3, :3], world_from_cam[:, None, None, :3, 3]
        return (rot @ cam[..., None])[..., 0] + t

    @staticmethod
    def _normals(depth: Tensor, intrinsics: Tensor, cam_from_world: Tensor, rows: int, cols: int) -> Tensor:
        """Mean unit surface normals ``[S, rows, cols, 3]`` in the world frame, facing the camera."""
        normals = []
        for d, k, pose in zip(depth, intrinsics, cam_from_world):
            pts = backproject(d, k, pose)  # [H, W, 3]
            ok = (d > 0).float()
            dx, dy = pts[:-1, 1:] - pts[:-1, :-1], pts[1:, :-1] - pts[:-1, :-1]
            n = torch.linalg.cross(dy, dx)
            weight = (ok[:-1, 1:] * ok[:-1, :-1] * ok[1:, :-1])[..., None]
            n = F.normalize(n, dim=-1) * weight
            centre = torch.linalg.inv(pose.double()).float()[:3, 3]
            facing = ((centre - pts[:-1, :-1]) * n).sum(-1, keepdim=True).sign()
            n = F.adaptive_avg_pool2d((n * facing).permute(2, 0, 1)[None], (rows, cols))[0].permute(1, 2, 0)
            normals.append(F.normalize(n, dim=-1))
        return torch.stack(normals)


def _pad(x: Tensor, channels: int) -> Tensor:
    return F.pad(x, (0, channels - x.shape[-1]))


def _orthonormal(m: Tensor) -> Tensor:
    """The rotation nearest to each ``[..., 3, 3]`` matrix."""
    u, _, vh = torch.linalg.svd(m)
    d = torch.det(u @ vh).sign()
    u = torch.cat([u[..., :2], u[..., 2:] * d[..., None, None]], dim=-1)
    return u @ vh
