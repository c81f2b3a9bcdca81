"""Choosing a token from logits, the chosen tokens' log-probabilities, and the ids that end a completion."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from thinkspace.generation.decode_state import draw_uniforms


def sample_token(logits: Tensor, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 uniform: Tensor | None = None) -> Tensor:
    """One token per row of ``logits`` ``[N, V]``: softmax at ``temperature``, restricted to
    the ``top_k`` most likely tokens (0: all) and to the smallest set whose probability
    reaches ``top_p`` (1: all).

    The draw inverts each row's cumulative distribution at a uniform number ``uniform``
    ``[N]`` in (0, 1): one random number per row, where a Gumbel or exponential race needs V
    (drawing those was a tenth of a tiny model's GRPO step), and no ``torch.multinomial``
    (several times slower on the CPU). Without ``uniform`` it is drawn from ``generator``
    (see :func:`~thinkspace.generation.decode_state.draw_uniforms`; a list of ``M`` generators
    gives consecutive blocks of ``N / M`` rows their own).
    """
    if temperature != 1.0:  # dividing by 1 changes nothing: one operation less per token
        logits = logits / max(temperature, 1e-5)
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    if uniform is None:
        uniform = draw_uniforms(logits.shape[0], 1, generator, logits.device)[0]
    cdf = logits.softmax(-1).cumsum(-1)  # [N, V]
    # the first token whose cumulative probability reaches u (scaled by the total: rounding)
    token = (cdf < uniform[:, None].to(cdf.dtype) * cdf[:, -1:]).sum(-1)
    return token.clamp_(max=logits.shape[-1] - 1)


def token_logprobs(logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
    """Log-probabilities ``[N]`` of ``tokens`` ``[N]`` under ``logits`` ``[N, V]`` at ``temperature``
    (floored at 1e-5, as :func:`sample_token` does): ``z[token] - logsumexp(z)``, ``z = logits /
    temperature``, in the logits' dtype (pass float32 logits). Every ``[N, V]`` logit is formed: the
    decode loop's one position per row, or the GRPO scorer's positions when it does not chunk
    (:func:`thinkspace.rl.chosen_logprobs.chosen_logprobs`)."""
    scaled = logits / max(temperature, 1e-5)
    return scaled.gather(-1, tokens[:, None])[:, 0] - torch.logsumexp(scaled, -1)


def stop_ids(tokenizer: Any, eos: int | list[int] | None) -> Tensor:
    if eos is None:
        ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
        ids.discard(None)
        return torch.tensor(sorted(i for i in ids if isinstance(i, int) and i >= 0), dtype=torch.long)
    return torch.tensor([eos] if isinstance(eos, int) else list(eos), dtype=torch.long)
