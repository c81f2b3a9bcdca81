"""Group rollouts and their log-probabilities, each prompt's prefix computed once per group.

A rollout of ``B`` prompts with group size ``G`` gives ``N = B x G`` completions (rows
``b * G ... b * G + G - 1`` belong to prompt ``b``). Both the sampling
(:func:`~thinkspace.generation.decode.decode`) and the scoring
(:func:`sequence_logprobs`, with or without gradients) run the prompt and its images
once, repeat its KV cache G times and process the G completions as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from thinkspace.data.batch import Batch
from thinkspace.generation.decoded import Decoded
from thinkspace.generation.prefill import Prefill, prefill
from thinkspace.generation.sampling import stop_ids
from thinkspace.rl.chosen_logprobs import DEFAULT_CHUNK_TOKENS, chosen_logprobs
from thinkspace.rl.prefix_cache import checkpointing_paused, read_only
from thinkspace.rl.rewards import CompletionRewards
from thinkspace.utils.seeds import mix_seed


@dataclass
class Rollout:
    """One rollout batch, kept for ``num_iterations`` optimisation steps.

    Attributes:
        prompts: the ``B`` left-padded prompts.
        generation: what decoding returned (tokens ``[N, T]``, latents ``[N, k, D]``, masks).
        mask: ``[N, T]`` tokens the loss counts (sampled completion tokens).
        rewards: every reward's values and the weighted total.
        advantages: ``[N]`` group-normalised advantages.
        old_logp: ``[N, T]`` log-probabilities under the sampling policy (``None``: equal to
            the current policy's, detached, i.e. ``num_iterations == 1``).
        ref_logp: ``[N, T]`` log-probabilities under the reference policy (``None`` when beta is 0).
        completions: ``N`` completion texts as the rewards saw them.
    """

    prompts: Batch
    generation: Decoded
    mask: Tensor
    rewards: CompletionRewards
    advantages: Tensor
    old_logp: Tensor | None
    ref_logp: Tensor | None
    completions: list[str]

    @property
    def group(self) -> int:
        return self.generation.group


def completion_texts(tokenizer: Any, generation: Decoded) -> list[str]:
    """Each completion as text: its tokens up to (not including) the stop token (the tokenizer's and
    the end of turn), special tokens kept (the latent slot stays visible to format rewards)."""
    stops = set(stop_ids(tokenizer, None).tolist())
    texts = []
    for row, keep in zip(generation.tokens.tolist(), generation.completion_mask.tolist()):
        ids = [t for t, k in zip(row, keep) if k and t not in stops]
        texts.append(tokenizer.decode(ids, skip_special_tokens=False))
    return texts


def rollout_generators(seed: int, step: int, sample_ids: list[Any], device: torch.device) -> list[torch.Generator]:
    """One generator per prompt, seeded by ``seed``, the optimizer step and the sample id: a prompt's
    group is the same whichever rank or batch it lands in (so N ranks reproduce one process on the
    same global batch) and a resumed run draws what it would have."""
    return [torch.Generator(device=device).manual_seed(mix_seed(seed, step, sample_id=i)) for i in sample_ids]


def sequence_logprobs(
    backbone: Any,
    prompts: Batch,
    generation: Decoded,
    temperature: float = 1.0,
    feedback: bool = False,
    inputs_embeds_hook: Any = None,
    prefix: Prefill | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    states: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Log-probabilities ``[N, T]`` of the generated tokens (0 outside the completion).

    The prompt runs once and its KV cache is repeated for the group; the completions run
    as one batch over it (read only, so checkpointed layers can replay the pass; see
    :mod:`thinkspace.rl.prefix_cache`). Gradients flow when the caller has them enabled. With
    ``feedback`` the latent pads' input embeddings are the latents fed back during
    decoding (taken as given, without gradient), as the sampler saw them.

    Args:
        prompts: the left-padded prompt batch the generation ran on (``B`` rows).
        generation: tokens ``[N, T]``, completion mask, latents of ``N = B x G`` completions.
        temperature: logits are divided by it, as in sampling.
        prefix: the prompts' prefill for the ``N`` rows, already run with gradients by the same
            weights (``Decoded.prefix`` of a rollout decoded with ``keep_prefix``): used
            instead of running the prompts again. Its graph is consumed by one backward pass.
        chunk_tokens: completion tokens whose logits exist at once (see
            :func:`~thinkspace.rl.chosen_logprobs.chosen_logprobs`; 0: all of them).
        states: :func:`completion_pass`'s ``(last, hidden)`` for these same inputs, already run (shared
            with another caller): not run again.
    """
    tokens, keep = generation.tokens, generation.completion_mask
    if states is None:
        states = completion_pass(backbone, prompts, generation, feedback, inputs_embeds_hook, prefix)
    last, states = states
    # token t is predicted by the hidden state before it: the prompt's last for t = 0
    hidden = torch.cat([last[:, None], states[:, :-1]], 1)
    logp = torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)
    where = keep.bool()
    picked = chosen_logprobs(backbone.hf.lm_head, hidden[where], tokens[where], temperature, chunk_tokens)
    return logp.masked_scatter(where, picked)


