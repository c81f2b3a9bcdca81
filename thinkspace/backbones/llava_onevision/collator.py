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
  to ``Q x Q``; the frames follow each other, then one newline token ends the video
  (``per_video``, transformers' layout), or a newline follows each pooled row (``per_row``, the
  original LLaVA-Video layout: ``Q x (Q + 1)`` per frame, :mod:`.row_newlines`). Every sampled
  frame is its own frame (``frames_per_group`` 1); its grid is ``Q x Q``, its newlines outside it.
  With ``time_instruction``, LLaVA-Video's sentence on the frames' times opens the question
  (:mod:`.time_instruction`).

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

from thinkspace.backbones.llava_onevision.row_newlines import (
    VideoNewline,
    row_placeholders,
)
from thinkspace.backbones.llava_onevision.time_instruction import time_instruction
from thinkspace.data.batch import VisualTokens
from thinkspace.data.collate import Collator, sample_rgb
from thinkspace.data.schema import FRAME_PREFIX, SpatialSample


@dataclass(frozen=True)
class OneVisionLayout:
    """How LLaVA-OneVision lays visual tokens into the sequence.

    Attributes:
        image_token_id: id of ``<image>``, repeated once per image token.
        video_token_id: id of ``<video>``, repeated once per video token.
        patches_per_side: ``P``, patch tokens along each side of one crop.
        temporal_patch: video frames per frame group (1: every frame is its own).
        video_newline: ``per_video`` (one newline after the last frame) or ``per_row`` (one after
            each pooled row of each frame).
        time_instruction: open a video's question with LLaVA-Video's time instruction.
    """

    image_token_id: int
    video_token_id: int
    patches_per_side: int
    temporal_patch: int = 1
    video_newline: VideoNewline = "per_video"
    time_instruction: bool = False

    @property
    def pooled_per_side(self) -> int:
        """``Q``: tokens along each side of one video frame after 2x2 pooling."""
        return math.ceil(self.patches_per_side / 2)

    @property
    def video_row_stride(self) -> int:
        """Placeholders per pooled row of a video frame: ``Q``, or ``Q + 1`` with its newline."""
        return self.pooled_per_side + (self.video_newline == "per_row")

    @property
    def video_tokens_per_frame(self) -> int:
        """Placeholders of one video frame: ``Q x Q`` (``per_video``) or ``Q x (Q + 1)`` (``per_row``)."""
        return self.pooled_per_side * self.video_row_stride

    def video_tokens(self, frames: int) -> int:
        """Placeholders of a video of ``frames`` frames, newlines included."""
        return frames * self.video_tokens_per_frame + (self.video_newline == "per_video")


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
        if sample.is_video and self.layout.time_instruction:  # <video>\n{instruction}\n{question}, as LLaVA-Video's demo asks
            sample = replace(sample, prompt=f"{time_instruction(sample)}\n{sample.prompt}")
        return super().prompt_text(sample)

    def process(self, text: str, sample: SpatialSample) -> Any:
        if sample.is_video:
            out = super().process(text, sample)
            if self.layout.video_newline == "per_row":
                ids = row_placeholders(out["input_ids"][0], self.layout.video_token_id, sample.num_frames,
                                       self.layout.pooled_per_side)[None]
                out = {**out, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
            prefix = sample.meta.get(FRAME_PREFIX)
            return self._interleave(out, prefix, sample.num_frames) if prefix else out
        # one list per sample: the processor treats 2+ images as a multi-image sample
        return self.processor(text=[text], images=[sample_rgb(sample)], return_tensors="pt")

    def _interleave(self, out: Any, prefix: str, num_frames: int) -> Any:
        """``out`` with the ids of ``prefix`` inserted before each video frame's block of tokens."""
        ids = out["input_ids"][0]
        prefix_ids = torch.tensor(self.processor.tokenizer(prefix, add_special_tokens=False)["input_ids"],
                                  dtype=ids.dtype)
        per_frame = self.layout.video_tokens_per_frame
        placeholders = (ids == self.layout.video_token_id).nonzero().flatten()
        if placeholders.numel() != self.layout.video_tokens(num_frames):
            raise RuntimeError(f"processor wrote {placeholders.numel()} video tokens for {num_frames} frames; the "
                               f"LLaVA-OneVision layout ({self.layout.video_newline}) accounts for "
                               f"{self.layout.video_tokens(num_frames)}")
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
            for frame, (offset, stride, (top, bottom, left, right)) in enumerate(self._frames(b, enc, positions.numel())):
                r, c = torch.meshgrid(torch.arange(top, bottom), torch.arange(left, right), indexing="ij")
                r, c = r.flatten(), c.flatten()
                cols["sample"].append(torch.full_like(r, b))
                cols["position"].append(positions[offset + r * stride + c])
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
        """Per frame of sample ``b``: (offset of its grid in the sample's placeholders, placeholders
        per grid row, content box); checks the placeholder ``count`` against the layout."""
        lay, n = self.layout, enc["num_frames"]
        p, q = lay.patches_per_side, lay.pooled_per_side
        if enc["is_video"]:
            per_frame, stride = lay.video_tokens_per_frame, lay.video_row_stride
            expected, frames = lay.video_tokens(n), [(f * per_frame, stride, (0, q, 0, q)) for f in range(n)]
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
