"""CPU rendering of a :class:`~thinkspace.synth.scene.Scene` by ray casting (open3d).

One ray per pixel through the pixel centre (see :mod:`thinkspace.synth.cameras`); the
ray direction is scaled to unit length along the camera's z axis, so the hit distance is
the metric depth directly. Shading is Lambertian with one overhead light plus a head
light and ambient term; the floor carries a 0.5 m checker so motion and distance show.
open3d is imported when a :class:`Renderer` is built, so ``import thinkspace`` works
without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from thinkspace.synth.scene import COLOURS, SURFACES, Scene

LIGHT = np.array([0.35, 0.25, 1.0]) / np.linalg.norm([0.35, 0.25, 1.0])


@lru_cache(maxsize=8)
def _pixel_rays(K_bytes: bytes, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``[H, W, 3]`` camera-frame ray directions through pixel centres (z component 1)
    and ``[H, W]`` the inverse of their lengths."""
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    rays = pix @ np.linalg.inv(K).T
    return rays, (1.0 / np.linalg.norm(rays, axis=-1)).astype(np.float32)


@dataclass
class Frame:
    """One rendered view.

    Attributes:
        rgb: ``[H, W, 3]`` uint8 colour.
        depth: ``[H, W]`` float32 metric depth along the camera z axis (m), 0 = no hit.
        instance: ``[H, W]`` uint8 object id (1..N as in the scene), 0 = room or nothing.
        surface: ``[H, W]`` int16 index of the hit mesh (room surfaces 0..5 in
            :data:`~thinkspace.synth.scene.SURFACES` order, then objects), -1 = no hit.
    """

    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray
    surface: np.ndarray


class Renderer:
    """Ray-casts one scene from any pinhole camera.

    Args:
        scene: the scene (room frame).
        threads: ray-casting threads (0 = open3d's choice).
    """

    def __init__(self, scene: Scene, threads: int = 0) -> None:
        try:
            import open3d as o3d
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "thinkspace.synth renders with open3d; install it with `pip install open3d-cpu` "
                "(or the project's extra: `pip install thinkspace[3d]`)"
            ) from err
        self._o3d = o3d
        self.scene = scene
        self.threads = threads
        self._raycast = o3d.t.geometry.RaycastingScene()
        meshes = [mesh for _, mesh in scene.surface_meshes()] + [obj.mesh() for obj in scene.objects]
        for vertices, triangles in meshes:
            self._raycast.add_triangles(
                o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles.astype(np.uint32))
            )
        n_surfaces = len(SURFACES)
        self._colour = np.array(
            list(SURFACES.values()) + [COLOURS[o.colour] for o in scene.objects], dtype=np.float32
        ) / 255.0
        self._colour = self._colour.astype(np.float32)
        self._instance = np.array([0] * n_surfaces + [o.id for o in scene.objects], dtype=np.uint8)

    def render(self, cam_from_room: np.ndarray, K: np.ndarray, width: int, height: int) -> Frame:
        """Render a ``height x width`` view.

        Args:
            cam_from_room: ``[4, 4]`` world-to-camera transform in the room frame (OpenCV axes).
            K: ``[3, 3]`` intrinsics in pixels.
            width: image width (pixels).
            height: image height (pixels).
        """
        o3d = self._o3d
        rot = np.asarray(cam_from_room[:3, :3], dtype=np.float64)
        origin = -rot.T @ cam_from_room[:3, 3]
        cam_rays, inv_length = _pixel_rays(np.asarray(K, dtype=np.float64).tobytes(), width, height)
        dirs = (cam_rays @ rot).astype(np.float32)  # [H, W, 3] in the room frame: R^T d per pixel
        rays = np.empty((height, width, 6), dtype=np.float32)
        rays[..., :3] = origin
        rays[..., 3:] = dirs
        hit = self._raycast.cast_rays(o3d.core.Tensor(rays), nthreads=self.threads)
        t = hit["t_hit"].numpy()
        ids = hit["geometry_ids"].numpy().astype(np.int64)
        valid = np.isfinite(t) & (ids != self._raycast.INVALID_ID)
        ids = np.where(valid, ids, -1)
        depth = np.where(valid, t, 0.0).astype(np.float32)

        normals = hit["primitive_normals"].numpy()
        cosine = np.einsum("hwc,hwc->hw", normals, dirs) * inv_length
        normals = normals * np.where(cosine > 0, -1.0, 1.0).astype(np.float32)[..., None]
        shade = 0.42 + 0.38 * np.clip(normals @ LIGHT.astype(np.float32), 0, 1) + 0.25 * np.abs(cosine)
        colour = np.take(self._colour, np.maximum(ids, 0), axis=0) * shade[..., None]
        floor = np.nonzero(ids == 0)
        if floor[0].size:
            points = origin[:2] + dirs[floor][:, :2] * t[floor][:, None]
            checker = (np.floor(points[:, 0] / 0.5) + np.floor(points[:, 1] / 0.5)) % 2
            colour[floor] *= np.where(checker > 0, 0.86, 1.0)[:, None].astype(np.float32)
        rgb = np.clip(colour * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rgb[~valid] = 0
        instance = np.where(valid, self._instance[np.clip(ids, 0, None)], 0).astype(np.uint8)
        return Frame(rgb=rgb, depth=depth, instance=instance, surface=ids.astype(np.int16))

    def render_many(self, cams_from_room: np.ndarray, K: np.ndarray, width: int, height: int) -> list[Frame]:
        """Render ``[S, 4, 4]`` cameras sharing intrinsics ``K``."""
        return [self.render(c, K, width, height) for c in cams_from_room]
