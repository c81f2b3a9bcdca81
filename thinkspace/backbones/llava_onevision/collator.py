"""The LLaVA-OneVision token layout: which placeholder tokens are a frame's grid tokens.

The processor expands every ``<image>`` / ``<video>`` placeholder into a block of tokens
(``transformers`` ``LlavaOnevisionProcessor``; ``P = image_size / patch_size``, e.g. 384 / 14
= 27 for the real checkpoints, and ``Q = ceil(P / 2)``):

* **one image in the sample** ("anyres"): ``P x P`` base tokens (the whole image resized to a
  square crop, row-major), then the high-resolution grid of the best-fitting
  ``image_grid_pinpoints`` crops, unpadded to the image's aspect ratio and, past about 9 crops'
  worth, downsampled, with one newline token after each of its rows. The frame's grid is the
  **base grid** (``P x P``, exact: the resize stretches the whole image onto it); the
  high-resolution and newline tokens are visual placeholders outside the index.
* **several images in the sample**: each image is padded to a square (mean colour), resized
  to one crop: ``P x P`` tokens and one newline. The frame's grid is the part of the ``P x P``
  grid covering the image, by the rule the model uses to unpad crops (``unpad_image``): for a
  wide image rows ``pad .. P - pad`` with ``pad = (P - round(P * h / w)) // 2``; padding-only
  rows (or columns) and the newline stay outside the index.
* **a video**: each frame is resized to one crop and its ``P x P`` tokens pooled (bilinear)
  to ``Q x Q``; the frames follow each other, then one newline token ends the video. Every
  sampled frame is its own frame (``frames_per_group`` 1); its grid is ``Q x Q``.

So every frame's indexed tokens form a ``rows x cols`` grid in row-major order that covers
the frame's whole image, as the objectives expect; a frame's first indexed token is not
always the first placeholder of its block.

Per-frame text (``meta["frame_prefix"]``, e.g. the camera prior's ``<|camera|>``) goes right
before each frame's tokens, for videos too: the processor expands ``<video>`` into one block,
so the prefix ids are inserted into the expanded ids before each frame's ``Q x Q`` tokens.
The model fills video placeholders in sequence order (frame 0's tokens, frame 1's, ...,
then the newline), so tokens between frames change nothing but their own positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from thinkspace.data.batch import VisualTokens
from thinkspace.data.collate import Collator, rgb
from thinkspace.data.schema import FRAME_PREFIX, SpatialSample


@dataclass(frozen=True)
class OneVisionLayout:
    """How LLaVA-OneVision lays visual tokens into the sequence.

    Attributes:
        image_token_id: id of ``<image>``, repeated once per image token.
        video_token_id: id of ``<video>``, repeated once per video token.
        patches_per_side: ``P``, patch tokens along each side of one crop.
        temporal_patch: video frames per frame group (1: every frame is its own).
    """

    image_token_id: int
    video_token_id: int
    patches_per_side: int
    temporal_patch: int = 1

    @property
    def pooled_per_side(self) -> int:
        """``Q``: tokens along each side of one video frame after 2x2 pooling."""
        return math.ceil(self.patches_per_side / 2)


def content_box(height: int, width: int, side: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` token rows/cols of a ``side x side`` grid that cover an
    ``height x width`` px image padded to a square, by ``transformers``' ``unpad_image`` rule."""
    if width > height:
        pad = (side - max(1, int(round(height * side / width, 7)))) // 2
        return pad, side - pad, 0, side
    if height > width:
        pad = (side - max(1, int(round(width * side / height, 7)))) // 2
        return 0, side, pad, side - pad
    return 0, side, 0, side


