"""Prompts and pixels for the composed VLM: the causal LM's tokenizer plus timm's preprocessing.

Every ``<image>`` in a prompt becomes ``rows x cols`` ``<image>`` tokens (one per pooled
visual token of a frame); a ``<video>`` placeholder becomes that block once per frame.
Frames are resized whole (no crop) to the encoder's input size, so each frame's token grid
covers the whole frame, as the layout objective and the cues expect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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
        """``[3, H, W]`` float frame: RGB in ``[0, 1]``, resized whole to the encoder's size
        with timm's filter, normalised with timm's mean and std."""
        array = np.asarray(frame.convert("RGB") if hasattr(frame, "convert") else frame)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"expected an RGB frame [H, W, 3], got shape {array.shape}")
        x = torch.from_numpy(np.array(array, dtype=np.uint8))  # a copy: PIL arrays are read-only
        x = x.permute(2, 0, 1).float()[None] / 255.0
        mode = self.geometry.interpolation if self.geometry.interpolation in ("bilinear", "bicubic") else "bilinear"
        x = F.interpolate(x, size=tuple(self.geometry.image_size), mode=mode, align_corners=False, antialias=True)[0]
        mean = torch.tensor(self.geometry.mean).view(3, 1, 1)
        std = torch.tensor(self.geometry.std).view(3, 1, 1)
        return (x.clamp(0, 1) - mean) / std

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)


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
