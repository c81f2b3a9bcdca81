"""Small synthetic trees written once per test session, and plain readers for them.

The readers here use numpy, json and PIL only (never ``thinkspace.synth``), so tests
that check generated answers against them are independent of the generator.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

#: ten scenes give every split (scene 8 is val, scene 9 test); tiny frames keep it fast.
TREE_ARGS = ["--scenes", "10", "--seed", "3", "--size", "64", "--frames", "6", "--workers", "1", "--quiet"]


@lru_cache(maxsize=None)
def synth_tree(seed: int = 3, kind: str = "all") -> Path:
    """Write a tree with ``thinkspace synth`` (in-process) and return its directory."""
    from thinkspace.synth.command import main

    root = Path(tempfile.mkdtemp(prefix="thinkspace-synth-"))
    atexit.register(shutil.rmtree, root, True)
    out = root / "out"
    args = list(TREE_ARGS)
    args[args.index("--seed") + 1] = str(seed)
    assert main(["--out", str(out), "--kind", kind, *args]) == 0
    return out


def load_scene(out: Path, name: str) -> dict:
    return json.loads((out / "scenes" / name / "scene.json").read_text())


def objects_by_name(scene: dict) -> dict[str, dict]:
    return {o["name"]: o for o in scene["objects"]}


def read_pose(directory: Path, k: int) -> np.ndarray:
    """``[4, 4]`` camera-to-room."""
    return np.loadtxt(directory / "pose" / f"{k}.txt")


def read_intrinsic(directory: Path) -> np.ndarray:
    """``[3, 3]``."""
    return np.loadtxt(directory / "intrinsic.txt")[:3, :3]


def read_depth(directory: Path, k: int) -> np.ndarray:
    """``[H, W]`` metres."""
    return np.asarray(Image.open(directory / "depth" / f"{k}.png"), dtype=np.float64) / 1000.0


def eye_heading(pose: np.ndarray) -> tuple[np.ndarray, float]:
    """Camera position ``[2]`` on the floor and heading (rad) of its z axis."""
    return pose[:2, 3], float(np.arctan2(pose[1, 2], pose[0, 2]))


def ego(eye: np.ndarray, heading: float, point) -> tuple[float, float]:
    """(forward, left) metres of ``point`` relative to an observer."""
    d = np.asarray(point, dtype=np.float64)[:2] - eye
    c, s = np.cos(heading), np.sin(heading)
    return float(c * d[0] + s * d[1]), float(-s * d[0] + c * d[1])


def angle_to(eye: np.ndarray, heading: float, point) -> float:
    """Bearing (rad, left positive) in [-pi, pi)."""
    f, left = ego(eye, heading, point)
    return float(np.arctan2(left, f))


def wrapped(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def backproject(depth: np.ndarray, K: np.ndarray, cam_to_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[N, 3]`` in frame x of the valid pixels, and their ``[N, 2]`` (u, v)."""
    v, u = np.nonzero(depth > 0)
    z = depth[v, u]
    rays = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64) @ np.linalg.inv(K).T
    cam = rays * z[:, None]
    return cam @ cam_to_x[:3, :3].T + cam_to_x[:3, 3], np.stack([u, v], axis=-1)


def reprojection_errors(
    points: np.ndarray,
    labels: np.ndarray,
    depth_j: np.ndarray,
    labels_j: np.ndarray,
    K: np.ndarray,
    x_to_cam: np.ndarray,
    return_kept: bool = False,
    max_spread: float = np.inf,
):
    """Depth rendered in view j minus depth predicted for view j (m), per projected point.

    Only points whose projection's four surrounding pixels show the same surface as the
    source pixel are kept (no edges). The rendered depth is interpolated bilinearly in
    inverse depth, which is exact on planes. A point hidden behind another part of the
    same object gives a negative value; a positive one would mean a surface is missing.
    ``max_spread`` (m) also drops points whose four pixels differ more in depth (a
    self-occlusion edge inside one object). ``return_kept`` also returns the indices of
    the kept points.
    """
    index = np.arange(len(points))
    cam = points @ x_to_cam[:3, :3].T + x_to_cam[:3, 3]
    z = cam[:, 2]
    front = z > 0.05
    cam, z, labels, index = cam[front], z[front], labels[front], index[front]
    uv = cam @ K.T
    u, v = uv[:, 0] / z, uv[:, 1] / z
    h, w = depth_j.shape
    inside = (u >= 0) & (v >= 0) & (u < w - 1) & (v < h - 1)
    u, v, z, labels, index = u[inside], v[inside], z[inside], labels[inside], index[inside]
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    corners = [(v0, u0), (v0, u0 + 1), (v0 + 1, u0), (v0 + 1, u0 + 1)]
    same = np.all([labels_j[r, c] == labels for r, c in corners], axis=0)
    same &= np.all([depth_j[r, c] > 0 for r, c in corners], axis=0)
    around = np.stack([depth_j[r, c] for r, c in corners])
    same &= around.max(axis=0) - around.min(axis=0) <= max_spread
    du, dv = (u - u0)[same], (v - v0)[same]
    inv = [1.0 / depth_j[r[same], c[same]] for r, c in corners]
    inv_d = (1 - dv) * ((1 - du) * inv[0] + du * inv[1]) + dv * ((1 - du) * inv[2] + du * inv[3])
    err = 1.0 / inv_d - z[same]
    return (err, index[same]) if return_kept else err
