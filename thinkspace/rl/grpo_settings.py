"""The settings of :class:`~thinkspace.rl.grpo.SpatialGRPO`: their choices, the default rewards, and the
checks that refuse a bad combination before anything trains (each message names the ``model.`` key)."""

from __future__ import annotations

from typing import Any, Literal

from thinkspace.data.batch import Batch
from thinkspace.generation.decode import DecodeStep
from thinkspace.rl.loss import LossNormalisation
from thinkspace.utils.choices import check_choice

#: Which completion tokens the loss counts: the ones the policy chose, or every one (forced slot tokens too).
LossTokens = Literal["sampled", "completion"]
#: The frozen reference: the base model under the adapters (LoRA), a copy, or whichever applies.
Reference = Literal["auto", "adapter", "copy"]
#: The hidden states the latent-3D reward projects (see :mod:`thinkspace.rl.reward_inputs`).
RewardLatents = Literal["decoded", "after_start"]
#: What enters at the slot's pads when the policy and the reference score a rollout.
LogprobInputs = Literal["latents", "pads"]
#: The module mode rollouts sample and score in: ``train`` draws dropout (LoRA's included).
RolloutMode = Literal["eval", "train"]

DEFAULT_REWARDS = {"format": "thinkspace.rl.rewards.format_reward",
                   "answer": "thinkspace.rl.rewards.answer_reward",
                   "latent3d": "thinkspace.rl.rewards.latent3d_reward"}


def check_settings(*, group_size: int, num_iterations: int, max_new_tokens: int, loss_tokens: str,
                   loss_normalisation: str, reference: str, decode_step: str, reward_latents: str,
                   logprob_inputs: str, rollout_mode: str, logprob_chunk_tokens: int) -> None:
    """Refuse a setting out of its range or choices, naming its ``model.`` key."""
    if group_size < 2:
        raise ValueError(f"model.group_size must be at least 2 (advantages compare the completions of one "
                         f"prompt; a group of 1 always has advantage 0), got {group_size}")
    if num_iterations < 1 or max_new_tokens < 1:
        raise ValueError(f"model.num_iterations and model.max_new_tokens must be positive, got "
                         f"{num_iterations} and {max_new_tokens}")
    check_choice("model.loss_tokens", loss_tokens, LossTokens)
    check_choice("model.loss_normalisation", loss_normalisation, LossNormalisation)
    check_choice("model.reference", reference, Reference)
    check_choice("model.decode_step", decode_step, DecodeStep)
    check_choice("model.reward_latents", reward_latents, RewardLatents)
    check_choice("model.logprob_inputs", logprob_inputs, LogprobInputs)
    check_choice("model.rollout_mode", rollout_mode, RolloutMode)
    if logprob_chunk_tokens < 0:
        raise ValueError(f"model.logprob_chunk_tokens must be 0 (no chunks) or positive, got {logprob_chunk_tokens}")


def reference_kind(reference: str, uses_adapter: bool) -> str:
    """``adapter`` (the policy with its LoRA adapters disabled) or ``copy`` (a frozen copy): ``auto``
    takes the adapter where the backbone has one."""
    if reference == "adapter" and not uses_adapter:
        raise ValueError("model.reference 'adapter' needs a LoRA backbone (backbone.init_args.lora)")
    return ("adapter" if uses_adapter else "copy") if reference == "auto" else reference


def check_latent_steps(latent: Any, steps: int | None, reward_latents: str, latent3d_rewarded: bool) -> None:
    """Refuse ``latent_steps`` without a slot, below 1, or other than the slot's k where the latent-3D
    reward (``latent3d_rewarded``) projects the decoded latents (the projector takes exactly k)."""
    if steps is None:
        return
    if latent is None:
        raise ValueError(f"model.latent_steps {steps} needs a latent slot (model.latent: a LatentAlignment)")
    if steps < 1:
        raise ValueError(f"model.latent_steps must be at least 1 (or null: the slot's k), got {steps}")
    if steps != latent.slot.k and reward_latents == "decoded" and latent3d_rewarded:
        raise ValueError(f"model.latent_steps {steps} differs from the slot's k {latent.slot.k}: the projector "
                         f"takes k latents, so with model.reward_latents 'decoded' every completion would score 0 "
                         "on the latent-3D reward; set model.reward_latents: after_start (3DThinker's release) "
                         f"or model.latent_steps: {latent.slot.k}")


def check_prompt_lengths(backbone: Any, batch: Batch, max_new_tokens: int) -> None:
    """Refuse a prompt that, with ``max_new_tokens``, exceeds the model's context, naming the sample."""
    config = backbone.hf.config
    limit = getattr(getattr(config, "text_config", config), "max_position_embeddings", None)
    if limit is None:
        return
    for sample_id, n in zip(batch.ids, batch.prompt_lengths.tolist()):
        if n + max_new_tokens > limit:
            raise ValueError(f"sample {sample_id!r}: prompt of {n} tokens + max_new_tokens {max_new_tokens} "
                             f"exceeds the model's context of {limit} tokens; shorten the prompt or images, or "
                             "lower model.max_new_tokens")
