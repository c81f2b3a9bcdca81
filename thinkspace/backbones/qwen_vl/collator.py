"""The Qwen-VL token layout: grids from ``image_grid_thw`` / ``video_grid_thw``, merged 2 x 2.

The processor expands each image into ``t * h * w / merge**2`` ``<|image_pad|>`` tokens
(``t`` 1, ``h x w`` the patch grid of the smart-resized image) and a video into one block of
``<|video_pad|>`` tokens, ``temporal_patch`` (2) consecutive frames merged into one temporal
group, each group a ``rows x cols`` grid in row-major order. The model's 3D RoPE reads
``mm_token_type_ids`` (text 0, image 1, video 2), written here. A video must stay one
contiguous block for that RoPE, so per-frame prefixes (``meta["frame_prefix"]``) of all its
temporal groups stand together right before the block, in group order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from thinkspace.data.batch import VisualTokens
from thinkspace.data.collate import Collator
from thinkspace.data.schema import SpatialSample


@dataclass(frozen=True)
class QwenVLLayout:
    """How a Qwen-VL model lays visual tokens into the sequence.

    Attributes:
        image_token_id: id of the placeholder repeated once per image token.
        video_token_id: id of the placeholder repeated once per video token.
        spatial_merge: patches merged along each image axis into one token.
        temporal_patch: video frames merged into one temporal group.
    """

    image_token_id: int
    video_token_id: int
    spatial_merge: int
    temporal_patch: int


class QwenVLCollator(Collator):
    """:class:`Collator` for Qwen2-VL, Qwen2.5-VL and Qwen3-VL (layout above).

    Args: as :class:`Collator`, with a :class:`QwenVLLayout`.
    """

    layout: QwenVLLayout

    def frame_groups(self, sample: SpatialSample) -> int:
        """Temporal groups of a video: ``ceil(frames / temporal_patch)`` (the last repeats the last frame)."""
        return -(-sample.num_frames // self.layout.temporal_patch)

    def extra_inputs(self, input_ids: Tensor) -> dict[str, Tensor]:
        """``mm_token_type_ids`` ``[B, L]``: text 0, image 1, video 2 (what the 3D RoPE indexing reads)."""
        lay = self.layout
        return {"mm_token_type_ids": (input_ids == lay.image_token_id).int() + 2 * (
            input_ids == lay.video_token_id).int()}

    def visual_tokens(self, input_ids: Tensor, encoded: list[dict[str, Any]]) -> VisualTokens:
        """Locate every visual token: sample, sequence position, frame (group), row, col."""
        lay = self.layout
        cols: dict[str, list[Tensor]] = {k: [] for k in ("sample", "position", "frame", "row", "col")}
        grids, per_group = [], []
        for b, enc in enumerate(encoded):
            key, token_id = ("video_grid_thw", lay.video_token_id) if enc["is_video"] else (
                "image_grid_thw", lay.image_token_id)
            positions = (input_ids[b] == token_id).nonzero().flatten()
            frame_offset, cursor = 0, 0
            for t, h, w in enc["vision"][key].tolist():
                rows, cols_ = h // lay.spatial_merge, w // lay.spatial_merge
                n = t * rows * cols_
                k = torch.arange(n)
                cols["sample"].append(torch.full((n,), b))
                cols["position"].append(positions[cursor:cursor + n])
                cols["frame"].append(frame_offset + k // (rows * cols_))
                cols["row"].append((k % (rows * cols_)) // cols_)
                cols["col"].append(k % cols_)
                grids += [[b, frame_offset + g, rows, cols_] for g in range(t)]
                frame_offset, cursor = frame_offset + t, cursor + n
            if cursor != positions.numel():
                raise RuntimeError(
                    f"sample {b}: processor wrote {positions.numel()} visual tokens but the grids account for {cursor}"
                )
            per_group.append(lay.temporal_patch if enc["is_video"] else 1)
        return VisualTokens(
            **{k: torch.cat(v).long() for k, v in cols.items()},
            grid=torch.tensor(grids, dtype=torch.long).reshape(-1, 4),
            frames_per_group=torch.tensor(per_group, dtype=torch.long),
        )

