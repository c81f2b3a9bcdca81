"""Log-probabilities of the chosen tokens, a chunk of token positions at a time.

GRPO needs one number per completion token, ``log p(chosen) = z[chosen] - logsumexp(z)`` with
``z = logits / temperature`` in float32, but the logits behind it are ``[M, V]``: 0.6 MB per token
at Qwen's 151,936-token vocabulary, 9.3 GiB for 8 x 2,048 completion tokens, kept for the backward
pass (and about 2.5 times that at its peak). Here the positions go through the LM head in chunks
of ``chunk_tokens``: each chunk's logits are reduced to its log-probabilities at once and freed; with
gradients each chunk is checkpointed, so the backward pass recomputes that chunk's logits from its
hidden states and only one chunk's logits exist at a time in either pass. Any LM head works (a
LoRA'd one, dropout included: the checkpoint replays the same random numbers).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

#: positions per chunk by default: 1,024 x 151,936 float32 logits are 0.58 GiB
DEFAULT_CHUNK_TOKENS = 1024


def chosen_logprobs(lm_head: nn.Module, hidden: Tensor, tokens: Tensor, temperature: float = 1.0,
                    chunk_tokens: int = DEFAULT_CHUNK_TOKENS) -> Tensor:
    """Log-probabilities ``[M]`` (float32) of ``tokens`` under ``lm_head(hidden) / temperature``.

    Args:
        lm_head: maps hidden states ``[..., D]`` to logits ``[..., V]`` (any module, LoRA'd too).
        hidden: ``[M, D]`` the hidden states that predict the tokens.
        tokens: ``[M]`` the chosen token ids.
        temperature: the logits are divided by it, floored at 1e-5 (as sampling does).
        chunk_tokens: positions per chunk; 0 (or at least ``M``): every position at once, the
            ``[M, V]`` logits materialised and kept for backward.
    """
    if chunk_tokens < 0:
        raise ValueError(f"chunk_tokens must be 0 (no chunks) or positive, got {chunk_tokens}")
    piece = partial(_chunk_logprobs, lm_head, max(temperature, 1e-5))
    count = hidden.shape[0]
    if chunk_tokens == 0 or count <= chunk_tokens:
        return piece(hidden, tokens)
    recompute = torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in lm_head.parameters()))
    pieces = []
    for start in range(0, count, chunk_tokens):
        h, t = hidden[start:start + chunk_tokens], tokens[start:start + chunk_tokens]
        # keeps the chunk's hidden states only; backward runs the chunk's head again
        pieces.append(checkpoint(piece, h, t, use_reentrant=False) if recompute else piece(h, t))
    return torch.cat(pieces)


def _chunk_logprobs(lm_head: nn.Module, temperature: float, hidden: Tensor, tokens: Tensor) -> Tensor:
    """``[c]`` log-probabilities of one chunk: its ``[c, V]`` logits live only inside this call."""
    logits = lm_head(hidden).float() / temperature
    return logits.gather(-1, tokens[:, None])[:, 0] - torch.logsumexp(logits, -1)
