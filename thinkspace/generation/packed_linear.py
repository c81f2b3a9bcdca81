"""The lean step's projections packed once per rollout for the CPU's matrix kernels (oneDNN).

A decode step multiplies a few rows (``N``: prompts x group, e.g. 16) by every projection
matrix of the decoder. With float32 on a CPU, ``F.linear`` calls MKL's sgemm, which for so few
rows spends as long rearranging each weight matrix as multiplying by it once the decoder's
matrices no longer stay in a core's cache between tokens. oneDNN can rearrange a weight once
into its blocked layout (``torch.ops.mkldnn._reorder_linear_weight``, what inductor's CPU
weight prepacking uses) and then multiply by it at every token
(``torch.ops.mkldnn._linear_pointwise``). Measured on one thread of the development machine's CPU
(AMD EPYC with AVX512, 1 MiB of L2 per core; 16 rows): the projections of a hidden-256, 4-layer decoder
(15.7 MB of float32) take 1.7 instead of 2.8-3.5 ms per token; those of a hidden-128, 3-layer
decoder (2.9 MB, in cache) 0.41 instead of 0.35 ms: packing does not pay there. So the lean step
packs (:func:`packing_pays`) only float32 CPU decoders whose projections take at least
:data:`PACK_MIN_BYTES`, and, since the packed matrices are copies, only where the fused copies
are made (under :data:`~thinkspace.generation.decoder_weights.FUSE_LIMIT_BYTES`).

oneDNN sums the products in another order than MKL: a packed step equals the Hugging Face step
to float rounding (about 1e-6 relative), not bit for bit (``tests/test_decoder_step.py``).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from thinkspace.generation.decoder_weights import FUSE_LIMIT_BYTES, DecoderWeights, LayerWeights

#: pack only decoders whose projection matrices take at least this many bytes (they no longer stay in cache)
PACK_MIN_BYTES = 8 * 2**20


def packing_available(weights: DecoderWeights) -> bool:
    """Whether the decoder's projections can be packed: float32 weights on the CPU, computed in float32 (no
    CPU autocast: there ``F.linear`` runs in bfloat16 and the KV cache holds bfloat16), oneDNN built in."""
    first = weights.layers[0].out
    return (first.device.type == "cpu" and first.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def projection_bytes(weights: DecoderWeights) -> int:
    """Bytes of every layer's projection matrices (q/k/v, output, gate/up, down)."""
    return sum(matrix.numel() * matrix.element_size() for layer in weights.layers for matrix in _matrices(layer))


def packing_pays(weights: DecoderWeights) -> bool:
    """The default: pack where it was measured to pay (see the module docstring) and copies are made anyway
    (``weights.fused``)."""
    size = projection_bytes(weights)
    return weights.fused and packing_available(weights) and PACK_MIN_BYTES <= size < FUSE_LIMIT_BYTES


def packed(weights: DecoderWeights, rows: int) -> DecoderWeights:
    """``weights`` with every projection matrix packed for ``rows`` rows at a time (norms and biases
    as they are); the packed matrices are oneDNN tensors that only :func:`linear` multiplies by.

    Raises:
        ValueError: the weights are not float32 on the CPU, CPU autocast is on, or this torch has no oneDNN.
    """
    if not packing_available(weights):
        first = weights.layers[0].out
        raise ValueError(f"packed projections need float32 weights on the CPU, no CPU autocast and oneDNN "
                         f"(torch.backends.mkldnn); got {first.dtype} on {first.device}, CPU autocast "
                         f"{torch.is_autocast_enabled('cpu')}, oneDNN available: "
                         f"{torch.backends.mkldnn.is_available()}")

    def pack(matrix: Tensor) -> Tensor:
        return torch.ops.mkldnn._reorder_linear_weight(matrix, rows)

    layers = [replace(layer, qkv=[(pack(w), b) for w, b in layer.qkv], out=pack(layer.out),
                      gate_up=[(pack(w), b) for w, b in layer.gate_up], down=pack(layer.down))
              for layer in weights.layers]
    return replace(weights, layers=layers)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T + bias`` for a plain or a :func:`packed` weight."""
    if weight.is_mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def _matrices(layer: LayerWeights) -> list[Tensor]:
    return [w for w, _ in layer.qkv] + [layer.out] + [w for w, _ in layer.gate_up] + [layer.down]
