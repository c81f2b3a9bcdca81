"""``ScanNetQuestions``: the part every question-over-a-ScanNet-scene adapter shares.

ScanQA and MSQA (and the scene side of SQA3D) read questions that name a ScanNet scene
and join them with that scene's posed RGB-D export (:mod:`thinkspace.data.datasets.scannet`):
``num_frames`` frames by ``frame_sampling``, timed by the capture's ``fps`` and entering as
a video by default (``as_video``), optionally axis-aligned. A subclass names the record
field holding the scene id (``scene_field``) and builds its index and samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkspace.data.datasets.benchmark import BenchmarkDataset
from thinkspace.data.datasets.scannet import SCANNET_FPS, PosedFrames, load_posed_frames
from thinkspace.data.schema import VIDEO_DURATION
from thinkspace.data.video import FrameSampling


class ScanNetQuestions(BenchmarkDataset):
    """Questions about ScanNet scenes, each joined with its scene's posed frames.

    Args:
        path: the questions file.
        scannet_root: directory of ScanNet scene exports (default: the file's directory).
        num_frames: frames per scene, spread over its valid frames.
        as_video: the frames as a video with timestamps (default) or as an image set.
        frame_sampling: ``segment_centres`` or ``linspace`` (both ends; VSI-Bench's rule).
        fps: the capture's frame rate, which times the frames (ScanNet: 30).
        axis_align: apply each scene's ``axisAlignment`` to the poses.
        skip_missing: drop questions whose scene folder is missing (count in ``skipped``).
        limit: keep the first ``limit`` questions.
    """

    scene_field = "scene_id"

    def __init__(
        self,
        path: str,
        scannet_root: str | None = None,
        num_frames: int = 32,
        as_video: bool = True,
        frame_sampling: FrameSampling = "segment_centres",
        fps: float = SCANNET_FPS,
        axis_align: bool = False,
        skip_missing: bool = False,
        limit: int | None = None,
    ) -> None:
        super().__init__(skip_missing, limit)
        self.path = Path(path)
        self.scannet_root = Path(scannet_root) if scannet_root is not None else self.path.parent
        self.num_frames = num_frames
        self.as_video = as_video
        self.frame_sampling = frame_sampling
        self.fps = fps
        self.axis_align = axis_align

    def scene_dir(self, record: dict[str, Any]) -> Path:
        return self.scannet_root / str(record[self.scene_field])

    def _media(self, entry: dict[str, Any]) -> list[Path]:
        return [self.scene_dir(entry["record"])]

    def posed_frames(self, entry: dict[str, Any]) -> PosedFrames:
        """The entry's scene frames in its world frame.

        Raises:
            FileNotFoundError: the scene folder is missing (names it, the sample and the record).
        """
        scene = self.scene_dir(entry["record"])
        if not scene.is_dir():
            raise FileNotFoundError(
                f"ScanNet scene folder {scene} not found (sample {entry['id']!r}, {entry['where']})")
        return load_posed_frames(scene, self.num_frames, entry["id"], self.axis_align, self.frame_sampling, self.fps)

    def timestamps(self, posed: PosedFrames) -> Any:
        """The frames' capture times (seconds) when they enter as a video, else None."""
        return posed.timestamps if self.as_video else None

    def video_meta(self, posed: PosedFrames) -> dict[str, Any]:
        """``{"video_duration": seconds}`` (the capture's length) when the frames enter as a video, else ``{}``."""
        return {VIDEO_DURATION: posed.duration} if self.as_video and posed.duration is not None else {}
