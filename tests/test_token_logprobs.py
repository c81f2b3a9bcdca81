"""One formula for the chosen tokens' log-probabilities from materialised logits: the decode loop's
``return_logprobs`` and GRPO's unchunked scorer both call :func:`token_logprobs`."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thinkspace.generation.sampling import token_logprobs
from thinkspace.rl.chosen_logprobs import chosen_logprobs


def test_token_logprobs_are_log_softmax_at_the_temperature_picked_at_the_tokens():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    tokens = torch.tensor([1, 0])
    assert torch.allclose(token_logprobs(logits, tokens), torch.tensor([math.log(0.75), math.log(0.5)]))
    # at temperature 0.5 the first row's odds are 9:1
    assert torch.allclose(token_logprobs(logits, tokens, 0.5), torch.tensor([math.log(0.9), math.log(0.5)]))
    # temperature 0 is floored at 1e-5, as sampling does: the likelier token certain, the other impossible
    floored = token_logprobs(logits, torch.tensor([1, 1]), 0.0)
    assert floored[0].item() == 0.0 and floored[1].item() == pytest.approx(math.log(0.5))
    assert token_logprobs(logits, torch.tensor([0, 0]), 0.0)[0].item() < -1e4


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_unchunked_chosen_logprobs_are_token_logprobs_of_the_heads_float_logits(temperature):
    torch.manual_seed(0)
    head = nn.Linear(8, 11).to(torch.bfloat16)
    hidden, tokens = torch.randn(5, 8, dtype=torch.bfloat16), torch.randint(0, 11, (5,))
    expected = token_logprobs(head(hidden).float(), tokens, temperature)
    assert expected.shape == (5,) and expected.dtype == torch.float32
    assert torch.equal(chosen_logprobs(head, hidden, tokens, temperature, chunk_tokens=0), expected)
    chunked = chosen_logprobs(head, hidden, tokens, temperature, chunk_tokens=2)
    assert torch.allclose(chunked, expected, atol=1e-6)
