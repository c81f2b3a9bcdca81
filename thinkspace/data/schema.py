"""The one sample type every dataset produces and every objective consumes.

World frame, everywhere in thinkspace: metres, gravity-aligned with +z up, origin at
the first frame's camera centre, +x along that camera's viewing direction projected onto
the floor plane (so the first camera has yaw 0), +y to its left. Yaw is measured in
radians about +z, counter-clockwise seen from above, 0 along +x. Cameras follow OpenCV
axes (x right, y down, z forward). Every dataset adapter converts into this frame and
says so in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

AnswerType = Literal["choice", "number", "text"]

#: ``SpatialSample.meta`` key: text the collator places right before each frame's
#: visual tokens (LLaVA-OneVision video: before each frame inside the block; Qwen-VL video,
#: one block: once per temporal group, all before the block). Input cues use it for their
#: placeholder tokens.
FRAME_PREFIX = "frame_prefix"

#: ``SpatialSample.meta`` key: when true, the prompt holds one :data:`IMAGE_SLOT` per frame and
#: the collator places each image at its slot (image sets only): the text between slots is
#: stripped and empty pieces dropped, as Ego3D-Bench's ``convert_to_qwen_input`` builds its
#: messages ("Front view: <image>" puts the front view right after its label).
IMAGE_SLOTS = "image_slots"
IMAGE_SLOT = "<image>"

#: ``SpatialSample.meta`` key: a video's whole length in seconds (its frame count / frame rate), which
#: a reader sets where it knows it; LLaVA-Video's time instruction says it (docs/parity.md).
VIDEO_DURATION = "video_duration"

#: ``SpatialSample.meta`` key: the ``data.<split>`` (train, val, test, predict) a loader of
#: :class:`~thinkspace.data.datamodule.SpatialDataModule` read the sample from; an error about the
#: sample can then name the split (a teacher cache filled without ``--split test``, say).
DATA_SPLIT = "data_split"


@dataclass
class Geometry:
    """Per-frame camera geometry of a sample's S frames.

    Attributes:
        intrinsics: ``[S, 3, 3]`` pinhole matrices in pixels of the frame as stored.
        cam_from_world: ``[S, 4, 4]`` world-to-camera transforms (OpenCV camera axes).
        depth: ``[S, H, W]`` metric depth in metres along the camera z axis, 0 = invalid;
            ``None`` when the source has no depth.
    """

    intrinsics: torch.Tensor
    cam_from_world: torch.Tensor
    depth: torch.Tensor | None = None

    def __post_init__(self) -> None:
        s = self.intrinsics.shape[0]
        if self.intrinsics.shape != (s, 3, 3):
            raise ValueError(f"Geometry.intrinsics must be [S, 3, 3], got {tuple(self.intrinsics.shape)}")
        if self.cam_from_world.shape != (s, 4, 4):
            raise ValueError(
                f"Geometry.cam_from_world must be [S, 4, 4] with S={s}, got {tuple(self.cam_from_world.shape)}"
            )
        if self.depth is not None and (self.depth.ndim != 3 or self.depth.shape[0] != s):
            raise ValueError(f"Geometry.depth must be [S, H, W] with S={s}, got {tuple(self.depth.shape)}")


@dataclass
class Situation:
    """Where the agent stands and faces, in the world frame.

    Attributes:
        position: ``(x, y)`` in metres.
        yaw: heading in radians about +z (0 along +x, counter-clockwise).
        text: the situation as the agent describes it ("I am standing by ...").
    """

    position: tuple[float, float]
    yaw: float
    text: str


@dataclass
class SpatialSample:
    """One question about one scene, seen as an unordered image set or a video.

    Attributes:
        id: unique id within its source; error messages name it.
        source: dataset name, e.g. ``"mindcube"`` or ``"synthetic"``.
        task: setting or question type, e.g. ``"rotation"``, ``"object_count"``.
        frames: S RGB views or sampled video frames: PIL images, or a uint8 array
            ``[S, H, W, 3]``.
        prompt: the question with its options, as the user sees it.
        response: target text for supervised training (may hold a latent slot marker).
        answer: gold answer: option letter, number or free text.
        answer_type: how ``answer`` is scored.
        timestamps: ``[S]`` seconds for video frames; ``None`` for unordered views.
        geometry: camera geometry of the frames, when the source has it.
        situation: the agent's situation, when the question is situated.
        meta: anything else a dataset wants to carry (options, scene name, ...).
    """

    id: str
    source: str
    task: str
    frames: list[Image.Image] | np.ndarray
    prompt: str
    response: str | None = None
    answer: str | float | None = None
    answer_type: AnswerType = "choice"
    timestamps: torch.Tensor | None = None
    geometry: Geometry | None = None
    situation: Situation | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.frames) == 0:
            raise ValueError(f"sample {self.id!r} ({self.source}) has zero frames; expected at least one image")
        if self.timestamps is not None and len(self.timestamps) != len(self.frames):
            raise ValueError(
                f"sample {self.id!r}: {len(self.timestamps)} timestamps for {len(self.frames)} frames"
            )

    @property
    def is_video(self) -> bool:
        """Video frames carry timestamps; unordered views do not."""
        return self.timestamps is not None

    @property
    def num_frames(self) -> int:
        return len(self.frames)
