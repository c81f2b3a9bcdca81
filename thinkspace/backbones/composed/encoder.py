"""The timm image encoder: building it, its input geometry, its patch-grid features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class EncoderGeometry:
    """What a frame looks like to the encoder.

    Attributes:
        dim: ``C``, feature width.
        image_size: ``(H, W)`` input pixels.
        patch_grid: ``(h, w)`` patch features per frame.
        mean: per-channel normalisation mean (on ``[0, 1]`` pixels).
        std: per-channel normalisation std.
        interpolation: resize filter (``bicubic``, ``bilinear``, ...), from timm's data config.
    """

    dim: int
    image_size: tuple[int, int]
    patch_grid: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str


def build_encoder(name: str, kwargs: dict[str, Any] | None = None, weights_path: str | None = None,
                  pretrained: bool = False) -> nn.Module:
    """``timm.create_model(name, **kwargs)`` without a classifier head.

    Args:
        name: a timm model name (``timm.list_models()``).
        kwargs: extra arguments (``img_size``, ``depth``, ``embed_dim``, ...).
        weights_path: a local weights file (``.safetensors``/``.pth``) in timm's layout for this model.
        pretrained: download timm's pretrained weights from the Hub (ignored with ``weights_path``).

    Raises:
        ValueError: ``name`` is not a timm model.
        FileNotFoundError: ``weights_path`` does not exist.
    """
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        raise ValueError(f"encoder {name!r} is not a timm model name; similar names: {close}")
    kwargs = dict(kwargs or {})
    kwargs.setdefault("num_classes", 0)  # features only
    if weights_path is not None:
        if not Path(weights_path).is_file():
            raise FileNotFoundError(f"encoder_weights_path {weights_path!r} does not exist; expected a timm "
                                    f"weights file for {name}")
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(weights_path)}, **kwargs)
    return timm.create_model(name, pretrained=pretrained, **kwargs)


def encoder_geometry(encoder: nn.Module) -> EncoderGeometry:
    """Input size from the model itself (``img_size`` kwargs change it), normalisation and filter
    from timm's data config, patch grid and width from one forward pass on zeros."""
    from timm.data import resolve_model_data_config

    data = resolve_model_data_config(encoder)
    img_size = getattr(getattr(encoder, "patch_embed", None), "img_size", None) or data["input_size"][1:]
    size = (int(img_size[0]), int(img_size[1]))
    was_training = encoder.training
    encoder.eval()  # batch-norm encoders refuse one-sample batches in train mode
    try:
        with torch.no_grad():
            param = next(encoder.parameters())
            grid = patch_features(encoder, torch.zeros(1, 3, *size, dtype=param.dtype, device=param.device))
    finally:
        encoder.train(was_training)
    return EncoderGeometry(dim=int(grid.shape[-1]), image_size=size,
                           patch_grid=(int(grid.shape[1]), int(grid.shape[2])),
                           mean=tuple(data["mean"]), std=tuple(data["std"]), interpolation=str(data["interpolation"]))


def patch_features(encoder: nn.Module, pixels: Tensor) -> Tensor:
    """Patch features ``[F, h, w, C]`` of normalised frames ``[F, 3, H, W]``.

    Transformers (``forward_features`` ``[F, prefix + h * w, C]``) drop their prefix tokens
    (CLS, registers); convolutional encoders (``[F, C, h, w]``) are moved channel-last.
    """
    out = encoder.forward_features(pixels)
    if out.ndim == 4:  # [F, C, h, w]
        return out.permute(0, 2, 3, 1)
    if out.ndim != 3:
        raise ValueError(f"encoder {type(encoder).__name__}: forward_features gave shape {tuple(out.shape)}; "
                         "expected [F, tokens, C] or [F, C, h, w]")
    tokens = out[:, int(getattr(encoder, "num_prefix_tokens", 0)):]
    patch_embed = getattr(encoder, "patch_embed", None)
    if patch_embed is not None and hasattr(patch_embed, "dynamic_feat_size"):
        h, w = patch_embed.dynamic_feat_size(pixels.shape[-2:])
    else:
        h, w = getattr(patch_embed, "grid_size", (0, 0))
    if h * w != tokens.shape[1]:
        raise ValueError(f"encoder {type(encoder).__name__}: {tokens.shape[1]} patch tokens do not form its "
                         f"{h} x {w} patch grid")
    return tokens.reshape(tokens.shape[0], int(h), int(w), tokens.shape[-1])