class OneVisionCollator(Collator):
    """:class:`Collator` for LLaVA-OneVision: nested images per sample, the layout above.

    Args: as :class:`Collator`, with an :class:`OneVisionLayout`.
    """

    layout: OneVisionLayout

    def prompt_text(self, sample: SpatialSample) -> str:
        if sample.is_video and sample.meta.get(FRAME_PREFIX):  # placed per frame by process()
            sample = replace(sample, meta={k: v for k, v in sample.meta.items() if k != FRAME_PREFIX})
        return super().prompt_text(sample)

    def process(self, text: str, sample: SpatialSample) -> Any:
        if sample.is_video:
            out = super().process(text, sample)
            prefix = sample.meta.get(FRAME_PREFIX)
            return self._interleave(out, prefix, sample.num_frames) if prefix else out
        # one list per sample: the processor treats 2+ images as a multi-image sample
        return self.processor(text=[text], images=[[rgb(f) for f in sample.frames]], return_tensors="pt")

    def _interleave(self, out: Any, prefix: str, num_frames: int) -> Any:
        """``out`` with the ids of ``prefix`` inserted before each video frame's ``Q x Q`` tokens."""
        ids = out["input_ids"][0]
        prefix_ids = torch.tensor(self.processor.tokenizer(prefix, add_special_tokens=False)["input_ids"],
                                  dtype=ids.dtype)
        per_frame = self.layout.pooled_per_side ** 2
        placeholders = (ids == self.layout.video_token_id).nonzero().flatten()
        if placeholders.numel() != num_frames * per_frame + 1:
            raise RuntimeError(f"processor wrote {placeholders.numel()} video tokens for {num_frames} frames; the "
                               f"LLaVA-OneVision layout accounts for {num_frames} x {per_frame} + 1")
        starts = placeholders[::per_frame][:num_frames].tolist()
        pieces, cursor = [], 0
        for start in starts:
            pieces += [ids[cursor:start], prefix_ids]
            cursor = start
        ids = torch.cat([*pieces, ids[cursor:]])[None]
        return {**out, "input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def concat_vision(self, key: str, parts: list[Tensor]) -> Tensor:
        if key == "pixel_values":  # [images, crops, 3, H, W]: zero-pad the crops (the model slices them off)
            crops = max(p.shape[1] for p in parts)
            parts = [torch.nn.functional.pad(p, (0, 0, 0, 0, 0, 0, 0, crops - p.shape[1])) for p in parts]
        if key == "pixel_values_videos" and len({p.shape[1] for p in parts}) > 1:
            raise ValueError(
                f"LLaVA-OneVision batches videos as one [videos, frames, 3, H, W] tensor, so every video in a "
                f"batch needs the same frame count; got {[p.shape[1] for p in parts]} frames"
            )
        return torch.cat(parts)

    def visual_tokens(self, input_ids: Tensor, encoded: list[dict[str, Any]]) -> VisualTokens:
        """Locate every frame's grid tokens: sample, sequence position, frame, row, col."""
        lay = self.layout
        cols: dict[str, list[Tensor]] = {k: [] for k in ("sample", "position", "frame", "row", "col")}
        grids = []
        for b, enc in enumerate(encoded):
            token_id = lay.video_token_id if enc["is_video"] else lay.image_token_id
            positions = (input_ids[b] == token_id).nonzero().flatten()
            for frame, (offset, side, (top, bottom, left, right)) in enumerate(self._frames(b, enc, positions.numel())):
                r, c = torch.meshgrid(torch.arange(top, bottom), torch.arange(left, right), indexing="ij")
                r, c = r.flatten(), c.flatten()
                cols["sample"].append(torch.full_like(r, b))
                cols["position"].append(positions[offset + r * side + c])
                cols["frame"].append(torch.full_like(r, frame))
                cols["row"].append(r - top)
                cols["col"].append(c - left)
                grids.append([b, frame, bottom - top, right - left])
        return VisualTokens(
            **{k: torch.cat(v).long() for k, v in cols.items()},
            grid=torch.tensor(grids, dtype=torch.long).reshape(-1, 4),
            frames_per_group=torch.full((len(encoded),), lay.temporal_patch, dtype=torch.long),
        )

    def _frames(self, b: int, enc: dict[str, Any], count: int) -> list[tuple[int, int, tuple[int, int, int, int]]]:
        """Per frame of sample ``b``: (offset of its grid in the sample's placeholders, grid
        side, content box); checks the placeholder ``count`` against the layout."""
        p, q, n = self.layout.patches_per_side, self.layout.pooled_per_side, enc["num_frames"]
        if enc["is_video"]:
            expected, frames = n * q * q + 1, [(f * q * q, q, (0, q, 0, q)) for f in range(n)]
        elif n == 1:  # anyres: base grid first, then high-resolution rows; their count varies
            expected, frames = max(count, p * p), [(0, p, (0, p, 0, p))]
        else:
            sizes = enc["vision"]["image_sizes"].tolist()
            expected = n * (p * p + 1)
            frames = [(f * (p * p + 1), p, content_box(h, w, p)) for f, (h, w) in enumerate(sizes)]
        if count != expected:
            raise RuntimeError(
                f"sample {b}: processor wrote {count} visual tokens but the LLaVA-OneVision layout of "
                f"{n} {'video frame' if enc['is_video'] else 'image'}(s) accounts for {expected}"
            )
        return frames
