"""``ScanNetScene``: one ScanNet scene as posed RGB-D frames, in the thinkspace world frame.

Reads the layout ScanNet's ``SensReader`` export writes (the synthetic world writes the
same): ``color/N.jpg|png`` (RGB), ``depth/N.png`` (uint16 millimetres, 0 = invalid),
``pose/N.txt`` (4x4 camera-to-scene, OpenCV camera axes; ScanNet marks lost frames with
``-inf``, which are skipped), and intrinsics as ``intrinsic/intrinsic_depth.txt`` (4x4,
top-left 3x3; used because colour frames are resized to the depth resolution) or a
single ``intrinsic.txt``. With ``axis_align`` the scene's ``{scene}.txt``
``axisAlignment`` matrix is applied to the poses first (ScanNet's axis-aligned frame).

World frame conversion (``world_from_scene``): the scene frame is metric and +z up;
thinkspace's world frame puts the origin at the first selected frame's camera centre
and turns about +z so +x is that camera's heading (its viewing direction projected on
the floor). ``cam_from_world = inv(pose) @ scene_from_world``; a yaw in the scene frame
becomes ``yaw - heading0``.

Timing: ScanNet streams RGB-D at 30 frames per second (ScanNet, arXiv 1702.04405). The
``.sens`` files hold per-frame timestamps but the export drops them and names files by
their frame number in the capture (whatever ``--frame_skip``), so a frame's timestamp is
its number / ``fps`` seconds; ``PosedFrames.timestamps`` makes the frames a video
(``SpatialSample.timestamps``). The video's length (``PosedFrames.duration``) is the capture's
frame count / ``fps``, the count read as the last exported colour frame's number + 1: the number
of exported frames for a full export, and under ``--frame_skip`` still the capture's length, in
step with the timestamps (lost-pose frames count: they are frames of the video).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from thinkspace.data.images import load_image
from thinkspace.data.schema import Geometry
from thinkspace.data.video import FrameSampling, sample_indices
from thinkspace.geometry import wrap_angle

#: ScanNet's capture rate (frames per second).
SCANNET_FPS = 30.0


@dataclass
class PosedFrames:
    """Frames of a scene in the world frame.

    Attributes:
        frames: S RGB images (resized to the depth resolution).
        geometry: intrinsics ``[S, 3, 3]``, cam_from_world ``[S, 4, 4]``, depth ``[S, H, W]`` metres.
        world_from_scene: ``[4, 4]`` float64, scene frame to world frame.
        heading: yaw (radians) of the first camera in the scene frame.
        indices: frame numbers used.
        timestamps: ``[S]`` float32 seconds, frame number / fps (the capture's timing).
        duration: seconds, the whole capture's length: (last colour frame number + 1) / fps.
    """

    frames: list[Image.Image]
    geometry: Geometry
    world_from_scene: np.ndarray
    heading: float
    indices: list[int]
    timestamps: torch.Tensor | None = None
    duration: float | None = None

    def to_world(self, xy: tuple[float, float], yaw: float) -> tuple[tuple[float, float], float]:
        """A floor position (m) and yaw (rad) in the scene frame, in the world frame (yaw in [-pi, pi))."""
        point = self.world_from_scene @ np.array([xy[0], xy[1], 0.0, 1.0])
        turned = wrap_angle(yaw - self.heading)
        return (float(point[0]), float(point[1])), float(turned)


def _frame_numbers(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"ScanNet folder {folder} not found")
    return {int(p.stem): p for p in folder.iterdir() if p.stem.isdigit()}


def _matrix(path: Path) -> np.ndarray:
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: expected a 4x4 matrix of numbers ({err})") from err
    if matrix.shape != (4, 4):
        raise ValueError(f"{path}: expected a 4x4 matrix, got shape {matrix.shape}")
    return matrix


def check_rigid(pose: np.ndarray, path: Path, tolerance: float = 1e-3) -> None:
    """Refuse a camera-to-scene pose that is not a rotation plus a translation.

    Raises:
        ValueError: naming ``path``, when the 3x3 block is not orthonormal with determinant +1
            (all zeros, scaled, sheared, mirrored) or the last row is not ``0 0 0 1``.
    """
    rotation = pose[:3, :3]
    if not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0], atol=tolerance):
        raise ValueError(f"{path}: the last row of a pose is {pose[3].tolist()}; expected [0, 0, 0, 1]")
    error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    if error > tolerance or np.linalg.det(rotation) < 0:
        raise ValueError(f"{path}: not a rigid camera pose (its 3x3 block is not a rotation: max |R^T R - I| = "
                         f"{error:.3g}, det {np.linalg.det(rotation):.3g}); expected a rotation and a translation "
                         "in metres")


def axis_alignment(scene_dir: Path) -> np.ndarray:
    """The ``axisAlignment`` 4x4 of ``{scene}/{scene}.txt`` (identity if the line is absent)."""
    meta = scene_dir / f"{scene_dir.name}.txt"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found (needed for axis_align)")
    for line in meta.read_text().splitlines():
        if line.startswith("axisAlignment"):
            return np.array([float(v) for v in line.split("=")[1].split()], dtype=np.float64).reshape(4, 4)
    return np.eye(4)


def world_from_first_camera(scene_from_cam: np.ndarray) -> tuple[np.ndarray, float]:
    """``world_from_scene`` [4, 4] and the heading (rad) of a camera given camera-to-scene."""
    forward = scene_from_cam[:3, 2]
    heading = math.atan2(forward[1], forward[0])
    c, s = math.cos(-heading), math.sin(-heading)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    world = np.eye(4)
    world[:3, :3] = turn
    world[:3, 3] = -turn @ scene_from_cam[:3, 3]
    return world, heading


def load_posed_frames(scene_dir: str | Path, num_frames: int, sample_id: str | None = None,
                      axis_align: bool = False, sampling: FrameSampling = "segment_centres",
                      fps: float = SCANNET_FPS) -> PosedFrames:
    """``num_frames`` frames spread uniformly over the scene's valid frames, in the world frame.

    ``sampling`` picks them among the valid frames (segment centres, or VSI-Bench's
    ``linspace`` with both ends; :mod:`thinkspace.data.video`); ``fps`` times them.

    Raises:
        FileNotFoundError: a folder or file is missing (message names it and the sample).
        ValueError: no valid poses, or a malformed pose/intrinsic file.
    """
    scene_dir = Path(scene_dir)
    colors = _frame_numbers(scene_dir / "color")
    depths = _frame_numbers(scene_dir / "depth")
    pose_files = _frame_numbers(scene_dir / "pose")
    poses = {k: _matrix(p) for k, p in sorted(pose_files.items())}
    valid = sorted(k for k, m in poses.items() if np.isfinite(m).all() and k in colors and k in depths)
    if not valid:
        raise ValueError(f"ScanNet scene {scene_dir} has no frame with colour, depth and a finite pose")
    if fps <= 0:
        raise ValueError(f"ScanNet frame rate fps must be positive, got {fps}")
    chosen = [valid[i] for i in sample_indices(len(valid), min(num_frames, len(valid)), sampling)]
    intrinsic_file = scene_dir / "intrinsic" / "intrinsic_depth.txt"
    if not intrinsic_file.is_file():
        intrinsic_file = scene_dir / "intrinsic.txt"
    K = _matrix(intrinsic_file)[:3, :3]
    align = axis_alignment(scene_dir) if axis_align else np.eye(4)
    for k in chosen:
        check_rigid(poses[k], pose_files[k])
    scene_from_cams = [align @ poses[k] for k in chosen]
    world_from_scene, heading = world_from_first_camera(scene_from_cams[0])
    frames, depth = [], []
    for k in chosen:
        mm = np.asarray(Image.open(depths[k]), dtype=np.float32)
        if depth and mm.shape != depth[0].shape:
            raise ValueError(f"{depths[k]}: depth image of {mm.shape[1]}x{mm.shape[0]} pixels; expected "
                             f"{depth[0].shape[1]}x{depth[0].shape[0]} as {depths[chosen[0]]} (one size per scene)")
        depth.append(mm / 1000.0)
        image = load_image(colors[k], sample_id)
        if image.size != (mm.shape[1], mm.shape[0]):
            image = image.resize((mm.shape[1], mm.shape[0]), Image.BILINEAR)
        frames.append(image)
    cam_from_world = [np.linalg.inv(world_from_scene @ m) for m in scene_from_cams]
    geometry = Geometry(
        intrinsics=torch.tensor(np.stack([K] * len(chosen)), dtype=torch.float32),
        cam_from_world=torch.tensor(np.stack(cam_from_world), dtype=torch.float32),
        depth=torch.from_numpy(np.stack(depth)),
    )
    timestamps = torch.tensor([k / fps for k in chosen], dtype=torch.float32)
    duration = (max(colors) + 1) / fps  # the capture's frame count / fps, as LLaVA-NeXT's loader reads a video
    return PosedFrames(frames, geometry, world_from_scene, heading, chosen, timestamps, duration)
