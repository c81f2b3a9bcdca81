"""What the collator hands the model: a padded :class:`Batch` and where its visual tokens are.

The data pipeline's output types; backbones read them, nothing here imports a backbone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

IGNORE_INDEX = -100


@dataclass
class VisualTokens:
    """Where every visual token of a batch sits, flat over the batch's N visual tokens.

    A "frame" is one image of an image set, or one temporal group of a video: Qwen-VL
    backbones merge ``temporal_patch_size`` (2) consecutive video frames into one grid of
    tokens, so video frame group ``g`` covers sampled frames ``2g`` and ``2g + 1``
    (the last group repeats the last frame when S is odd). ``frames_per_group`` says
    how many sampled frames each of a sample's frames spans. LLaVA-OneVision gives every
    video frame its own grid (``frames_per_group`` 1); which of its placeholder tokens
    belong to a frame's grid is described in
    :mod:`thinkspace.backbones.llava_onevision.collator`.

    Attributes:
        sample: ``[N]`` index of the sample in the batch.
        position: ``[N]`` index of the token in the sequence.
        frame: ``[N]`` frame (or temporal group) index within its sample.
        row: ``[N]`` row of the token in its frame's merged token grid.
        col: ``[N]`` column of the token in its frame's merged token grid.
        grid: ``[F, 4]`` one row per frame of the batch, in order:
            (sample, frame, rows, cols) of its merged token grid.
        frames_per_group: ``[B]`` sampled frames per frame group (1 for images).
    """

    sample: Tensor
    position: Tensor
    frame: Tensor
    row: Tensor
    col: Tensor
    grid: Tensor
    frames_per_group: Tensor

    def __len__(self) -> int:
        return int(self.position.numel())

    def positions(self, sample: int, frame: int | None = None) -> Tensor:
        """Sequence positions ``[n]`` of one sample's visual tokens (of one frame if given)."""
        keep = self.sample == sample
        if frame is not None:
            keep &= self.frame == frame
        return self.position[keep]

    def gather(self, hidden: Tensor) -> Tensor:
        """Hidden states ``[N, D]`` of every visual token, from ``hidden`` ``[B, L, D]``."""
        return hidden[self.sample, self.position]

    def to(self, device: torch.device | str) -> VisualTokens:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass
class Batch:
    """A collated batch: model inputs, labels, where the visual tokens are, targets.

    Attributes:
        ids: sample ids, ``B`` of them (for error messages and predictions).
        inputs: keyword arguments of the Hugging Face model: ``input_ids`` ``[B, L]``,
            ``attention_mask`` ``[B, L]``, ``mm_token_type_ids`` ``[B, L]`` and, when
            present, ``pixel_values``, ``image_grid_thw``, ``pixel_values_videos``,
            ``video_grid_thw``, ``second_per_grid_ts`` (Qwen-VL); ``pixel_values``
            ``[images, crops, 3, H, W]``, ``image_sizes``, ``batch_num_images``,
            ``pixel_values_videos`` ``[videos, frames, 3, H, W]`` (LLaVA-OneVision).
        labels: ``[B, L]`` token ids to predict, ``-100`` on the prompt and padding.
        prompt_lengths: ``[B]`` tokens before the response starts (no padding included).
        visual: positions of the visual tokens.
        targets: per objective name, whatever its ``collate`` returned.
        answers: gold answers (letter, number or text), for metrics.
        answer_types: ``"choice"``, ``"number"`` or ``"text"`` per sample.
        tasks: task or setting name per sample, for per-task metrics.
    """

    ids: list[str]
    inputs: dict[str, Tensor]
    labels: Tensor
    prompt_lengths: Tensor
    visual: VisualTokens
    targets: dict[str, Any] = field(default_factory=dict)
    answers: list[Any] = field(default_factory=list)
    answer_types: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str) -> Batch:
        """Move every tensor (including targets) to ``device``; Lightning calls this."""
        return replace(
            self,
            inputs={k: v.to(device) for k, v in self.inputs.items()},
            labels=self.labels.to(device),
            prompt_lengths=self.prompt_lengths.to(device),
            visual=self.visual.to(device),
            targets={k: _to(v, device) for k, v in self.targets.items()},
        )


def _to(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, Tensor) or hasattr(value, "to"):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    return value
