"""Latents -> teacher tokens -> points: decode a model's 3D latents into a coloured point cloud.

The sample's prompt is decoded with its latent slot (the objective's ``decoding`` mode), the k latents are
projected to the teacher's tokens, and the teacher decodes them (oracle: the inverse of its encoding; VGGT:
its camera and depth heads) into world points with colours.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from thinkspace.data.schema import SpatialSample
from thinkspace.teachers.base import TeacherFeatures


def latent_objective(module: Any, name: str | None = None) -> tuple[str, Any]:
    """The (name, :class:`LatentAlignment`) of ``module``: the one named ``name``, else the first."""
    from thinkspace.objectives.latent3d import LatentAlignment

    for key, objective in module.objectives.items():
        if (name is None or key == name) and isinstance(objective, LatentAlignment):
            return key, objective
    raise ValueError(f"model.objectives has no latent-alignment objective{' named ' + repr(name) if name else ''}")


@torch.no_grad()
def imagine(module: Any, sample: SpatialSample, objective: str | None = None) -> tuple[Tensor, Tensor]:
    """World points ``[M, 3]`` and colours ``[M, 3]`` decoded from the model's latents for ``sample``."""
    _, latent = latent_objective(module, objective)
    collate = module.backbone.collator(dict(module.objectives), None, with_response=False)
    batch = collate([sample])
    device = next(module.parameters()).device
    batch = batch.to(device)
    gen = latent.decode(module.backbone, batch, max_new_tokens=latent.slot.k + 2)
    _, points, colours = decode_latents(latent, gen, sample)
    return points, colours


def decode_latents(latent: Any, gen: Any, sample: SpatialSample, allow_empty: bool = False
                   ) -> tuple[TeacherFeatures, Tensor, Tensor]:
    """The projected latents of a one-sample decoding ``gen`` as teacher features ``[S, P, C]``,
    and the world points ``[M, 3]`` (metres) and colours ``[M, 3]`` the teacher decodes from them.

    Raises:
        RuntimeError: naming the sample, when decoding produced no latent slot, or no valid
            point (unless ``allow_empty``: then ``M`` is 0).
    """
    if not bool(gen.has_latents.all()):
        raise RuntimeError(f"sample {sample.id!r}: decoding produced no latent slot")
    grid = latent.teacher.sample_grid(sample)
    tokens = latent.project(gen.prompt_out, gen.prompts, [(sample.num_frames, grid)], latents=gen.latents)[0]
    features = TeacherFeatures.from_tokens(tokens.float().cpu(), latent.teacher.num_register, grid)
    with torch.autocast("cpu", enabled=False):  # float32 geometry (inverses) even under a caller's bf16 autocast
        points, colours = latent.teacher.point_cloud(features, sample)
    if points.shape[0] == 0 and not allow_empty:
        raise RuntimeError(f"sample {sample.id!r}: the projected latents decode to no valid point "
                           "(is the model trained with this teacher?)")
    return features, points, colours
