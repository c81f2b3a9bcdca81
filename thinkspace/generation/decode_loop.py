"""The per-token loop of thinkspace's decoding: choose a token, let the slot rows place it, run the model.

Per token it runs one model step and a few tensor operations; it reads nothing back from the device
except, when a row can stop, whether all rows have stopped, every 8 tokens (steps after that are
trimmed). With sharded weights that test is one decision of all ranks
(:mod:`~thinkspace.generation.rank_agreement`): each model step is then a collective, so every rank
steps until every rank's rows are done. The sampling's random numbers are drawn before the loop (one
uniform per row and step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from thinkspace.generation.model_step import ModelStep
from thinkspace.generation.rank_agreement import AllDone, rows_done
from thinkspace.generation.repetition import RepetitionPenalty
from thinkspace.generation.sampling import sample_token
from thinkspace.generation.slots import PlainRows


@dataclass
class Sampling:
    """How a token is chosen from logits: the argmax, or a draw at ``temperature`` restricted by ``top_p``
    and ``top_k`` (see :func:`~thinkspace.generation.sampling.sample_token`) from ``uniforms`` ``[T, N]``;
    with ``repetition``, of the logits after its penalty (transformers' order: processors, then warpers)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    uniforms: Tensor | None = None
    repetition: RepetitionPenalty | None = None

    def scores(self, logits: Tensor) -> Tensor:
        """The logits ``[N, V]`` a token is chosen from (the log-probabilities stay the model's own)."""
        return logits if self.repetition is None else self.repetition(logits)

    def emitted(self, token: Tensor) -> None:
        """Each row's token of this step ``[N]``, forced ones included: it counts as seen from now on."""
        if self.repetition is not None:
            self.repetition.see(token)


@dataclass
class LoopOutput:
    """The loop's ``N`` rows over the ``T`` steps that hold a live token (later ones trimmed).

    Attributes:
        tokens: ``[N, T]`` emitted ids (``pad_id`` after a row's stop token).
        kept: ``[N, T]`` tokens of the completion (up to and including the stop token).
        sampled: ``[N, T]`` completion tokens the sampler chose (not forced by the slot).
        logprobs: ``[N, T]`` log-probabilities of the emitted tokens at the temperature (0 outside the
            completion), or ``None``.
    """

    tokens: Tensor
    kept: Tensor
    sampled: Tensor
    logprobs: Tensor | None


def decode_loop(step_model: ModelStep, lm_head: nn.Module, embed: nn.Module, last: Tensor, rows: PlainRows,
                steps: int, sampling: Sampling, stops: Tensor, pad_id: int, return_logprobs: bool = False,
                all_done: AllDone = rows_done) -> LoopOutput:
    """Decode up to ``steps`` tokens for ``N`` rows whose last hidden states are ``last`` ``[N, D]``.

    Args:
        step_model: the model's step (:func:`~thinkspace.generation.model_step.model_step`).
        lm_head: hidden states -> logits; ``embed``: ids -> input embeddings.
        rows: the latent slot's rows (:mod:`thinkspace.generation.slots`); they record the latents.
        stops: ids that end a row (empty: no row stops, every row decodes ``steps`` tokens).
        pad_id: what a row emits after its stop token.
        return_logprobs: also the emitted tokens' log-probabilities, from the logits computed anyway.
        all_done: whether to stop, given ``done`` ``[N]`` (every 8 tokens): this rank's rows all done, or,
            with sharded weights, every rank's (:func:`~thinkspace.generation.rank_agreement.stop_test`).
    """
    n, device = last.shape[0], last.device
    every_row = torch.ones(n, dtype=torch.bool, device=device)
    no_row = ~every_row
    done = torch.zeros(n, dtype=torch.bool, device=device)
    stops = stops.to(device)
    can_stop = stops.numel() > 0
    tokens, free, kept, logprobs = [], [], [], []
    for step in range(steps):
        token = rows.known(step)
        if token is not None:  # the slot's scheduled token: no logits, no row has stopped yet
            embeds = rows.feed(step, embed(token)[:, None], last, done, None)
            live = every_row
            free.append(no_row)
            logits = lm_head(last).float() if return_logprobs else None
        else:
            logits = lm_head(last).float()
            scores = sampling.scores(logits)
            if sampling.do_sample:
                chosen = sample_token(scores, sampling.temperature, sampling.top_p, sampling.top_k,
                                      uniform=sampling.uniforms[step])
            else:
                chosen = scores.argmax(-1)
            token, latent_step, sampled, forced = rows.choose(step, chosen)
            if can_stop:  # no row stops otherwise: done stays all False
                token = torch.where(done, torch.full_like(token, pad_id), token)
            embeds = rows.feed(step, embed(token)[:, None], last, done, latent_step)
            live = ~done if can_stop else every_row  # this step's token counts unless the row had stopped
            free.append(live & sampled if not forced else no_row)
            rows.advance(step, token, latent_step, sampled, done)
            if can_stop:
                done = done | (sampled & torch.isin(token, stops))
        kept.append(live)
        tokens.append(token)
        sampling.emitted(token)
        if return_logprobs:
            scaled = logits / max(sampling.temperature, 1e-5)
            logprobs.append(scaled.gather(-1, token[:, None])[:, 0] - torch.logsumexp(scaled, -1))
        last = step_model(embeds, step, live)
        # the only device sync of the loop, and only when a row can stop: every 8 steps (sharded: all ranks')
        if can_stop and step % 8 == 7 and all_done(done):
            break
    kept_steps = torch.stack(kept, 1)
    length = int(kept_steps.any(0).sum())  # steps after every row had stopped hold nothing: trimmed
    logp = torch.stack(logprobs, 1)[:, :length].where(kept_steps[:, :length], 0.0) if return_logprobs else None
    return LoopOutput(tokens=torch.stack(tokens, 1)[:, :length], kept=kept_steps[:, :length],
                      sampled=torch.stack(free, 1)[:, :length], logprobs=logp)
