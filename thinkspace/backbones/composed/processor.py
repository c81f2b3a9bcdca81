"""Prompts and pixels for the composed VLM: the causal LM's tokenizer plus timm's preprocessing.

Every ``<image>`` in a prompt becomes ``rows x cols`` ``<image>`` tokens (one per pooled
visual token of a frame); a ``<video>`` placeholder becomes that block once per frame.
Frames go through the encoder's own timm transform (its interpolation, mean and std), set to
resize the whole frame (no crop) to the encoder's input size, so each frame's token grid covers
the whole frame, as the layout objective and the cues expect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from thinkspace.backbones.composed.config import IMAGE_TOKEN
from thinkspace.backbones.composed.encoder import EncoderGeometry

VIDEO_PLACEHOLDER = "<video>"  # expanded to one <image> block per frame before tokenizing

#: ChatML, for a language model whose tokenizer has no chat template of its own.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


class ComposedProcessor:
    """Tokenizer + frame preprocessing of a composed VLM.

    Args:
        tokenizer: the causal LM's tokenizer (``<image>`` is added as a special token).
        geometry: the encoder's input size and normalisation.
        token_grid: ``(rows, cols)`` visual tokens per frame after pooling.
    """

    def __init__(self, tokenizer: Any, geometry: EncoderGeometry, token_grid: tuple[int, int]) -> None:
        if IMAGE_TOKEN not in tokenizer.get_vocab():
            tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
        if tokenizer.pad_token is None:  # batches are padded; a plain LM may lack a pad token
            tokenizer.pad_token = tokenizer.eos_token
        if not tokenizer.chat_template:
            tokenizer.chat_template = CHATML_TEMPLATE
        self.tokenizer = tokenizer
        self.geometry = geometry
        self.token_grid = (int(token_grid[0]), int(token_grid[1]))
        self.image_token = IMAGE_TOKEN
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
        self.transform = whole_frame_transform(geometry)

    @property
    def tokens_per_frame(self) -> int:
        return self.token_grid[0] * self.token_grid[1]

    def apply_chat_template(self, messages: list[dict[str, Any]], tokenize: bool = False,
                            add_generation_prompt: bool = False, **kwargs: Any) -> str:
        """Render multimodal messages (content parts ``text``/``image``/``video``) with the
        tokenizer's own chat template: each image part becomes ``<image>\\n``, a video part
        ``<video>\\n``, so the template sees plain string contents."""
        flat = [{"role": m["role"], "content": _flatten(m["content"])} for m in messages]
        return self.tokenizer.apply_chat_template(flat, tokenize=tokenize, add_generation_prompt=add_generation_prompt,
                                                  **kwargs)

    def __call__(self, text: list[str], images: list[list[Any]] | list[Any] | None = None,
                 videos: list[Any] | None = None, return_tensors: str = "pt", **unused: Any) -> dict[str, Tensor]:
        """Encode one prompt with its frames.

        Args:
            text: one rendered prompt (a list of length 1).
            images: that prompt's images (PIL or ``[H, W, 3]`` uint8 arrays), one ``<image>`` each.
            videos: one ``[S, H, W, 3]`` array (or list of frames) for the prompt's ``<video>``.

        Returns:
            ``input_ids`` ``[1, L]``, ``attention_mask`` ``[1, L]`` and, with frames,
            ``pixel_values`` ``[F, 3, H, W]`` (normalised).
        """
        if len(text) != 1:
            raise ValueError(f"ComposedProcessor encodes one prompt at a time, got {len(text)}")
        prompt = text[0]
        frames: list[Any] = []
        block = self.image_token * self.tokens_per_frame
        if videos:
            video = list(videos[0])
            if prompt.count(VIDEO_PLACEHOLDER) != 1:
                raise ValueError(f"a video prompt needs exactly one {VIDEO_PLACEHOLDER}, found "
                                 f"{prompt.count(VIDEO_PLACEHOLDER)}")
            frames = video
            prompt = prompt.replace(VIDEO_PLACEHOLDER, block * len(video))
        elif images:
            frames = list(images)
            if prompt.count(self.image_token) != len(frames):
                raise ValueError(f"prompt has {prompt.count(self.image_token)} {self.image_token} placeholders "
                                 f"for {len(frames)} images")
            prompt = prompt.replace(self.image_token, block)
        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if frames:
            out["pixel_values"] = torch.stack([self.preprocess(f) for f in frames])
        return out

    def preprocess(self, frame: Any) -> Tensor:
        """``[3, H, W]`` float frame: resized whole to the encoder's size and normalised by
        :func:`whole_frame_transform` (a PIL image or an ``[H, W, 3]`` uint8 array in)."""
        array = np.asarray(frame.convert("RGB") if hasattr(frame, "convert") else frame)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"expected an RGB frame [H, W, 3], got shape {array.shape}")
        return self.transform(Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)))

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)


def whole_frame_transform(geometry: EncoderGeometry) -> Any:
    """timm's evaluation transform of the encoder (its data config's interpolation, mean and
    std): PIL image -> normalised ``[3, H, W]`` at ``geometry.image_size``. ``crop_mode="squash"``
    with ``crop_pct=1`` resizes the whole frame and crops nothing."""
    from timm.data import create_transform

    return create_transform(input_size=(3, *geometry.image_size), is_training=False,
                            interpolation=geometry.interpolation, mean=tuple(geometry.mean),
                            std=tuple(geometry.std), crop_pct=1.0, crop_mode="squash")


def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "image" or "image" in part:
            parts.append(IMAGE_TOKEN + "\n")
        elif kind == "video" or "video" in part:
            parts.append(VIDEO_PLACEHOLDER + "\n")
        else:
            parts.append(part.get("text", ""))
    return "".join(parts)
