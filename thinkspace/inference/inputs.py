"""What a user asks about (image files, PIL images or a video file) as a ``SpatialSample``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from thinkspace.data.images import load_image, to_rgb
from thinkspace.data.schema import VIDEO_DURATION, SpatialSample

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}


#: what a question can be about: a video file, image files or PIL images, or frames ``[S, H, W, 3]``
Inputs = str | Path | Image.Image | Sequence[str | Path | Image.Image] | np.ndarray


def question_sample(inputs: Inputs, question: str, num_frames: int = 8, video: bool | None = None) -> SpatialSample:
    """A prompt-only sample of ``question`` about ``inputs``.

    Args:
        inputs: a video file (``.mp4``, ...; ``num_frames`` frames sampled uniformly), one or
            more images (paths or PIL images) seen as an unordered set, or ``[S, H, W, 3]`` uint8 frames.
        question: the question, with its options if it has any.
        num_frames: frames to sample from a video.
        video: ``True``: ``inputs`` is a video file whatever its extension (``walk.mpg``);
            ``None``: a file with a video extension (:data:`VIDEO_SUFFIXES`) is a video.

    Raises:
        FileNotFoundError: an image or video file that does not exist (named).
        ValueError: no images, an undecodable file, or a video with fewer than ``num_frames`` frames.
    """
    if video is None:
        video = isinstance(inputs, (str, Path)) and Path(inputs).suffix.lower() in VIDEO_SUFFIXES
    if video:
        if not isinstance(inputs, (str, Path)):
            raise ValueError(f"ask: a video is one file path; got {type(inputs).__name__}")
        from thinkspace.data.video import read_video

        clip = read_video(inputs, num_frames)
        return SpatialSample(id=Path(inputs).name, source="ask", task="ask", frames=clip.frames, prompt=question,
                             timestamps=clip.timestamps, meta={VIDEO_DURATION: clip.duration})
    if isinstance(inputs, np.ndarray):  # [S, H, W, 3] uint8 frames
        inputs = [Image.fromarray(frame) for frame in inputs]
    items = [inputs] if isinstance(inputs, (str, Path, Image.Image)) else list(inputs)
    if not items:
        raise ValueError("ask: no images given; pass image files, PIL images or a video file")
    frames = [to_rgb(i, f"ask: image {k}") if isinstance(i, Image.Image) else load_image(i) for k, i in enumerate(items)]
    return SpatialSample(id="ask", source="ask", task="ask", frames=frames, prompt=question)
