"""LLaVA-Video's time instruction: the video's length and its frames' times, said before the question.

LLaVA-Video was trained with it (``add_time_instruction``), and its inference demo asks with the user
turn ``<video>\\n{instruction}\\n{question}`` (training turns stored as ``<image>\\n{question}`` had
one more newline before the question; docs/parity.md), where the instruction reads, verbatim (the
missing space before "Please" included)::

    The video lasts for 12.00 seconds, and 4 frames are uniformly sampled from it. These frames are
    located at 0.00s,4.00s,8.00s,11.50s.Please answer the following questions related to this video.

Times are seconds with two decimals, the frame times joined by commas without spaces. The
original reads the length as ``total frames / fps``; a sample carries it in
``meta["video_duration"]`` (seconds; the ScanNet-export, VSI-Bench and synthetic readers set it),
else the last frame's timestamp stands in (docs/parity.md).
"""

from __future__ import annotations

from typing import Any

from thinkspace.data.schema import VIDEO_DURATION, SpatialSample


def video_duration(sample: SpatialSample) -> float:
    """Seconds: ``meta["video_duration"]`` when set, else the last frame's timestamp."""
    duration: Any = sample.meta.get(VIDEO_DURATION)
    if duration is not None:
        return float(duration)
    return float(sample.timestamps[-1]) if sample.timestamps is not None and len(sample.timestamps) else 0.0


def time_instruction(sample: SpatialSample) -> str:
    """The instruction for a video sample (see the module docstring).

    Raises:
        ValueError: the sample is not a video (no timestamps); names the sample.
    """
    if sample.timestamps is None:
        raise ValueError(f"sample {sample.id!r} ({sample.source}) has no timestamps: the time instruction "
                         "is for videos only")
    times = ",".join(f"{float(t):.2f}s" for t in sample.timestamps)
    return (f"The video lasts for {video_duration(sample):.2f} seconds, and {len(sample.timestamps)} frames are "
            f"uniformly sampled from it. These frames are located at {times}.Please answer the following "
            "questions related to this video.")