def completion_pass(
    backbone: Any,
    prompts: Batch,
    generation: Decoded,
    feedback: bool = False,
    inputs_embeds_hook: Any = None,
    prefix: Prefill | None = None,
) -> tuple[Tensor, Tensor]:
    """``(last [N, D], hidden [N, T, D])``: the last-layer hidden states (after the final norm) at the
    prompt's last position and at every completion position, from one pass of the ``N`` completions
    over the prompts' KV cache (run here, once per prompt, unless ``prefix`` is given).

    The completion's ids enter as their embeddings (the slot's pads as ``<|latent_pad|>``'s), unless
    ``feedback``: then pad ``j`` of a slot enters as latent ``j - 1`` fed back while decoding. Gradients
    flow when the caller has them enabled; see :func:`sequence_logprobs` for the arguments.
    """
    tokens, keep, group = generation.tokens, generation.completion_mask, generation.group
    if prefix is not None:
        pre = prefix
    else:
        with checkpointing_paused(backbone.language_model()):  # the prefill writes its cache
            pre = prefill(backbone, prompts, inputs_embeds_hook).repeat(group)
    embeds = backbone.hf.get_input_embeddings()(tokens)  # [N, T, D]
    if feedback and generation.latents.shape[1] > 0:
        embeds = _feed_latents(embeds, generation)
    mask = torch.cat([pre.mask, keep.long()], 1)
    out = backbone.language_model()(inputs_embeds=embeds, attention_mask=mask, position_ids=pre.positions(
        tokens.shape[1]), past_key_values=read_only(pre.cache), use_cache=True, return_dict=True)
    return pre.hidden[:, -1], out.last_hidden_state


def _feed_latents(embeds: Tensor, generation: Decoded) -> Tensor:
    """``embeds`` ``[N, T, D]`` with pad ``j`` of each slot replaced by latent ``j - 1`` (a slot
    the model closed early has fewer pads: ``latent_count`` of them)."""
    k, length = generation.latents.shape[1], embeds.shape[1]
    counts = generation.latent_count.tolist() if generation.latent_count is not None else [k] * len(embeds)
    rows, cols, src = [], [], []
    for n, start in enumerate(generation.latent_start.tolist()):
        if start < 0:
            continue
        for j in range(1, min(k, counts[n]) + 1):
            if start + j < length:
                rows.append(n), cols.append(start + j), src.append(j - 1)
    if not rows:
        return embeds
    rows_t = torch.tensor(rows, device=embeds.device)
    values = generation.latents[rows_t, torch.tensor(src, device=embeds.device)].detach().to(embeds.dtype)
    return embeds.index_put((rows_t, torch.tensor(cols, device=embeds.device)), values)
