"""What the reward functions receive for each of the ``B x G`` completions of a rollout.

Per completion: the prompt's text and its sample's fields (answer, answer type, task, id, meta),
and, with a latent objective, the completion's projected latents and the sample's teacher
tokens (the latent-3D reward's inputs). See :mod:`thinkspace.rl.rewards` for the fields.

Which hidden states the latent-3D reward projects (``SpatialGRPO(reward_latents=...)``):

* ``decoded``: the k latents fed back while decoding (stage 1's positions: the start and pads
  1 to k-1); a completion without all k of them (no slot, a slot closed early, or
  ``latent_steps`` other than k) has none, and the reward gives it 0.
* ``after_start``: :func:`latents_after_start`, the positions 3DThinker's released trainer reads
  (``open_r1/trainer/grpo_trainer.py``, ``extract_embeddings_between_ids_default``): whatever
  tokens sit there, pads, the end or text.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.data.batch import Batch
from thinkspace.objectives.latent3d import LatentAlignment
from thinkspace.objectives.latent_slot import LatentSlot
from thinkspace.rl.rollout import completion_pass


def reward_inputs(batch: Batch, gen: Any, latent: LatentAlignment | None,
                  latents: tuple[Tensor, Tensor] | None = None) -> tuple[list[str], dict[str, list[Any]]]:
    """``(prompts, fields)``: each completion's prompt text and its reward fields (each list ``B x G``
    long, sample ``b``'s values repeated for its ``G`` completions). ``latents``: ``(latents [N, k, D],
    valid [N])`` to project instead of the decoded ones (e.g. :func:`latents_after_start`)."""
    group = gen.group
    rep = lambda xs: [x for x in xs for _ in range(group)]  # noqa: E731
    fields: dict[str, list[Any]] = {
        "answer": rep(batch.answers), "answer_type": rep(batch.answer_types), "task": rep(batch.tasks),
        "sample_id": rep(batch.ids), "meta": rep(batch.meta or [{}] * len(batch)),
    }
    if latent is not None:
        fields["projected"], fields["teacher"] = project_latents(latent, batch, gen, latents)
    return rep(batch.texts or [""] * len(batch)), fields


@torch.no_grad()
def latents_after_start(backbone: Any, gen: Any, slot: LatentSlot,
                        states: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """``(latents [N, k, D], valid [N])``: the hidden states 3DThinker's released stage 2 projects for its
    latent-3D reward, ``k`` = the slot's pads in training (12).

    One pass of the policy over prompt + completion with the ids as they are (the slot's pads enter as
    ``<|latent_pad|>`` embeddings), in the module's current mode; its last-layer hidden states (after the
    final norm) at

    * the k positions after the first start token, ``start+1 .. start+k``, when an end token follows it
      (with 8 latent steps: the 8 pads, the end and 3 text tokens; a slot closed after j pads: j pads,
      the end and k-1-j text tokens);
    * otherwise (no start, or no end after it) the k positions from the prompt's last one, the newline
      after ``<|im_start|>assistant``: that newline and the first k-1 completion tokens.

    ``valid`` is false where the window runs past the completion's last token (its stop token): the
    released code's projector then fails on fewer than k states and the reward is 0. ``states``: that
    pass's ``(last, hidden)`` when the caller already ran it (``completion_pass(..., feedback=False)``).
    """
    k = slot.k
    last, states = states if states is not None else completion_pass(backbone, gen.prompts, gen, feedback=False)
    sequence = torch.cat([last[:, None], states], 1)  # [N, 1 + T, D]: index i + 1 is completion position i
    tokens, keep = gen.tokens, gen.completion_mask.bool()
    steps = torch.arange(tokens.shape[1], device=tokens.device)
    start = gen.latent_start.to(tokens.device)
    ended = ((tokens == slot.end_id) & keep & (steps[None] > start[:, None])).any(1) & (start >= 0)
    first = torch.where(ended, start + 2, torch.zeros_like(start))  # start + 1 in completion positions
    index = first[:, None] + torch.arange(k, device=tokens.device)[None]  # [N, k]
    valid = index[:, -1] <= keep.sum(1)  # sequence index of the completion's last kept token
    index = index.clamp(max=sequence.shape[1] - 1)
    picked = sequence.gather(1, index[..., None].expand(-1, -1, sequence.shape[-1]))
    return picked, valid


def project_latents(latent: LatentAlignment, batch: Batch, gen: Any, latents: tuple[Tensor, Tensor] | None = None,
                    ) -> tuple[list[Tensor | None], list[Tensor | None]]:
    """Per completion, its projected latents ``[S, P, C]`` and the sample's teacher tokens
    (``None`` without latents or without teacher features), from :meth:`LatentAlignment.pair_with_teacher`.

    ``latents``: ``(latents [N, k, D], valid [N])`` (default: the decoded ones and ``has_latents``). The
    projector runs outside autocast, in its own dtype (float32; 3DThinker's release casts both inputs
    to float32, ``qwen_module.py``, ``sim_reward``), under a bf16-mixed step too.
    """
    group = gen.group
    chosen, valid = latents if latents is not None else (gen.latents, gen.has_latents)
    features = latent.teacher_features(batch, allow_missing=True)
    teacher = [None if f is None else f.tokens() for f in features for _ in range(group)]
    projected: list[Tensor | None] = [None] * len(teacher)
    prompts = [b for b, f in enumerate(features) if f is not None]
    if not prompts:
        return projected, teacher
    rows = torch.tensor([b * group + g for b in prompts for g in range(group)], device=chosen.device)
    out = gen.prompt_out
    pick = lambda x: None if x is None else x[prompts].repeat_interleave(group, 0)  # noqa: E731
    wide = gen.prompts.repeat(group, prompts)
    with torch.autocast(chosen.device.type, enabled=False):
        paired = latent.pair_with_teacher(
            BackboneOutput(hidden=pick(out.hidden), visual=wide.visual, lm_head=out.lm_head,
                           inputs_embeds=pick(out.inputs_embeds)),
            wide, chosen[rows], [features[b] for b in prompts for _ in range(group)])
    for n, value, target in zip(rows.tolist(), paired.projected, paired.teacher):
        if bool(valid[n]):
            projected[n], teacher[n] = value, target
    return projected, teacher
