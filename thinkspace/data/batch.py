"""What the collator hands the model: a padded :class:`Batch` and where its visual tokens are.

The data pipeline's output types; backbones read them, nothing here imports a backbone. The one
home of batch reshaping: :meth:`Batch.prompts` (the prompts alone, left-padded for decoding) and
:meth:`Batch.repeat` (each prompt's rows repeated for a group of completions).
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

    def shifted(self, shift: Tensor) -> VisualTokens:
        """The index with sample ``b``'s positions moved right by ``shift[b]`` (``[B]`` tokens)."""
        return replace(self, position=self.position + shift.to(self.position.device)[self.sample])

    def repeat(self, group: int, samples: list[int] | None = None) -> VisualTokens:
        """The index of samples ``samples`` (default all ``B``) for ``len(samples) x group`` rows:
        sample ``samples[i]`` becomes rows ``i * group ... i * group + group - 1``, each with that
        sample's tokens (positions, frames, grid rows and columns unchanged)."""
        names = ("sample", "position", "frame", "row", "col")
        parts: dict[str, list[Tensor]] = {name: [] for name in names}
        grids = []
        samples = list(range(len(self.frames_per_group))) if samples is None else samples
        for i, b in enumerate(samples):
            keep = self.sample == b
            frames = self.grid[self.grid[:, 0] == b]
            for g in range(group):
                row = i * group + g
                for name in names:
                    value = getattr(self, name)[keep]
                    parts[name].append(torch.full_like(value, row) if name == "sample" else value)
                grids.append(torch.cat([torch.full_like(frames[:, :1], row), frames[:, 1:]], 1))
        return VisualTokens(**{name: torch.cat(v) for name, v in parts.items()}, grid=torch.cat(grids),
                            frames_per_group=self.frames_per_group[samples].repeat_interleave(group))


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
        texts: each sample's prompt as the dataset wrote it (before any objective or cue edited it;
            what GRPO's reward functions receive as ``prompts``).
        meta: each sample's metadata (``SpatialSample.meta``, a copy; the rewards' ``meta`` field).
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
    texts: list[str] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def prompts(self, pad_id: int) -> Batch:
        """The batch's prompts alone, left-padded for decoding (``[B, Lp]``, ``Lp`` the longest
        prompt); visual positions shifted to match, labels all ignored, ``prompt_lengths`` ``Lp``.

        Every per-token input (``[B, L]`` like ``input_ids``: the attention mask, Qwen-VL's
        ``mm_token_type_ids``) is cut and left-padded the same way: ids with ``pad_id``, the rest with 0.
        """
        ids = self.inputs["input_ids"]
        lengths = self.prompt_lengths
        width = int(lengths.max())
        shift = width - lengths  # [B] left padding per sample
        per_token = [k for k, v in self.inputs.items()
                     if v.shape == ids.shape and k not in ("input_ids", "attention_mask")]
        new_ids = ids.new_full((len(lengths), width), pad_id)
        new = {k: torch.zeros_like(new_ids, dtype=self.inputs[k].dtype) for k in per_token}
        for b, n in enumerate(lengths.tolist()):
            new_ids[b, width - n:] = ids[b, :n]
            for k in per_token:
                new[k][b, width - n:] = self.inputs[k][b, :n]
        mask = (torch.arange(width, device=ids.device)[None] >= shift.to(ids.device)[:, None]).to(ids.dtype)
        inputs = dict(self.inputs, **new, input_ids=new_ids, attention_mask=mask)
        return replace(self, inputs=inputs, labels=torch.full_like(new_ids, IGNORE_INDEX),
                       prompt_lengths=torch.full_like(lengths, width), visual=self.visual.shifted(shift))

    def repeat(self, group: int, samples: list[int] | None = None) -> Batch:
        """Samples ``samples`` (default all ``B``) as ``len(samples) x group`` rows, sample ``samples[i]``
        giving rows ``i * group ... i * group + group - 1`` (a GRPO group of completions per prompt).

        Repeated: the per-sample lists (ids, answers, answer types, tasks, texts, meta), the visual
        index, labels, prompt lengths and the per-token inputs (``[B, L]`` like ``input_ids``). The
        image inputs (``pixel_values``, grids) and ``targets`` stay as they are: the rows describe
        completions of prompts that were run once (their KV cache repeated,
        :meth:`~thinkspace.generation.prefill.Prefill.repeat`), not a batch to run again.
        """
        samples = list(range(len(self))) if samples is None else list(samples)

        def rows(xs: list[Any]) -> list[Any]:
            return [xs[b] for b in samples for _ in range(group)] if xs else xs

        index = torch.tensor(samples, device=self.labels.device).repeat_interleave(group)
        ids = self.inputs["input_ids"]
        inputs = {k: v[index.to(v.device)] if v.shape == ids.shape else v for k, v in self.inputs.items()}
        return replace(self, ids=rows(self.ids), inputs=inputs, labels=self.labels[index],
                       prompt_lengths=self.prompt_lengths[index.to(self.prompt_lengths.device)],
                       visual=self.visual.repeat(group, samples), answers=rows(self.answers),
                       answer_types=rows(self.answer_types), tasks=rows(self.tasks), texts=rows(self.texts),
                       meta=rows(self.meta))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor (including targets: teacher features, prepared pixels) to ``device``.

        ``SpatialModule.transfer_batch_to_device`` calls this with ``non_blocking`` on CUDA, where a
        pinned batch (:meth:`pin_memory`) copies while the host goes on.
        """
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Every tensor (targets included) in page-locked memory; the data loader's ``pin_memory`` calls this."""
        return self._map(lambda t: t.pin_memory() if hasattr(t, "pin_memory") else t)

    def _map(self, move: Any) -> Batch:
        return replace(
            self,
            inputs={k: move(v) for k, v in self.inputs.items()},
            labels=move(self.labels),
            prompt_lengths=move(self.prompt_lengths),
            visual=replace(self.visual, **{f.name: move(getattr(self.visual, f.name)) for f in fields(self.visual)}),
            targets={k: _apply(v, move) for k, v in self.targets.items()},
        )


def _apply(value: Any, move: Any) -> Any:
    """``move`` applied to every tensor in ``value``, and to objects that move themselves (a ``to``
    method: :class:`~thinkspace.teachers.base.TeacherFeatures`)."""
    if isinstance(value, Tensor) or hasattr(value, "to"):
        return move(value)
    if isinstance(value, dict):
        return {k: _apply(v, move) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_apply(v, move) for v in value)
    return value
