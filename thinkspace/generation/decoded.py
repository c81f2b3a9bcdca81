"""What :func:`~thinkspace.generation.decode.decode` returns: the completions and what the loop saw."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.data.batch import Batch
from thinkspace.generation.prefill import Prefill


@dataclass
class Decoded:
    """The completions of a decode (``N = B x group`` rows).

    Attributes:
        texts: decoded continuations (special tokens skipped).
        tokens: ``[N, T]`` generated ids (pads stand for the latent steps; ``pad_token_id`` after the end).
        latents: ``[N, steps, D]`` latents (zeros past a row's ``latent_count``; ``[N, 0, D]`` without a slot).
        has_latents: ``[N]`` whether the sample produced the slot's k latents (what the projector
            takes; never when ``latent_steps`` differs from k).
        prompt_out: the backbone output on the ``B`` prompts (input embeddings, visual index) for the
            projector; ``None`` from transformers' ``generate`` (``sampler: transformers``).
        prompts: the left-padded prompt batch (``B`` prompts) it ran on.
        completion_mask: ``[N, T]`` tokens that belong to the completion (up to and including the stop token).
        sampled: ``[N, T]`` completion tokens chosen by the sampler (not forced: a forced start, pads, end).
        latent_start: ``[N]`` step at which ``<|latent_start|>`` was emitted (-1: none); pads follow it.
        group: completions per prompt.
        latent_count: ``[N]`` latent steps taken (pads emitted, each fed one latent).
        logprobs: ``[N, T]`` log-probabilities of the emitted tokens under the decoding logits at
            ``temperature`` (0 outside the completion), when asked for (``return_logprobs``); the
            numbers :func:`~thinkspace.rl.rollout.sequence_logprobs` computes in a separate pass.
        decoder_step: which per-token step ran: ``"lean"``
            (:class:`~thinkspace.generation.decoder_step.LeanDecoder`), ``"hugging face: <why>"``, or
            ``"transformers generate"`` (``sampler: transformers``).
        prefix: with ``keep_prefix``, the ``N``-row prefill (repeated per group) as it was before
            decoding, computed with gradients: a scoring pass over the same weights can start from
            it instead of running the prompts again (:func:`~thinkspace.rl.rollout.sequence_logprobs`).
    """

    texts: list[str]
    tokens: Tensor
    latents: Tensor
    has_latents: Tensor
    prompt_out: BackboneOutput | None
    prompts: Batch
    completion_mask: Tensor | None = None
    sampled: Tensor | None = None
    latent_start: Tensor | None = None
    group: int = 1
    latent_count: Tensor | None = None
    logprobs: Tensor | None = None
    decoder_step: str = "hugging face"
    prefix: Prefill | None = None
