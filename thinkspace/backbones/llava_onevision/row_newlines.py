"""Where a LLaVA-OneVision video's newline embeddings go: once per video, or after every pooled row.

Two layouts of a video of ``F`` frames, each pooled to ``Q x Q`` tokens (``Q = ceil(P / 2)``, 14 for
the 384 px SigLIP checkpoints):

* ``per_video`` (transformers' ``LlavaOnevisionModel.get_video_features`` and processor, and the
  original code's ``mm_newline_position: one_token``): the frames' ``F x Q x Q`` tokens, then one
  ``image_newline`` for the whole video: ``F * Q * Q + 1`` tokens (6,273 for 32 frames).
* ``per_row`` (the original LLaVA-NeXT ``mm_newline_position: grid``, which LLaVA-Video was trained
  with): every pooled row of ``Q`` tokens is followed by ``image_newline``: ``Q x (Q + 1)`` tokens
  per frame (14 x 15 = 210), ``F * Q * (Q + 1)`` per video (6,720 for 32 frames), no extra token.

transformers has only the first. :func:`install_row_newlines` re-lays the model's video features
into the second; the collator writes the matching placeholders (:func:`row_placeholders`).
"""

from __future__ import annotations

import types
from typing import Any, Literal

import torch
from torch import Tensor, nn

VideoNewline = Literal["per_video", "per_row"]
# the original LLaVA-NeXT config key (llava/model/llava_arch.py) and its values that have a layout here
CONFIG_KEY = "mm_newline_position"
FROM_CONFIG: dict[str, VideoNewline] = {"one_token": "per_video", "grid": "per_row"}


def video_newline_setting(config: Any, value: VideoNewline | None, where: str) -> VideoNewline:
    """``value``, or when None the checkpoint's ``mm_newline_position`` (``grid``: ``per_row``,
    ``one_token``: ``per_video``), or ``per_video`` (transformers' layout) when config.json has none.

    Raises:
        ValueError: an unknown ``value`` or config value (names ``where``, the checkpoint).
    """
    if value is None:
        stored = getattr(config, CONFIG_KEY, None)
        if stored is None:
            return "per_video"
        if stored not in FROM_CONFIG:
            raise ValueError(f"{where}: {CONFIG_KEY} {stored!r} in config.json has no layout here; "
                             f"expected one of {sorted(FROM_CONFIG)}, or set video_newline")
        return FROM_CONFIG[stored]
    if value not in ("per_video", "per_row"):
        raise ValueError(f"{where}: video_newline {value!r}; expected 'per_video' or 'per_row'")
    return value


def newline_per_row(features: Tensor, frames: int, side: int) -> Tensor:
    """Re-lay transformers' video features into the per-row layout.

    Args:
        features: ``[B, F * Q * Q + 1, D]``, the frames' pooled tokens row-major, then the newline.
        frames: ``F``.
        side: ``Q``.

    Returns:
        ``[B, F * Q * (Q + 1), D]``: each pooled row of each frame followed by the newline.
    """
    batch, length, dim = features.shape
    if length != frames * side * side + 1:
        raise ValueError(f"video features of length {length} for {frames} frames of {side} x {side} tokens; "
                         f"expected {frames * side * side + 1} (frames, then one newline)")
    grid = features[:, :-1].reshape(batch, frames, side, side, dim)
    newline = features[:, -1:].reshape(batch, 1, 1, 1, dim).expand(batch, frames, side, 1, dim)
    return torch.cat([grid, newline], dim=3).reshape(batch, frames * side * (side + 1), dim)


def _row_video_features(self: nn.Module, pixel_values_videos: Tensor, *args: Any, **kwargs: Any) -> Any:
    """``get_video_features`` of the per-row layout (bound to a ``LlavaOnevisionModel``)."""
    out = type(self).get_video_features(self, pixel_values_videos, *args, **kwargs)
    side = self.config.vision_config.image_size // self.config.vision_config.patch_size
    side = -(-side // 2)  # ceil: transformers' apply_pooling
    out.pooler_output = newline_per_row(out.pooler_output, pixel_values_videos.shape[1], side)
    return out


def install_row_newlines(model: nn.Module) -> None:
    """Make ``model`` (a ``LlavaOnevisionModel``) return per-row video features from
    ``get_video_features``, which its ``forward`` (and so generation) calls.

    Bound as a method of the instance, so ``copy.deepcopy`` and pickling rebind it to the copy.
    """
    model.get_video_features = types.MethodType(_row_video_features, model)


def row_placeholders(ids: Tensor, token_id: int, frames: int, side: int) -> Tensor:
    """``ids`` ``[L]`` with its block of ``F * Q * Q + 1`` video placeholders (the processor's count)
    replaced by ``F * Q * (Q + 1)`` of them (the per-row count)."""
    at = (ids == token_id).nonzero().flatten()
    expected = frames * side * side + 1
    if at.numel() != expected or (at.numel() and at[-1] - at[0] + 1 != at.numel()):
        raise RuntimeError(f"processor wrote {at.numel()} video tokens for {frames} frames; the LLaVA-OneVision "
                           f"layout accounts for one contiguous block of {frames} x {side * side} + 1")
    block = torch.full((frames * side * (side + 1),), token_id, dtype=ids.dtype)
    return torch.cat([ids[:at[0]], block, ids[at[-1] + 1:]])
