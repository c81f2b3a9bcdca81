"""GRPO's arithmetic: group-normalised advantages, the k3 KL estimator, the clipped token loss.

Shapes: ``N = B x G`` completions (prompt ``b`` owns rows ``b * G ... b * G + G - 1``),
``T`` completion tokens. Log-probabilities are natural logarithms.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from thinkspace.utils.choices import check_choice
from thinkspace.training.distributed import mean_over_ranks

#: How the clipped loss averages: over every token of the batch, or per sequence first.
LossNormalisation = Literal["token", "sequence"]


def group_advantages(rewards: Tensor, group: int, scale: bool = True, eps: float = 1e-4) -> Tensor:
    """Advantages ``[N]`` of rewards ``[N]``: reward minus its group's mean, divided by the
    group's standard deviation plus ``eps`` when ``scale`` (unbiased std, as GRPO's reference
    implementations; a group of identical rewards gets advantage 0).

    Raises:
        ValueError: when ``N`` is not a multiple of ``group`` or ``group < 2``.
    """
    if group < 2:
        raise ValueError(f"GRPO: group_size must be at least 2 (advantages compare completions of one prompt), "
                         f"got {group}")
    if rewards.ndim != 1 or rewards.numel() % group:
        raise ValueError(f"GRPO: {tuple(rewards.shape)} rewards do not split into groups of {group}")
    grouped = rewards.float().view(-1, group)
    centred = grouped - grouped.mean(1, keepdim=True)
    if scale:
        centred = centred / (grouped.std(1, keepdim=True) + eps)
    return centred.flatten()


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(policy || reference) from samples of the policy:
    ``exp(ref - logp) - (ref - logp) - 1`` (non-negative, unbiased)."""
    diff = ref_logp - logp
    return torch.exp(diff) - diff - 1


def clipped_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logp: Tensor | None = None,
    normalise: LossNormalisation = "token",
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO's loss ``-min(r A, clip(r, 1 - eps, 1 + eps_high) A) + beta * k3``, ``r = exp(logp - old_logp)``,
    averaged over the counted tokens.

    ``normalise``: ``token``: the mean over every counted token of every completion (and rank),
    so long completions weigh more; ``sequence``: each completion's token mean, then the mean
    over completions (every rank's), as the original GRPO and 3DThinker's released stage-2
    trainer (``open_r1/trainer/grpo_trainer.py``, ``compute_loss``).

    Args:
        logp: ``[N, T]`` log-probabilities of the sampled tokens under the policy (with grad).
        old_logp: ``[N, T]`` the same under the policy that sampled them (no grad).
        advantages: ``[N]`` one per completion, shared by its tokens.
        mask: ``[N, T]`` tokens that count (sampled completion tokens).
        epsilon: lower clip range (and the upper one unless ``epsilon_high``).
        beta: weight of the KL penalty (0: no reference needed).
        ref_logp: ``[N, T]`` log-probabilities under the reference policy when ``beta > 0``.

    Returns:
        the scalar loss and statistics: ``kl`` (mean k3), ``clip_fraction`` (tokens whose
        ratio was clipped in the direction that matters), ``ratio`` (mean).
    """
    check_choice("GRPO: loss normalisation", normalise, LossNormalisation)
    if beta > 0 and ref_logp is None:
        raise ValueError("GRPO: beta > 0 needs the reference policy's log-probabilities")
    high = epsilon if epsilon_high is None else epsilon_high
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None].to(logp.dtype)
    unclipped, clipped = ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + high) * adv
    per_token = -torch.min(unclipped, clipped)
    count = mask.sum()
    stats = {"clip_fraction": ((clipped < unclipped).to(logp.dtype) * mask).sum() / count.clamp(min=1),
             "ratio": (ratio.detach() * mask).sum() / count.clamp(min=1)}
    if beta > 0:
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + beta * kl
        stats["kl"] = (kl.detach() * mask).sum() / count.clamp(min=1)
    stats = {k: v.detach() for k, v in stats.items()}
    if normalise == "sequence":  # the mean of per-completion token means, over every rank's completions
        per_sequence = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
        return mean_over_ranks(per_sequence.sum(), per_sequence.numel()), stats
    # token mean over the global batch: data-parallel ranks give one process's gradient
    return mean_over_ranks((per_token * mask).sum(), count), stats
