"""A fixed, invertible Fourier encoding of bounded scalars (metres)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fourier_encode(x: Tensor, extent: float, bands: int) -> Tensor:
    """``[..., 2 * bands]`` features ``(sin, cos)(pi * 2^l * x / extent)`` for ``l < bands``.

    Values in ``[-extent, extent)`` are recovered exactly by :func:`fourier_decode`; the
    lowest band fixes the value, higher bands refine it.
    """
    freqs = math.pi * (2.0 ** torch.arange(bands, device=x.device, dtype=x.dtype)) / extent
    phase = x[..., None] * freqs
    return torch.cat([phase.sin(), phase.cos()], dim=-1)


def fourier_decode(features: Tensor, extent: float, bands: int) -> Tensor:
    """Invert :func:`fourier_encode`: ``[..., 2 * bands]`` -> ``[...]``, by phase unwrapping band by band."""
    sin, cos = features[..., :bands], features[..., bands:]
    phases = torch.atan2(sin, cos)  # wrapped to (-pi, pi]
    value = phases[..., 0] * extent / math.pi
    for band in range(1, bands):
        scale = math.pi * 2.0**band / extent
        predicted = value * scale
        turns = torch.round((predicted - phases[..., band]) / (2 * math.pi))
        refined = (phases[..., band] + 2 * math.pi * turns) / scale
        # a band whose amplitude collapsed (noisy predictions) carries no phase: keep the coarser value
        strong = features[..., [band, bands + band]].norm(dim=-1) > 0.5
        value = torch.where(strong, refined, value)
    return value
