"""benchmarks/memory_estimate.py: exact parameter counts of the paper models built on the meta device,
the activation rule against the bytes autograd really keeps, and one row of docs/scaling.md's table."""

import importlib.util
import warnings

import pytest
import torch

from cli_helpers import REPO

GB = 1024**3


@pytest.fixture(scope="module")
def estimate():
    spec = importlib.util.spec_from_file_location("memory_estimate", REPO / "benchmarks" / "memory_estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def qwen3b(estimate):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate.qwen2_5_vl(2048, 11008, 36, 16, 2, 151936, True)


def test_qwen2_5_vl_3b_counts_are_the_released_models(estimate, qwen3b):
    vision, rest = estimate.split_counts(qwen3b)
    assert (vision, rest) == (668_684_288, 3_085_938_688)  # 3.75B; the tied head counted once
    assert estimate.root_group(qwen3b) == 151936 * 2048
    # r 64 x (in + out) on q, k, v, o, gate, up, down of 36 layers, and on the LM head
    per_layer = (2048 + 2048) + 2 * (2048 + 256) + (2048 + 2048) + 3 * (2048 + 11008)
    assert estimate.lora_parameters(qwen3b) == 36 * 64 * per_layer + 64 * (2048 + 151936) == 129_589_248


def saved_bytes(config, tokens: int, compute: str) -> int:
    """Bytes of the activations autograd keeps for a Qwen2 decoder's backward (weights excluded)."""
    from transformers import Qwen2Model

    torch.manual_seed(0)
    dtype = torch.bfloat16 if compute == "bf16" else torch.float32
    model = Qwen2Model(config).to(dtype).train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randn(1, tokens, config.hidden_size, dtype=dtype)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute == "autocast"):
        model(inputs_embeds=x)
    return sum(n for ptr, n in seen.items() if ptr not in weights)


@pytest.mark.parametrize("compute", ["autocast", "bf16"])
def test_layer_bytes_are_what_autograd_keeps_per_token_and_layer(estimate, compute):
    from transformers import Qwen2Config

    def config(layers):  # Qwen2.5-VL-3B's proportions at width 256 (heads of 128 channels)
        return Qwen2Config(hidden_size=256, intermediate_size=1376, num_hidden_layers=layers, num_attention_heads=2,
                           num_key_value_heads=1, vocab_size=16, max_position_embeddings=128)

    # per token (two token counts) and per layer (two depths): weight copies, RoPE tables and the final norm cancel
    per_layer = [saved_bytes(config(2), t, compute) - saved_bytes(config(1), t, compute) for t in (32, 64)]
    assert (per_layer[1] - per_layer[0]) / 32 == estimate.layer_bytes(config(1), compute)
    assert estimate.layer_bytes(config(1), compute) == (30 if compute == "autocast" else 20) * 256 + 8 * 1376 + 4 * 128 \
        + 4 * 2 + 8


def test_the_fsdp2_stage1_row_by_part(estimate, qwen3b):
    parts = estimate.training_parts(qwen3b, "fsdp2", tokens=2048, supervised=512)
    vision, rest = 668_684_288, 3_085_938_688
    assert parts["weights"] == pytest.approx((4 * rest + 2 * vision) / 8 / GB)
    assert parts["optimizer"] == pytest.approx(8 * rest / 8 / GB)
    # checkpointed: each of 36 layers keeps its bf16 input; one layer recomputed; one layer's gradient buffers
    layer = 20 * 2048 + 8 * 11008 + 4 * 256 + 4 * 16 + 8
    assert parts["activations"] == pytest.approx(2048 * (36 * 2 * 2048 + layer + 8 * 11008) / GB)
    assert parts["logits"] == pytest.approx(16 * 151936 * 512 / GB)
    assert sum(parts.values()) == pytest.approx(11.2, abs=0.05)  # docs/scaling.md: 11 GB
