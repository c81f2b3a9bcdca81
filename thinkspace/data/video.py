"""Read N frames of a video with decord, with their timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from thinkspace.utils.native_stderr import last_reason, native_stderr, replay

#: How N frames are picked from M: ``"segment_centres"`` (the centre of each of N equal
#: segments) or ``"linspace"`` (VSI-Bench's official evaluation: ``np.linspace(0, M - 1, N)``
#: rounded down, first and last frames included; ``lmms_eval/models/llava_vid.py``).
FrameSampling = Literal["segment_centres", "linspace"]
FRAME_SAMPLINGS = get_args(FrameSampling)


@dataclass
class VideoClip:
    """Frames sampled from one video.

    Attributes:
        frames: ``[N, H, W, 3]`` uint8 RGB.
        timestamps: ``[N]`` seconds from the start of the video.
        indices: ``[N]`` frame indices in the video (to align poses, depth, ...).
        fps: the video's average frame rate.
        total_frames: frames in the whole video (M).
    """

    frames: np.ndarray
    timestamps: torch.Tensor
    indices: list[int]
    fps: float
    total_frames: int

    @property
    def duration(self) -> float:
        """Seconds: the whole video's length, ``total_frames / fps`` (LLaVA-NeXT's decord loader's rule)."""
        return self.total_frames / self.fps


def _check_count(total: int, num: int) -> None:
    """Both rules' precondition: at least one frame, at most the video's ``total``."""
    if num < 1:
        raise ValueError(f"num_frames must be at least 1, got {num}")
    if num > total:
        raise ValueError(f"requested {num} frames from a video of {total}")


def uniform_indices(total: int, num: int) -> list[int]:
    """``num`` frame indices spread uniformly over ``total`` frames (segment centres).

    The i-th index is the centre of the i-th of ``num`` equal segments, so the first
    and last frames are not privileged and any two clips of the same video with the
    same ``num`` agree.

    Raises:
        ValueError: ``num`` < 1 or more frames requested than the video has.
    """
    _check_count(total, num)
    edges = np.linspace(0, total, num + 1)
    return [int(i) for i in np.floor((edges[:-1] + edges[1:]) / 2)]


def linspace_indices(total: int, num: int) -> list[int]:
    """``num`` frame indices from ``total`` frames by VSI-Bench's evaluation rule.

    ``floor(np.linspace(0, total - 1, num))``: evenly spaced, the first and the last frame
    always included (``total=10, num=4`` gives ``[0, 3, 6, 9]``); the rule of
    ``lmms_eval/models/llava_vid.py`` (``np.linspace(..., dtype=int)`` truncates, which is
    the floor for these non-negative values).

    Raises:
        ValueError: ``num`` < 1 or more frames requested than the video has.
    """
    _check_count(total, num)
    return [int(i) for i in np.floor(np.linspace(0, total - 1, num))]


def sample_indices(total: int, num: int, sampling: FrameSampling = "segment_centres") -> list[int]:
    """``num`` of ``total`` frame indices by the named rule (see :data:`FrameSampling`).

    Raises:
        ValueError: an unknown rule (naming the choices), or as the rules do.
    """
    if sampling == "segment_centres":
        return uniform_indices(total, num)
    if sampling == "linspace":
        return linspace_indices(total, num)
    raise ValueError(f"frame_sampling {sampling!r} is not known; expected one of {list(FRAME_SAMPLINGS)}")


def read_video(path: str | Path, num_frames: int, *, allow_fewer: bool = False,
               sampling: FrameSampling = "segment_centres") -> VideoClip:
    """Decode ``num_frames`` uniformly sampled frames of ``path`` (only those frames).

    Args:
        path: any container decord reads (mp4, avi, mkv, ...).
        num_frames: N, frames to sample.
        allow_fewer: when the video has fewer than N frames, return all of them
            instead of failing.
        sampling: which frames (:data:`FrameSampling`): segment centres, or VSI-Bench's
            ``linspace`` rule with both ends.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        ValueError: the file cannot be decoded as a video, or has fewer frames than
            requested (unless ``allow_fewer``); the message names the file.
    """
    import decord

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"video file {path} is a folder; expected a video file (.mp4, .avi, .mkv, ...)")
    if not path.is_file():
        raise FileNotFoundError(f"video file {path} not found")
    failure = None
    with native_stderr() as captured:  # decord's C++ "ERROR opening" lines: the error below says it
        try:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        except (decord.DECORDError, RuntimeError) as err:
            failure = err
    if failure is not None:
        reason = (last_reason(captured.text) or str(failure)).removeprefix(f"{path}, ")
        raise ValueError(f"video file {path} cannot be decoded: {reason}") from failure
    replay(captured)
    total = len(reader)
    if total == 0:
        raise ValueError(f"video file {path} has no frames")
    if num_frames > total and not allow_fewer:
        raise ValueError(f"video file {path} has {total} frames, fewer than the {num_frames} requested")
    indices = sample_indices(total, min(num_frames, total), sampling)
    try:
        frames = reader.get_batch(indices).asnumpy()
    except decord.DECORDError as err:
        raise ValueError(f"video file {path}: frames {indices} cannot be decoded: {err}") from err
    fps = float(reader.get_avg_fps())
    timestamps = torch.tensor([i / fps for i in indices], dtype=torch.float32)
    return VideoClip(frames=frames, timestamps=timestamps, indices=indices, fps=fps, total_frames=total)
