"""Log-probabilities of the chosen tokens, a chunk of token positions at a time.

GRPO needs one number per completion token, ``log p(chosen) = z[chosen] - logsumexp(z)`` with
``z = logits / temperature`` in float32, but the logits behind it are ``[M, V]``: 0.6 MB per token
at Qwen's 151,936-token vocabulary, 9.3 GiB for 8 x 2,048 completion tokens, kept for the backward
pass (and about 2.5 times that at its peak). Here the positions go through the LM head in chunks
of ``chunk_tokens``: each chunk's logits are reduced to its log-probabilities and a logsumexp at
once and freed. The backward pass runs each chunk's head again and forms the logits' gradient,
``(onehot(chosen) - softmax(z)) * grad / temperature``, from the saved logsumexp in one buffer, so
only one chunk's logits (and that buffer) exist at a time in either pass. Any LM head works (a
LoRA'd one, dropout included: the backward pass replays the random numbers the forward drew),
and the head's parameters get their gradients as inputs of the autograd function, so
``torch.autograd.grad`` works as well as ``backward``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from thinkspace.generation.sampling import token_logprobs

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
    temperature = max(temperature, 1e-5)
    if chunk_tokens == 0 or hidden.shape[0] <= chunk_tokens:
        return token_logprobs(lm_head(hidden).float(), tokens, temperature)
    params = [p for p in lm_head.parameters() if p.requires_grad]
    if not torch.is_grad_enabled() or not (hidden.requires_grad or params):
        with torch.no_grad():
            return torch.cat([_forward(lm_head, h, t, temperature)[0]
                              for h, t in zip(hidden.split(chunk_tokens), tokens.split(chunk_tokens))])
    return _ChunkedChosenLogprobs.apply(lm_head, temperature, chunk_tokens, hidden, tokens, *params)


def _forward(lm_head: nn.Module, hidden: Tensor, tokens: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """One chunk without a graph: ``([c] log-probabilities, [c] logsumexp of the scaled logits)``."""
    logits = lm_head(hidden).float()
    logits = logits.div_(temperature)  # a fresh tensor without a graph: scaled in place
    lse = torch.logsumexp(logits, -1)
    return logits.gather(-1, tokens[:, None])[:, 0] - lse, lse


class _ChunkedChosenLogprobs(torch.autograd.Function):
    """Chunked forward keeping ``[M]`` logsumexps and the RNG states; backward recomputes a chunk's logits."""

    @staticmethod
    def forward(ctx: Any, lm_head: nn.Module, temperature: float, chunk: int, hidden: Tensor, tokens: Tensor,
                *params: Tensor) -> Tensor:
        ctx.lm_head, ctx.temperature, ctx.chunk = lm_head, temperature, chunk
        ctx.rng = []  # each chunk's generator state before its head ran: the backward replays its dropout
        picked, lses = [], []
        for h, t in zip(hidden.split(chunk), tokens.split(chunk)):
            ctx.rng.append(_rng_state(h.device))
            value, lse = _forward(lm_head, h, t, temperature)
            picked.append(value), lses.append(lse)
        ctx.save_for_backward(hidden, tokens, torch.cat(lses))
        return torch.cat(picked)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        hidden, tokens, lse = ctx.saved_tensors
        params = [p for p in ctx.lm_head.parameters() if p.requires_grad]
        wants_hidden = ctx.needs_input_grad[3]
        hidden_grads, param_grads = [], [torch.zeros_like(p) for p in params]
        scale = grad.float() / ctx.temperature  # d loss / d z per position, before the softmax term
        for i, start in enumerate(range(0, hidden.shape[0], ctx.chunk)):
            rows = slice(start, start + ctx.chunk)
            h = hidden[rows].detach().requires_grad_(wants_hidden)
            with torch.enable_grad(), _replayed_rng(h.device, ctx.rng[i]):
                logits = ctx.lm_head(h)
            # d loss / d logits = (onehot - softmax(z)) * grad / T, built in one buffer
            upstream = logits.detach().float().div(ctx.temperature).sub_(lse[rows, None]).exp_()
            upstream.mul_(-scale[rows, None]).scatter_add_(1, tokens[rows, None], scale[rows, None])
            inputs = ([h] if wants_hidden else []) + params
            grads = torch.autograd.grad(logits, inputs, upstream.to(logits.dtype), allow_unused=True)
            del logits, upstream  # this chunk's logits go before the next chunk's come
            if wants_hidden:
                hidden_grads.append(grads[0])
            for total, g in zip(param_grads, grads[len(grads) - len(params):]):
                if g is not None:
                    total.add_(g)
        hidden_grad = torch.cat(hidden_grads) if wants_hidden else None
        return (None, None, None, hidden_grad, None, *param_grads)


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


class _replayed_rng:
    """Runs a block with the generators set to a saved state, restoring theirs afterwards."""

    def __init__(self, device: torch.device, state: tuple[Tensor, Tensor | None]) -> None:
        self.device, self.state = device, state

    def __enter__(self) -> None:
        self.saved = _rng_state(self.device)
        torch.set_rng_state(self.state[0])
        if self.state[1] is not None:
            torch.cuda.set_rng_state(self.state[1], self.device)

    def __exit__(self, *exc: object) -> None:
        torch.set_rng_state(self.saved[0])
        if self.saved[1] is not None:
            torch.cuda.set_rng_state(self.saved[1], self.device)
