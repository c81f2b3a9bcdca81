"""The composed VLM's token layout: every frame one ``rows x cols`` block of ``<image>`` tokens.

The processor (:mod:`thinkspace.backbones.composed.processor`) expands each image (or each
video frame) into ``rows * cols`` consecutive ``<image>`` tokens, row-major over the frame's
pooled patch grid; frames follow each other in order. Every sampled video frame is its own
frame (``frames_per_group`` 1); the model has no temporal position encoding, so timestamps
do not reach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from thinkspace.data.batch import VisualTokens
from thinkspace.data.collate import (
    Collator,
    fixed_grid_tokens,
    sample_rgb,
    video_frames,
)
from thinkspace.data.schema import SpatialSample


@dataclass(frozen=True)
class ComposedLayout:
    """How the composed VLM lays visual tokens into the sequence.

    Attributes:
        image_token_id: id of ``<image>``, one per visual token (images and video frames).
        rows: visual-token rows of one frame (after pooling).
        cols: visual-token columns of one frame.
        video_token_id: never in a sequence (-1): video frames use ``<image>`` too.
    """

    image_token_id: int
    rows: int
    cols: int
    video_token_id: int = -1


class ComposedCollator(Collator):
    """:class:`Collator` for the composed VLM (layout above).

    Args: as :class:`Collator`, with a :class:`ComposedLayout`.
    """

    layout: ComposedLayout

    def process(self, text: str, sample: SpatialSample) -> Any:
        if sample.is_video:
            return self.processor(text=[text], videos=[video_frames(sample)])
        return self.processor(text=[text], images=sample_rgb(sample))

    def visual_tokens(self, input_ids: Tensor, encoded: list[dict[str, Any]]) -> VisualTokens:
        """Every frame's ``rows x cols`` tokens in order: sample, position, frame, row, col."""
        lay = self.layout
        return fixed_grid_tokens(
            input_ids, [e["num_frames"] for e in encoded], lay.image_token_id, lay.rows, lay.cols,
            lambda b, found, frames: f"sample {b}: {found} <image> tokens but {frames} frame(s) of "
                                     f"{lay.rows} x {lay.cols} visual tokens")
