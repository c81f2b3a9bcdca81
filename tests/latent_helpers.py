"""A tiny Qwen2.5-VL with a latent slot and prompt batches for the latent-decoding tests."""

from __future__ import annotations

from dataclasses import replace

import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment


def latent_module() -> SpatialVLM:
    """Seeded tiny SpatialVLM with a k = 4 latent slot, in eval mode."""
    torch.manual_seed(0)
    return SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"latent": LatentAlignment(k=4, projector_width=16)}).eval()


def prompts(module: SpatialVLM, n: int = 2, seed: int = 3):
    """A prompt-only batch of ``n`` synthetic MindCube-style questions (1 or 2 views each)."""
    data = SyntheticSpatial(n, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=seed)
    return module.collator(with_response=False)([replace(data[i], response=None) for i in range(n)])
