"""Chosen tokens' log-probabilities in chunks: equal to the materialised computation (values and
gradients, plain and LoRA'd heads, chunk sizes that do and do not divide the token count), the
[M, V] logits never kept for backward, and a GRPO step that does not depend on the chunk size."""

import pytest
import torch
from torch import nn

from thinkspace.backbones import QwenVL
from thinkspace.backbones.lora import LoraSettings
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.rl import SpatialGRPO
from thinkspace.rl.chosen_logprobs import chosen_logprobs

pytestmark = pytest.mark.usefixtures("one_thread")

TOKENS, WIDTH, VOCAB = 23, 8, 37
CHUNKS = [1, 4, 7, 22, 23, 64]  # 4, 7, 22 leave a short last chunk


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(TOKENS, WIDTH, generator=gen).requires_grad_(True)
    return hidden, torch.randint(0, VOCAB, (TOKENS,), generator=gen)


def plain_head() -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(WIDTH, VOCAB)


class HeadOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lm_head = plain_head()


def lora_head(dropout: float) -> nn.Module:
    """peft LoRA on ``lm_head`` with non-zero ``B`` (peft starts it at 0, which would hide ``A``'s gradient)."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(HeadOnly(), LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["lm_head"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    return model.base_model.model.lm_head


def values_and_gradients(head: nn.Module, chunk: int, temperature: float = 0.7, seed: int = 0):
    """Log-probabilities and the gradients of a weighted sum w.r.t. the hidden states and every trainable head parameter."""
    hidden, tokens = inputs()
    weights = torch.randn(TOKENS, generator=torch.Generator().manual_seed(3))
    params = [p for p in head.parameters() if p.requires_grad]
    torch.manual_seed(seed)  # the LoRA dropout's draws
    logp = chosen_logprobs(head, hidden, tokens, temperature, chunk)
    grads = torch.autograd.grad((logp * weights).sum(), [hidden, *params])
    return logp.detach(), grads


def materialised(head: nn.Module, temperature: float = 0.7) -> torch.Tensor:
    """The computation the chunks replace: every position's float32 logits at once, log-softmax."""
    hidden, tokens = inputs()
    return (head(hidden).float() / temperature).log_softmax(-1).gather(-1, tokens[:, None])[:, 0]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_chunks_equal_the_materialised_logprobs_and_gradients(chunk):
    head = plain_head()
    whole, whole_grads = values_and_gradients(head, 0)
    torch.testing.assert_close(whole, materialised(head).detach(), atol=1e-6, rtol=0)
    got, grads = values_and_gradients(head, chunk)
    torch.testing.assert_close(got, whole, atol=1e-5, rtol=0)
    assert len(grads) == 3  # hidden, weight, bias
    for g, w in zip(grads, whole_grads):
        assert float(w.abs().max()) > 0
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk", [1, 5, 22])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_chunks_through_a_lora_head_equal_the_materialised_ones(chunk, dropout):
    """LoRA on the head (3DThinker's stage 2 adapts ``lm_head``), its dropout replayed as drawn."""
    head = lora_head(dropout).train()
    whole, whole_grads = values_and_gradients(head, 0)
    got, grads = values_and_gradients(head, chunk)
    torch.testing.assert_close(got, whole, atol=1e-5, rtol=0)
    assert len(grads) == 3  # hidden, lora_A, lora_B (the base weight is frozen)
    for g, w in zip(grads, whole_grads):
        assert float(w.abs().max()) > 0
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)


def test_without_gradients_chunks_give_the_same_numbers():
    head = plain_head()
    hidden, tokens = inputs()
    with torch.no_grad():
        whole = chosen_logprobs(head, hidden, tokens, 1.3, 0)
        for chunk in CHUNKS:
            torch.testing.assert_close(chosen_logprobs(head, hidden, tokens, 1.3, chunk), whole, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="chunk_tokens must be 0"):
        chosen_logprobs(head, hidden, tokens, 1.0, -1)


def largest_saved_tensor(chunk: int) -> int:
    """Elements of the largest tensor autograd keeps for backward."""
    head = plain_head()
    hidden, tokens = inputs()
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        chosen_logprobs(head, hidden, tokens, 0.7, chunk)
    return max(sizes, default=0)


def test_only_the_materialised_computation_keeps_the_logits_for_backward():
    assert largest_saved_tensor(0) == TOKENS * VOCAB
    assert largest_saved_tensor(4) == TOKENS * WIDTH  # the hidden states; tokens, logsumexps: no logits


# -- a GRPO step ------------------------------------------------------------------------

def grpo_step(chunk: int, lora: LoraSettings | None):
    torch.manual_seed(0)
    module = SpatialGRPO(QwenVL("tiny:qwen2_5_vl", lora=lora), rewards={"length": "ddp_probe.length_reward"},
                         group_size=3, max_new_tokens=6, beta=0.04, logprob_chunk_tokens=chunk)
    if lora is not None:
        with torch.no_grad():  # adapters that change the policy: the reference (adapter off) then differs
            for name, param in module.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.05, generator=torch.Generator().manual_seed(4))
    batch = module.collator()([ColouredSquares(2, image_size=(56, 112))[i] for i in range(2)])
    module.train()
    loss = module.training_step(batch, 0)
    assert int(module._rollout.generation.completion_mask.sum()) > 2 * 5  # at least three chunks
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), module._rollout.ref_logp, [torch.zeros_like(p) if g is None else g
                                                      for p, g in zip(params, grads)]


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4, alpha=8, dropout=0.0,
                                                     target_modules=r"(?:.*language_model.*\.(q_proj|v_proj)|lm_head)")],
                         ids=["full", "lora-with-head"])
def test_a_grpo_step_in_chunks_of_5_tokens_equals_one_chunk(tiny_cache, lora):
    """Up to 2 x 3 x 6 completion tokens in chunks of 5 (a short last one); the policy's pass (with
    gradients) and the reference's (without) both go through the chunks. The length reward
    spreads within groups, so the advantages, the loss and its gradients are not 0."""
    loss, ref, grads = grpo_step(0, lora)
    chunked_loss, chunked_ref, chunked_grads = grpo_step(5, lora)
    torch.testing.assert_close(chunked_loss, loss, atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked_ref, ref, atol=1e-5, rtol=0)
    assert len(grads) > 4 and any(float(g.abs().max()) > 0 for g in grads)
    for a, b in zip(chunked_grads, grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_negative_chunk_size_is_refused(tiny_cache):
    with pytest.raises(ValueError, match="logprob_chunk_tokens must be 0"):
        SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), group_size=2, logprob_chunk_tokens=-1)


def test_backward_accumulates_the_head_gradients_as_the_materialised_pass_does():
    """``loss.backward()`` (Lightning's way) fills ``.grad`` of the head and the hidden states alike."""
    grads = []
    for chunk in (0, 6):
        head = plain_head()
        hidden, tokens = inputs()
        chosen_logprobs(head, hidden, tokens, 0.7, chunk).sum().backward()
        grads.append([hidden.grad, head.weight.grad, head.bias.grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
