"""Turn a list of ``SpatialSample`` into one padded :class:`~thinkspace.data.batch.Batch`.

Each sample's prompt goes through the backbone's chat template and processor (which
expands the image / video placeholders into as many visual tokens as the image size
calls for); the response is tokenized on its own and appended, so the boundary between
prompt and response is exact and the labels mask exactly the prompt. Batches of any
size and any mix of image sets and videos are right-padded to their longest sequence.

This is the family-independent part; each backbone family's collator (in its folder under
``thinkspace/backbones/``) subclasses :class:`Collator` and says where its visual tokens
sit (:meth:`Collator.visual_tokens`) and which extra inputs its model takes
(:meth:`Collator.extra_inputs`). Helpers families share are public here: :func:`rgb`,
:func:`video_frames`, :func:`video_kwargs`, :func:`turn_end`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from thinkspace.data.batch import IGNORE_INDEX, Batch, VisualTokens
from thinkspace.data.images import image_source, to_rgb
from thinkspace.data.schema import FRAME_PREFIX, IMAGE_SLOT, IMAGE_SLOTS, SpatialSample


class Collator:
    """Encode samples with a backbone's processor; subclasses add the family's token layout.

    Args:
        processor: the backbone's processor (chat template, tokenizer, image and video
            processors).
        layout: the family's visual-token layout (its collator reads it).
        objectives: objectives by name; their ``prepare``/``targets``/``collate`` run here.
        max_length: fail on samples longer than this many tokens (None: no limit).
        with_response: append and supervise the response (False: prompts only).
        support: what the backbone supports (``thinkspace.backbones.capabilities.Support``):
            its ``check_sample`` refuses, naming the sample, what the family cannot encode, such
            as a video on a family without video (None: no checks).
    """

    def __init__(
        self,
        processor: Any,
        layout: Any,
        objectives: dict[str, Any] | None = None,
        max_length: int | None = None,
        with_response: bool = True,
        support: Any = None,
    ) -> None:
        self.processor = processor
        self.layout = layout
        self.objectives = {k: v for k, v in (objectives or {}).items() if v is not None}
        self.max_length = max_length
        self.with_response = with_response
        self.support = support
        # the end-of-turn token is supervised; the newline after it is formatting
        self.turn_end = turn_end(processor).rstrip("\n")

    def __call__(self, samples: list[SpatialSample]) -> Batch:
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        texts, meta = [s.prompt for s in samples], [dict(s.meta) for s in samples]  # as written, before edits
        for objective in self.objectives.values():
            samples = [objective.prepare(s) for s in samples]
        encoded = [self.encode(s) for s in samples]
        tokenizer = self.processor.tokenizer
        batch = _pad(encoded, pad_id=tokenizer.pad_token_id, concat=self.concat_vision)
        ids = batch["inputs"]["input_ids"]
        for objective in self.objectives.values():  # e.g. latent pads are not supervised
            batch["labels"] = objective.mask_labels(ids, batch["labels"])
        batch["inputs"].update(self.extra_inputs(ids))
        visual = self.visual_tokens(ids, encoded)
        grids = [visual.grid[visual.grid[:, 0] == b][:, 2:].tolist() for b in range(len(samples))]
        targets = {
            name: objective.collate([objective.grid_targets(s, g) for s, g in zip(samples, grids)])
            for name, objective in self.objectives.items()
        }
        return Batch(
            ids=[s.id for s in samples],
            inputs=batch["inputs"],
            labels=batch["labels"],
            prompt_lengths=batch["prompt_lengths"],
            visual=visual,
            targets=targets,
            answers=[s.answer for s in samples],
            answer_types=[s.answer_type for s in samples],
            tasks=[s.task for s in samples],
            texts=texts,
            meta=meta,
        )

    def prompt_text(self, sample: SpatialSample) -> str:
        """The chat-templated prompt, ending where the assistant's response begins."""
        prefix = sample.meta.get(FRAME_PREFIX)
        if sample.meta.get(IMAGE_SLOTS) and not sample.is_video:
            messages = [{"role": "user", "content": slotted_content(sample, prefix)}]
            return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if sample.is_video:  # the prefixes of all frame groups stand together before the video
            before = prefix * self.frame_groups(sample) if prefix else ""
            content = ([{"type": "text", "text": before}] if before else []) + [{"type": "video"}]
        else:
            content = [part for _ in range(sample.num_frames)
                       for part in ([{"type": "text", "text": prefix}] if prefix else []) + [{"type": "image"}]]
        messages = [{"role": "user", "content": [*content, {"type": "text", "text": sample.prompt}]}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def frame_groups(self, sample: SpatialSample) -> int:
        """Frames (or temporal groups) a video sample becomes: one per sampled frame by default."""
        return sample.num_frames

    def extra_inputs(self, input_ids: Tensor) -> dict[str, Tensor]:
        """Family-specific model inputs computed from the padded ``input_ids`` ``[B, L]`` (none by default)."""
        return {}

    def encode(self, sample: SpatialSample) -> dict[str, Any]:
        """Processor outputs of one sample plus its response ids and label mask."""
        if self.support is not None:
            self.support.check_sample(sample)
        out = self.process(self.prompt_text(sample), sample)
        prompt_ids = out["input_ids"][0]
        response_ids = torch.empty(0, dtype=torch.long)
        if self.with_response:
            if sample.response is None:
                raise ValueError(f"sample {sample.id!r} ({sample.source}) has no response to train on")
            response_ids = torch.tensor(
                self.processor.tokenizer(sample.response + self.turn_end, add_special_tokens=False)["input_ids"],
                dtype=torch.long,
            )
        ids = torch.cat([prompt_ids, response_ids])
        if self.max_length is not None and ids.numel() > self.max_length:
            raise ValueError(
                f"sample {sample.id!r} ({sample.source}) is {ids.numel()} tokens long, over "
                f"max_length={self.max_length}; lower the image size or raise data.max_length"
            )
        labels = torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), response_ids])
        vision = {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        return {"ids": ids, "labels": labels, "prompt_length": prompt_ids.numel(), "vision": vision,
                "is_video": sample.is_video, "num_frames": sample.num_frames}

    def process(self, text: str, sample: SpatialSample) -> Any:
        """The processor's outputs (``input_ids`` ``[1, L]`` and vision tensors) for one prompt."""
        if sample.is_video:
            return self.processor(text=[text], videos=[video_frames(sample)], return_tensors="pt",
                                  **video_kwargs(sample))
        return self.processor(text=[text], images=sample_rgb(sample), return_tensors="pt")

    def concat_vision(self, key: str, parts: list[Tensor]) -> Tensor:
        """Join one vision input (e.g. ``pixel_values``) of the batch's samples, in sample order."""
        return torch.cat(parts)

    def visual_tokens(self, input_ids: Tensor, encoded: list[dict[str, Any]]) -> VisualTokens:
        """Locate every visual token (sample, sequence position, frame, row, col) in the padded
        ``input_ids`` ``[B, L]``; ``encoded`` holds each sample's :meth:`encode` output. The family's rule."""
        raise NotImplementedError(f"{type(self).__name__} does not say where its visual tokens are")


def slotted_content(sample: SpatialSample, prefix: str | None = None) -> list[dict[str, str]]:
    """Chat content of a prompt whose :data:`IMAGE_SLOT` marks say where each frame goes, in order.

    Text pieces are stripped and empty ones dropped; ``prefix`` (a frame prefix) goes right
    before each image.

    Raises:
        ValueError: the number of slots differs from the number of frames (names the sample).
    """
    pieces = sample.prompt.split(IMAGE_SLOT)
    if len(pieces) - 1 != sample.num_frames:
        raise ValueError(f"sample {sample.id!r} ({sample.source}): the prompt has {len(pieces) - 1} {IMAGE_SLOT} "
                         f"slot(s) for {sample.num_frames} frame(s); expected one slot per frame")
    content: list[dict[str, str]] = []
    for i, piece in enumerate(pieces):
        if piece.strip():
            content.append({"type": "text", "text": piece.strip()})
        if i < sample.num_frames:
            content += ([{"type": "text", "text": prefix}] if prefix else []) + [{"type": "image"}]
    return content


def fixed_grid_tokens(input_ids: Tensor, frames: list[int], token_id: int, rows: int, cols: int,
                      mismatch: Callable[[int, int, int], str]) -> VisualTokens:
    """The visual index of a layout where every frame is one ``rows x cols`` block of ``token_id``
    placeholders, row-major, frames in order (the composed VLM, Gemma 3).

    Args:
        input_ids: ``[B, L]`` padded ids.
        frames: frames per sample (``B`` entries).
        mismatch: ``(sample, found, frames) -> message`` for a sample whose placeholder count is not
            ``frames * rows * cols`` (raised as ``RuntimeError``).
    """
    per_frame = rows * cols
    parts: dict[str, list[Tensor]] = {k: [] for k in ("sample", "position", "frame", "row", "col")}
    grids = []
    for b, count in enumerate(frames):
        positions = (input_ids[b] == token_id).nonzero().flatten()
        if positions.numel() != count * per_frame:
            raise RuntimeError(mismatch(b, positions.numel(), count))
        k = torch.arange(positions.numel())
        parts["sample"].append(torch.full_like(k, b))
        parts["position"].append(positions)
        parts["frame"].append(k // per_frame)
        parts["row"].append((k % per_frame) // cols)
        parts["col"].append(k % cols)
        grids += [[b, f, rows, cols] for f in range(count)]
    return VisualTokens(
        **{k: torch.cat(v).long() for k, v in parts.items()},
        grid=torch.tensor(grids, dtype=torch.long).reshape(-1, 4),
        frames_per_group=torch.ones(len(frames), dtype=torch.long),
    )


def turn_end(processor: Any) -> str:
    """The text the chat template puts after an assistant message (e.g. ``<|im_end|>\\n``)."""
    marker = "\x00RESPONSE\x00"
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
        {"role": "assistant", "content": [{"type": "text", "text": marker}]},
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False)
    return rendered.split(marker, 1)[1]


def rgb(frame: Any, source: str) -> Any:
    """A PIL image as RGB (:func:`~thinkspace.data.images.to_rgb`; ``source`` is what its errors name),
    anything else as a numpy array (``[H, W, 3]``)."""
    return to_rgb(frame, source) if isinstance(frame, Image.Image) else np.asarray(frame)


def sample_rgb(sample: SpatialSample) -> list[Any]:
    """The sample's frames through :func:`rgb`, a bad one's error naming its file, or the sample id and
    frame index for an image made in memory (:func:`~thinkspace.data.images.image_source`)."""
    return [rgb(frame, image_source(frame, sample.id, i)) for i, frame in enumerate(sample.frames)]


def video_frames(sample: SpatialSample) -> np.ndarray:
    """``[S, H, W, 3]`` uint8 frames of a video sample."""
    return np.stack([np.asarray(f) for f in sample_rgb(sample)])


def video_kwargs(sample: SpatialSample) -> dict[str, Any]:
    """Processor arguments for frames that are already sampled, at their real timing.

    Timestamps become frame indices of a 1 kHz clock, so the processor derives the
    sampled frame rate (and the model its temporal RoPE spacing) from real seconds.
    """
    from transformers.video_utils import VideoMetadata

    clock = 1000.0
    t = sample.timestamps.double() - float(sample.timestamps[0])
    indices = [int(round(x * clock)) for x in t.tolist()]
    # one mean frame interval past the last frame: sampled_fps = S / duration exactly
    spacing = max(1, round(indices[-1] / (len(indices) - 1))) if len(indices) > 1 else int(clock)
    metadata = VideoMetadata(total_num_frames=indices[-1] + spacing, fps=clock, frames_indices=indices)
    return {"video_metadata": [metadata], "do_sample_frames": False}


def _pad(encoded: list[dict[str, Any]], pad_id: int,
         concat: Callable[[str, list[Tensor]], Tensor] | None = None) -> dict[str, Any]:
    """Right-pad ids and labels; concatenate the vision tensors in sample order."""
    length = max(e["ids"].numel() for e in encoded)
    bsz = len(encoded)
    input_ids = torch.full((bsz, length), pad_id, dtype=torch.long)
    labels = torch.full((bsz, length), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((bsz, length), dtype=torch.long)
    for b, e in enumerate(encoded):
        n = e["ids"].numel()
        input_ids[b, :n], labels[b, :n], attention[b, :n] = e["ids"], e["labels"], 1
    inputs: dict[str, Tensor] = {"input_ids": input_ids, "attention_mask": attention}
    keys = sorted({k for e in encoded for k in e["vision"]})
    for key in keys:
        parts = [torch.as_tensor(e["vision"][key]) for e in encoded if key in e["vision"]]
        inputs[key] = concat(key, parts) if concat is not None else torch.cat(parts)
    return {
        "inputs": inputs,
        "labels": labels,
        "prompt_lengths": torch.tensor([e["prompt_length"] for e in encoded]),
    }
