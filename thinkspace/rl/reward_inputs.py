"""What the reward functions receive for each of the ``B x G`` completions of a rollout.

Per completion: the prompt's text and its sample's fields (answer, answer type, task, id, meta),
and, with a latent objective, the completion's projected latents and the sample's teacher
tokens (the latent-3D reward's inputs). See :mod:`thinkspace.rl.rewards` for the fields.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.data.batch import Batch
from thinkspace.objectives.latent3d import LatentAlignment


def reward_inputs(batch: Batch, gen: Any, latent: LatentAlignment | None) -> tuple[list[str], dict[str, list[Any]]]:
    """``(prompts, fields)``: each completion's prompt text and its reward fields (each list ``B x G``
    long, sample ``b``'s values repeated for its ``G`` completions)."""
    group = gen.group
    rep = lambda xs: [x for x in xs for _ in range(group)]  # noqa: E731
    fields: dict[str, list[Any]] = {
        "answer": rep(batch.answers), "answer_type": rep(batch.answer_types), "task": rep(batch.tasks),
        "sample_id": rep(batch.ids), "meta": rep(batch.meta or [{}] * len(batch)),
    }
    if latent is not None:
        fields["projected"], fields["teacher"] = project_latents(latent, batch, gen)
    return rep(batch.texts or [""] * len(batch)), fields


def project_latents(latent: LatentAlignment, batch: Batch, gen: Any) -> tuple[list[Tensor | None], list[Tensor | None]]:
    """Per completion, its projected latents ``[S, P, C]`` and the sample's teacher tokens
    (``None`` without latents or without teacher features), from :meth:`LatentAlignment.pair_with_teacher`."""
    group = gen.group
    features = latent.teacher_features(batch, allow_missing=True)
    teacher = [None if f is None else f.tokens() for f in features for _ in range(group)]
    projected: list[Tensor | None] = [None] * len(teacher)
    prompts = [b for b, f in enumerate(features) if f is not None]
    if not prompts:
        return projected, teacher
    rows = torch.tensor([b * group + g for b in prompts for g in range(group)], device=gen.latents.device)
    out = gen.prompt_out
    pick = lambda x: None if x is None else x[prompts].repeat_interleave(group, 0)  # noqa: E731
    wide = gen.prompts.repeat(group, prompts)
    paired = latent.pair_with_teacher(
        BackboneOutput(hidden=pick(out.hidden), visual=wide.visual, lm_head=out.lm_head,
                       inputs_embeds=pick(out.inputs_embeds)),
        wide, gen.latents[rows], [features[b] for b in prompts for _ in range(group)])
    for n, value, target in zip(rows.tolist(), paired.projected, paired.teacher):
        if bool(gen.has_latents[n]):
            projected[n], teacher[n] = value, target
    return projected, teacher
