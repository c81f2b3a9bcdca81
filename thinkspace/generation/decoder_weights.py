"""What the lean decode step needs from a decoder, read once per rollout: fused weights, or why not.

While a rollout decodes, the weights do not change, so each layer's projections are read once:
LoRA adapters are folded into their base weights (``W + scaling * B @ A``, peft's own
``get_delta_weight``), q/k/v are concatenated into one matrix and gate/up into another, and the
per-head q/k norms of Qwen3 into one ``[H + KV, head_dim]`` weight. :func:`lean_step_unsupported`
checks up front that the decoder is one the lean step computes exactly as its own modules do
(Qwen2, Qwen2-VL, Qwen2.5-VL and Qwen3-VL text decoders: RMSNorm, full attention with rotary
positions, SiLU MLP), and names what is not (sliding windows, another family, dropout that
would be drawn, DoRA, hooks, sharded or split weights, ...): the caller then keeps the Hugging
Face step. Memory: the fused matrices are copies, about one more set of the decoder's attention
and MLP input weights for the rollout's duration, made only when that is under 256 MiB (``fuse``);
folded LoRA projections are copies too. Time: folding costs one ``B @ A`` (``r x in x out``
multiply-adds) per adapted projection per rollout, small beside the rollout's decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from thinkspace.generation.decode_state import sliding_window_layers

#: decoder class name -> whether its attention normalises q and k per head (Qwen3).
SUPPORTED_DECODERS = {"Qwen2Model": False, "Qwen2VLTextModel": False, "Qwen2_5_VLTextModel": False,
                      "Qwen3VLTextModel": True}
#: the RMSNorm classes of those decoders (x * rsqrt(mean(x^2) + eps) in float32, then * weight).
RMS_NORMS = {"Qwen2RMSNorm", "Qwen2VLRMSNorm", "Qwen2_5_VLRMSNorm", "Qwen3VLTextRMSNorm"}
#: stack q/k/v and gate/up (a copy of those weights per rollout) only below this many bytes of copies.
FUSE_LIMIT_BYTES = 256 * 2**20
#: attention implementations that compute softmax(q k^T * scale + mask) v, as the lean step does.
EXACT_ATTENTION = {"sdpa", "eager", "flash_attention_2", "flash_attention_3"}


class LeanStepUnsupported(ValueError):
    """The decoder has something the lean step does not compute; the message names it."""


@dataclass
class LayerWeights:
    """One decoder layer's weights as the lean step uses them (``D`` hidden, ``H`` query heads,
    ``KV`` key/value heads, ``hd`` head dim, ``I`` MLP width).

    Attributes:
        input_norm, post_norm: ``[D]`` RMSNorm weights before attention and before the MLP.
        input_eps, post_eps: their epsilons.
        qkv: the q, k, v projections as ``(weight, bias or None)`` parts whose outputs concatenate to
            ``[N, (H + 2 KV) hd]``: one stacked part when fused, else the three.
        qk_norm: ``[H + KV, hd]`` per-head RMSNorm weights of q then k (Qwen3), or None; ``qk_eps`` its epsilon.
        out, out_bias: ``[D, H hd]`` output projection (and bias or None).
        gate_up: the gate then up projections as parts (one stacked ``[2 I, D]`` part when fused).
        down, down_bias: ``[D, I]`` down projection (and bias or None).
    """

    input_norm: Tensor
    input_eps: float
    post_norm: Tensor
    post_eps: float
    qkv: list[tuple[Tensor, Tensor | None]]
    qk_norm: Tensor | None
    qk_eps: float
    out: Tensor
    out_bias: Tensor | None
    gate_up: list[tuple[Tensor, Tensor | None]]
    down: Tensor
    down_bias: Tensor | None


@dataclass
class DecoderWeights:
    """A decoder's weights for the lean step.

    Attributes:
        layers: per-layer :class:`LayerWeights`.
        norm, norm_eps: ``[D]`` final RMSNorm weight and epsilon.
        heads, kv_heads, head_dim: query heads ``H``, key/value heads ``KV``, head dim ``hd``.
        scaling: attention scale (``hd ** -0.5``, the attention module's own).
        fused: q/k/v and gate/up are stacked copies (see :func:`decoder_weights`).
    """

    layers: list[LayerWeights]
    norm: Tensor
    norm_eps: float
    heads: int
    kv_heads: int
    head_dim: int
    scaling: float
    fused: bool = False


def lean_step_unsupported(language_model: nn.Module) -> str | None:
    """Why the lean step cannot decode with ``language_model`` (a reason naming the part), or None."""
    try:
        decoder_weights(language_model)
    except LeanStepUnsupported as err:
        return str(err)
    return None


def decoder_weights(language_model: nn.Module, fuse: bool | None = None) -> DecoderWeights:
    """Every layer's weights, LoRA folded in (detached: the module's own tensors where nothing is
    folded or stacked); raises :class:`LeanStepUnsupported` naming what the lean step does not compute.

    Args:
        fuse: stack q/k/v and gate/up into one matrix each (fewer kernel launches per token, one
            copy of those weights for the rollout); ``None``: when the copies take less than
            :data:`FUSE_LIMIT_BYTES` (tiny and small models; a 3B model keeps its own weights).
    """
    name = type(language_model).__name__
    if name not in SUPPORTED_DECODERS:
        raise LeanStepUnsupported(f"decoder {name}: the lean step supports {sorted(SUPPORTED_DECODERS)}")
    config = language_model.config
    _check_config(name, config)
    _check_placement(name, language_model)
    qk_norms = SUPPORTED_DECODERS[name]
    if fuse is None:
        fuse = _fused_bytes(language_model) < FUSE_LIMIT_BYTES
    with torch.no_grad():
        layers = [_layer_weights(f"{name}.layers.{i}", layer, config, qk_norms, fuse)
                  for i, layer in enumerate(language_model.layers)]
    norm, norm_eps = _norm(f"{name}.norm", language_model.norm)
    attn = language_model.layers[0].self_attn
    return DecoderWeights(layers=layers, norm=norm, norm_eps=norm_eps, heads=config.num_attention_heads,
                          kv_heads=config.num_key_value_heads, head_dim=attn.head_dim, scaling=float(attn.scaling),
                          fused=fuse)


def _check_config(name: str, config: object) -> None:
    other = sliding_window_layers(config)
    if other:
        raise LeanStepUnsupported(f"decoder {name}: sliding-window attention (layer kinds {other}, "
                                  f"use_sliding_window {getattr(config, 'use_sliding_window', None)}); the lean "
                                  "step attends to every position")
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope != "default":
        raise LeanStepUnsupported(f"decoder {name}: rope_type {rope!r}; the lean step supports 'default'")
    if getattr(config, "hidden_act", None) not in ("silu", "swish"):
        raise LeanStepUnsupported(f"decoder {name}: hidden_act {config.hidden_act!r}; the lean step supports 'silu'")
    attention = getattr(config, "_attn_implementation", "sdpa")
    if attention not in EXACT_ATTENTION:
        raise LeanStepUnsupported(f"decoder {name}: attention implementation {attention!r}; the lean step "
                                  f"computes what {sorted(EXACT_ATTENTION)} compute")


def _check_placement(name: str, language_model: nn.Module) -> None:
    """Hooks (FSDP, offloading, user hooks) and split or sharded weights change what a forward computes."""
    devices = set()
    for module_name, module in language_model.named_modules():
        if module_name.startswith("embed_tokens"):
            continue  # the decode loop embeds tokens itself; an embedding hook runs there
        if module._forward_hooks or module._forward_pre_hooks or hasattr(module, "_hf_hook"):
            raise LeanStepUnsupported(f"decoder {name}: module {module_name or '<root>'} has forward hooks; the "
                                      "lean step would skip them")
        for param_name, param in module.named_parameters(recurse=False):
            if type(param.data).__name__ == "DTensor" or type(param).__name__ == "DTensor":
                raise LeanStepUnsupported(f"decoder {name}: {module_name}.{param_name} is sharded (DTensor)")
            devices.add(param.device)
    if len(devices) > 1:
        raise LeanStepUnsupported(f"decoder {name}: weights on several devices {sorted(map(str, devices))}")


def _layer_weights(where: str, layer: nn.Module, config: object, qk_norms: bool, fuse: bool) -> LayerWeights:
    attn, mlp = layer.self_attn, layer.mlp
    if getattr(attn, "sliding_window", None) is not None:
        raise LeanStepUnsupported(f"{where}.self_attn: sliding window {attn.sliding_window}")
    if attn.training and float(getattr(config, "attention_dropout", 0.0) or 0.0) > 0:
        raise LeanStepUnsupported(f"{where}.self_attn: attention dropout {config.attention_dropout} in training "
                                  "mode (the Hugging Face step draws it)")
    heads, kv_heads, head_dim = config.num_attention_heads, config.num_key_value_heads, attn.head_dim
    q, k, v = (_linear(f"{where}.self_attn.{p}", getattr(attn, p)) for p in ("q_proj", "k_proj", "v_proj"))
    if q[0].shape[0] != heads * head_dim or k[0].shape[0] != kv_heads * head_dim:
        raise LeanStepUnsupported(f"{where}.self_attn: q/k sizes {q[0].shape[0]}/{k[0].shape[0]} are not "
                                  f"{heads}/{kv_heads} heads x {head_dim}")
    out = _linear(f"{where}.self_attn.o_proj", attn.o_proj)
    gate, up, down = (_linear(f"{where}.mlp.{p}", getattr(mlp, p)) for p in ("gate_proj", "up_proj", "down_proj"))
    if not isinstance(mlp.act_fn, nn.SiLU) and type(mlp.act_fn).__name__ not in ("SiLUActivation", "SiLU"):
        raise LeanStepUnsupported(f"{where}.mlp.act_fn is {type(mlp.act_fn).__name__}; the lean step uses SiLU")
    qk_norm, qk_eps = None, 0.0
    if qk_norms:
        q_weight, q_eps = _norm(f"{where}.self_attn.q_norm", attn.q_norm)
        k_weight, k_eps = _norm(f"{where}.self_attn.k_norm", attn.k_norm)
        if q_eps != k_eps:
            raise LeanStepUnsupported(f"{where}.self_attn: q_norm eps {q_eps} differs from k_norm eps {k_eps}")
        qk_norm = torch.cat([q_weight.expand(heads, head_dim), k_weight.expand(kv_heads, head_dim)])
        qk_eps = q_eps
    elif hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
        raise LeanStepUnsupported(f"{where}.self_attn has q/k norms its family does not")
    input_norm, input_eps = _norm(f"{where}.input_layernorm", layer.input_layernorm)
    post_norm, post_eps = _norm(f"{where}.post_attention_layernorm", layer.post_attention_layernorm)
    return LayerWeights(input_norm=input_norm, input_eps=input_eps, post_norm=post_norm, post_eps=post_eps,
                        qkv=_parts([q, k, v], fuse), qk_norm=qk_norm, qk_eps=qk_eps, out=out[0], out_bias=out[1],
                        gate_up=_parts([gate, up], fuse), down=down[0], down_bias=down[1])


def _norm(where: str, norm: nn.Module) -> tuple[Tensor, float]:
    if type(norm).__name__ not in RMS_NORMS:
        raise LeanStepUnsupported(f"{where} is {type(norm).__name__}; the lean step computes {sorted(RMS_NORMS)}")
    return norm.weight.detach(), float(norm.variance_epsilon)


def _parts(parts: list[tuple[Tensor, Tensor | None]], fuse: bool) -> list[tuple[Tensor, Tensor | None]]:
    """The projections as they are, or stacked into one (biases stacked too, zeros for one without)."""
    if not fuse:
        return parts
    weight = torch.cat([w for w, _ in parts])
    if all(bias is None for _, bias in parts):
        return [(weight, None)]
    return [(weight, torch.cat([w.new_zeros(w.shape[0]) if b is None else b for w, b in parts]))]


def _fused_bytes(language_model: nn.Module) -> int:
    """Bytes the stacked q/k/v and gate/up copies of every layer would take."""
    total = 0
    for layer in language_model.layers:
        for module in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.mlp.gate_proj,
                       layer.mlp.up_proj):
            weight = getattr(module, "get_base_layer", lambda m=module: m)().weight
            total += weight.numel() * weight.element_size()
    return total


def _linear(where: str, module: nn.Module) -> tuple[Tensor, Tensor | None]:
    """``(weight [out, in], bias [out] or None)`` of a plain ``nn.Linear`` or a peft LoRA ``Linear``
    with its active adapters folded in."""
    if type(module) is nn.Linear:
        return module.weight.detach(), None if module.bias is None else module.bias.detach()
    if not (hasattr(module, "base_layer") and hasattr(module, "lora_A") and hasattr(module, "get_delta_weight")):
        raise LeanStepUnsupported(f"{where} is {type(module).__name__}; the lean step reads nn.Linear and peft "
                                  "LoRA Linear layers")
    base = module.get_base_layer()
    if type(base) is not nn.Linear:
        raise LeanStepUnsupported(f"{where}: LoRA over {type(base).__name__}; the lean step reads nn.Linear")
    weight = base.weight.detach()
    bias = None if base.bias is None else base.bias.detach()
    if module.disable_adapters:
        if module.merged:
            raise LeanStepUnsupported(f"{where}: adapters disabled but merged (peft unmerges at the next forward)")
        return weight, bias
    merged = set(module.merged_adapters)
    for adapter in module.active_adapters:
        if adapter not in module.lora_A or adapter in merged:
            continue  # not a LoRA adapter of this layer, or already in the base weight
        if adapter in getattr(module, "lora_variant", {}) or getattr(module, "use_dora", {}).get(adapter, False):
            raise LeanStepUnsupported(f"{where}: adapter {adapter!r} is a LoRA variant (DoRA, ...); the lean step "
                                      "folds plain LoRA")
        if getattr(module, "lora_bias", {}).get(adapter, False):
            raise LeanStepUnsupported(f"{where}: adapter {adapter!r} has a LoRA bias")
        dropout = module.lora_dropout[adapter]
        if isinstance(dropout, nn.Dropout) and dropout.p > 0 and dropout.training:
            raise LeanStepUnsupported(f"{where}: adapter {adapter!r} has dropout {dropout.p} in training mode (the "
                                      "Hugging Face step draws it; eval mode or dropout 0 folds the adapter)")
        weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
    return weight, bias
