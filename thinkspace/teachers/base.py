"""The geometry-teacher contract: frames (and maybe ground truth) in, per-view 3D tokens out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from thinkspace.data.schema import SpatialSample


@dataclass
class TeacherFeatures:
    """One sample's teacher features, per view.

    Attributes:
        camera: ``[S, C]`` one camera token per view.
        register: ``[S, R, C]`` register tokens (R may be 0).
        patch: ``[S, rows * cols, C]`` patch tokens, row-major over the teacher's grid.
        grid: ``(rows, cols)`` of the teacher's patch grid.
    """

    camera: Tensor
    register: Tensor
    patch: Tensor
    grid: tuple[int, int]

    @property
    def num_views(self) -> int:
        return int(self.patch.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TeacherFeatures:
        """The features on ``device``, in their own dtype (a cache's float16 crosses as float16)."""
        return replace(self, camera=self.camera.to(device, non_blocking=non_blocking),
                       register=self.register.to(device, non_blocking=non_blocking),
                       patch=self.patch.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> TeacherFeatures:
        """The features in page-locked memory (the data loader's ``pin_memory`` calls this)."""
        return replace(self, camera=self.camera.pin_memory(), register=self.register.pin_memory(),
                       patch=self.patch.pin_memory())

    def tokens(self) -> Tensor:
        """``[S, P, C]`` with ``P = 1 + R + rows * cols``: camera, registers, patches (3DThinker's order)."""
        return torch.cat([self.camera[:, None], self.register, self.patch], dim=1)

    @classmethod
    def from_tokens(cls, tokens: Tensor, num_register: int, grid: tuple[int, int]) -> TeacherFeatures:
        """Split ``[S, P, C]`` tokens (e.g. projected latents) back into their parts."""
        rows, cols = grid
        expected = 1 + num_register + rows * cols
        if tokens.shape[1] != expected:
            raise ValueError(
                f"teacher tokens: {tokens.shape[1]} per view, expected 1 + {num_register} + {rows}x{cols} = {expected}"
            )
        return cls(tokens[:, 0], tokens[:, 1:1 + num_register], tokens[:, 1 + num_register:], (rows, cols))


class GeometryTeacher:
    """Produces target 3D features for a sample's views (a plain class, not a module:
    its weights are never part of the model's checkpoint).

    Attributes:
        channels: width ``C`` of every token.
        num_register: register tokens per view ``R``.
        runs_in_workers: cheap enough to run in the data workers (the oracle); otherwise
            the objective runs it on the model's device (:meth:`prepare` in the workers,
            :meth:`encode_prepared` in the step) or reads a feature cache.
        device: where :meth:`encode` runs a teacher that does not run in the workers, outside
            the training step (``thinkspace cache-teacher --device``); None: the CPU.
    """

    channels: int
    num_register: int = 0
    runs_in_workers: bool = True
    device: str | None = None

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid ``(rows, cols)`` this teacher produces for frames of this size (pixels)."""
        raise NotImplementedError

    def sample_grid(self, sample: SpatialSample) -> tuple[int, int]:
        """The patch grid of every view of ``sample``.

        Raises:
            ValueError: naming the sample, when its frames differ in size (a teacher that
                pads views to a common size overrides this).
        """
        sizes = sorted({frame_size_of(frame) for frame in sample.frames})
        if len(sizes) > 1:
            raise ValueError(f"sample {sample.id!r} ({sample.source}): its frames differ in size {sizes}; "
                             f"{type(self).__name__} needs one size per sample")
        return self.grid(*sizes[0])

    def signature(self) -> dict[str, Any]:
        """What makes two runs' features interchangeable (name, layer, image size, channels, ...)."""
        raise NotImplementedError

    def encode(self, sample: SpatialSample) -> TeacherFeatures:
        """Features of every view of ``sample``; a teacher that does not run in the workers
        prepares the sample and encodes it on :attr:`device`."""
        if self.runs_in_workers:
            raise NotImplementedError(f"{type(self).__name__} runs in the data workers: it defines encode")
        return self.encode_prepared(self.prepare(sample).to(self.device or "cpu"))

    def point_cloud(self, features: TeacherFeatures, sample: SpatialSample) -> tuple[Tensor, Tensor]:
        """Decode tokens (e.g. projected latents) of ``sample``'s views into world points
        ``[M, 3]`` (metres) and their RGB colours ``[M, 3]`` in ``[0, 1]``."""
        raise NotImplementedError(f"{type(self).__name__} cannot decode its tokens into points")

    def prepare(self, sample: SpatialSample) -> Tensor:
        """The teacher's own input for the sample (e.g. resized pixels ``[S, 3, H, W]``), built in the workers."""
        raise NotImplementedError(f"{type(self).__name__} runs in the data workers; it has no separate prepare step")

    def encode_prepared(self, prepared: Tensor) -> TeacherFeatures:
        """Features from :meth:`prepare`'s output, on that tensor's device."""
        raise NotImplementedError(f"{type(self).__name__} runs in the data workers; it has no separate encode step")


def frame_size(sample: SpatialSample) -> tuple[int, int]:
    """``(height, width)`` in pixels of the sample's first frame."""
    return frame_size_of(sample.frames[0])


def frame_size_of(frame: Any) -> tuple[int, int]:
    """``(height, width)`` in pixels of a PIL image or an ``[H, W, 3]`` array."""
    if hasattr(frame, "size") and not isinstance(frame, Tensor) and not hasattr(frame, "shape"):
        width, height = frame.size
        return int(height), int(width)
    return int(frame.shape[0]), int(frame.shape[1])


def check_features(features: TeacherFeatures, teacher: GeometryTeacher, sample: SpatialSample) -> TeacherFeatures:
    """Raise, naming the sample, when the features do not fit its frames or the teacher."""
    expected = teacher.sample_grid(sample)
    problems = []
    if features.num_views != sample.num_frames:
        problems.append(f"{features.num_views} views for {sample.num_frames} frames")
    if tuple(features.grid) != tuple(expected):
        problems.append(f"grid {tuple(features.grid)} but the frames ({frame_size(sample)}) give {expected}")
    if features.patch.shape[1] != expected[0] * expected[1]:
        problems.append(f"{features.patch.shape[1]} patch tokens for a {expected[0]}x{expected[1]} grid")
    if features.patch.shape[-1] != teacher.channels:
        problems.append(f"{features.patch.shape[-1]} channels, the teacher has {teacher.channels}")
    if problems:
        raise ValueError(f"sample {sample.id!r} ({sample.source}): teacher features do not match: "
                         + "; ".join(problems))
    return features
