"""Estimated GPU memory per device for each paper config, by part (docs/scaling.md's table).

Not a GPU measurement (no GPU here): parameter counts are exact (the real architectures are
built from their published dimensions on the meta device, no weights); the activation rule is
counted exactly on one real-width decoder layer and checked against a measured CPU peak at reduced
width (``benchmarks/activation_memory.py``); the rest is arithmetic, printed per part:

    python benchmarks/memory_estimate.py

Per device, ``N`` GPUs, under ``bf16-mixed`` with float32 master weights
(``thinkspace/training/master_weights.py``); the frozen vision tower stays bf16:

* **weights**: 4 bytes per trainable parameter, 2 per frozen one; FSDP2 divides them by N; ZeRO-3
  holds bf16 weights (2 bytes, / N), its float32 masters count as optimizer states. LoRA: the base
  model in bf16, the adapters 4 bytes.
* **gradients**: 4 bytes per trainable parameter (FSDP2 / N); ZeRO-3 2 (bf16, / N).
* **optimizer**: AdamW's two float32 moments, 8 bytes (/ N); ZeRO-3 12 (masters + moments, / N).
* **activations**: :func:`step_activation_bytes` with gradient checkpointing (every paper config
  turns it on); DDP computes under autocast (float32 residual stream), FSDP2 and ZeRO-3 in bf16.
  The frozen vision tower runs without keeping activations. GRPO: the completions' pass, plus the
  prompt's prefill with gradients (kept from the rollout to the policy's backward, not checkpointed).
* **logits**: at supervised positions only (``BackboneOutput.logits_at``): bf16 logits, their float32
  copy, the float32 log-softmax kept for backward and the float32 and bf16 gradients, 16 bytes
  per position and vocabulary entry; GRPO: one chunk of ``logprob_chunk_tokens`` (1,024) positions
  and its gradient buffer (``thinkspace/rl/chosen_logprobs.py``).
* **rollout buffers** (GRPO): the rollout's bf16 KV cache for G x (prompt + 2,048) tokens and the
  lean decode step's bf16 copy of the projections with LoRA folded in
  (``thinkspace/generation/decoder_weights.py``).
* **other**: DDP: autocast's bf16 copies of the trainable weights it casts (cached until the forward
  ends); ``thinkspace.training.strategies.DDP`` makes the gradients views of DDP's buckets (Lightning's
  ``ddp`` would add a copy, 4 bytes per trainable parameter) and AdamW takes its fused step on CUDA
  (no full-size temporaries). FSDP2 and ZeRO-3: the unsharded bf16 weights and gradients of the root
  group (embeddings, LM head), which stay gathered through the step, and two decoder layers' weights
  (the one computing, the one prefetched).
* **context**: 2 GB for the CUDA context, allocator slack and communication buffers.

The GRPO parts are summed (an upper bound: the rollout's buffers and the scoring's activations need
not coexist). VGGT-1B filling the teacher cache (``thinkspace cache-teacher``): its float32 weights
(the whole model, heads included, as loaded), autocast's bf16 copies of the aggregator's weights
(they require grad as loaded), and the 24 aggregator outputs ``[S, 1374, 2048]`` in bf16 the
aggregator returns, plus one block's working set.
"""

from __future__ import annotations

import torch
from torch import nn

GB = 1024**3


def qwen2_5_vl(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int,
               tied: bool) -> nn.Module:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                         tie_word_embeddings=tied),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=hidden),
        tie_word_embeddings=tied,
    )
    with torch.device("meta"):
        return Qwen2_5_VLForConditionalGeneration(config)


def llava_video_7b() -> nn.Module:
    """LLaVA-Video-7B-Qwen2: SigLIP-so400m (27 layers, 1152 wide) + Qwen2-7B."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    config = LlavaOnevisionConfig(
        text_config=dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, vocab_size=152064),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                           num_hidden_layers=27, num_attention_heads=16, image_size=384, patch_size=14),
        vision_feature_layer=-1,
    )
    with torch.device("meta"):
        return LlavaOnevisionForConditionalGeneration(config)


def split_counts(model: nn.Module) -> tuple[int, int]:
    """``(vision tower parameters, everything else)``."""
    vision = getattr(model.model, "visual", None) or model.model.vision_tower
    n_vision = sum(p.numel() for p in vision.parameters())
    return n_vision, sum(p.numel() for p in model.parameters()) - n_vision


def layer_bytes(text, compute: str) -> int:
    """Bytes per token one Qwen2 decoder layer keeps for its backward, without checkpointing.

    Counted exactly with ``torch.autograd.graph.saved_tensors_hooks`` on one layer of
    Qwen2.5-VL-3B's width (transformers 5.25, SDPA): the MLP's gate, up, SiLU(gate) and product
    in bf16 (8 x intermediate), K after RoPE and V (4 x key-value width), the attention's float32
    log-sum-exp (4 per head), the two norms' float32 factors (8), and the hidden-wide rest (the
    norms' float32 inputs and outputs, Q, the attention output, the projections' inputs): 30 x
    hidden under autocast (float32 residual stream), 20 x hidden with bf16 weights.

    Args:
        text: the decoder's config (``hidden_size``, ``intermediate_size``, heads).
        compute: ``"autocast"`` (float32 weights, bf16 autocast: DDP under ``bf16-mixed``) or
            ``"bf16"`` (bf16 weights: FSDP2's ``param_dtype``, DeepSpeed's bf16 mode).
    """
    heads = text.num_attention_heads
    kv_width = text.num_key_value_heads * (getattr(text, "head_dim", None) or text.hidden_size // heads)
    hidden_wide = 30 if compute == "autocast" else 20
    return hidden_wide * text.hidden_size + 8 * text.intermediate_size + 4 * kv_width + 4 * heads + 8


def step_activation_bytes(config, tokens: int, compute: str, checkpointing: bool, autocast_copies: int = 0) -> int:
    """Peak bytes of one sequence's forward + backward beyond weights, gradients and optimizer states.

    Without checkpointing every layer keeps :func:`layer_bytes` per token; with it each layer
    keeps its input (the residual stream: 4 bytes per channel under autocast, 2 in bf16) and one
    layer at a time is recomputed. The backward adds one layer's gradient buffers, about four
    intermediate-wide bf16 tensors (8 x intermediate bytes per token; measured, see
    benchmarks/activation_memory.py). ``autocast_copies``: parameters autocast casts to bf16 and
    caches until the forward ends (trainable float32 weights under ``bf16-mixed``), 2 bytes each.
    """
    text = config.get_text_config()
    layer, layers = layer_bytes(text, compute), text.num_hidden_layers
    if checkpointing:
        stream = 4 if compute == "autocast" else 2
        kept = tokens * (layers * stream * text.hidden_size + layer)
    else:
        kept = tokens * layers * layer
    return kept + tokens * 8 * text.intermediate_size + 2 * autocast_copies




def vggt_1b() -> nn.Module:
    """VGGT-1B (aggregator: 24 frame + 24 global blocks, 1024 wide; camera, depth, point and track heads)."""
    from torch.overrides import TorchFunctionMode
    from vggt.models.vggt import VGGT

    class LinspaceOnCPU(TorchFunctionMode):  # the DINOv2 stem reads a drop-path schedule with .item()
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func is torch.linspace:
                kwargs["device"] = "cpu"
            return func(*args, **kwargs)

    with torch.device("meta"), LinspaceOnCPU():
        return VGGT()


def linear_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def lora_parameters(model: nn.Module, rank: int = 64) -> int:
    """LoRA r x (in + out) on every linear layer of the decoder and on the LM head (stage2_grpo.yaml's targets)."""
    linears = [m for m in model.model.language_model.modules() if isinstance(m, nn.Linear)] + [model.lm_head]
    return sum(rank * (m.in_features + m.out_features) for m in linears)


def root_group(model: nn.Module) -> int:
    """Parameters of FSDP2's root group: the input embeddings and an untied LM head."""
    embeddings = model.get_input_embeddings().weight
    head = model.lm_head.weight
    return embeddings.numel() + (0 if head is embeddings else head.numel())


def logits_bytes(vocab: int, positions: int) -> int:
    return 16 * vocab * positions


def training_parts(model: nn.Module, strategy: str, tokens: int, supervised: int, gpus: int = 8) -> dict[str, float]:
    """GB per part of a full fine-tuning step (vision tower frozen) on one GPU (module docstring)."""
    vision, rest = split_counts(model)
    text = model.config.get_text_config()
    if strategy == "ddp":
        compute, shards = "autocast", 1
        weights, gradients, optimizer = 4 * rest + 2 * vision, 4 * rest, 8 * rest
        other = 2 * (linear_weights(model.model.language_model) + model.lm_head.weight.numel())
    else:
        compute, shards = "bf16", gpus
        if strategy == "fsdp2":
            weights, gradients, optimizer = 4 * rest + 2 * vision, 4 * rest, 8 * rest
        else:  # zero3
            weights, gradients, optimizer = 2 * (rest + vision), 2 * rest, 12 * rest
        layer = sum(p.numel() for p in model.model.language_model.layers[0].parameters())
        other = 2 * 2 * root_group(model) + 2 * 2 * layer
    return {
        "weights": weights / shards / GB,
        "gradients": gradients / shards / GB,
        "optimizer": optimizer / shards / GB,
        "activations": step_activation_bytes(model.config, tokens, compute, checkpointing=True) / GB,
        "logits": logits_bytes(text.vocab_size, supervised) / GB,
        "rollout buffers": 0.0,
        "other": other / GB,
        "context": 2.0,
    }


def grpo_parts(model: nn.Module, prompt: int, completion: int = 2048, group: int = 8,
               chunk: int = 1024) -> dict[str, float]:
    """GB per part of a GRPO LoRA r64 step under DDP on one GPU (module docstring)."""
    vision, rest = split_counts(model)
    lora = lora_parameters(model)
    text = model.config.get_text_config()
    kv_width = text.num_key_value_heads * (text.hidden_size // text.num_attention_heads)
    layers = text.num_hidden_layers
    completions = step_activation_bytes(model.config, group * completion, "bf16", checkpointing=True)
    prefill = prompt * layers * layer_bytes(text, "bf16")
    kv_cache = group * (prompt + completion) * layers * 2 * kv_width * 2
    folded = 2 * linear_weights(model.model.language_model)
    return {
        "weights": (2 * (vision + rest) + 4 * lora) / GB,
        "gradients": 4 * lora / GB,
        "optimizer": 8 * lora / GB,
        "activations": (completions + prefill) / GB,
        "logits": 2 * chunk * text.vocab_size * 4 / GB,
        "rollout buffers": (kv_cache + folded) / GB,
        "other": 2 * lora / GB,  # autocast's copies of the adapters
        "context": 2.0,
    }


def teacher_parts(model: nn.Module, views: int, tokens_per_view: int = 1374) -> dict[str, float]:
    """GB per part of VGGT-1B encoding one sample of ``views`` frames at 518 px under bf16 autocast."""
    aggregator = model.aggregator
    width = aggregator.camera_token.shape[-1]  # 1024; the outputs concatenate frame and global: 2 x
    tokens = views * tokens_per_view
    outputs = aggregator.aa_block_num * tokens * 2 * width * 2
    block = tokens * (3 * 4 * width + 6 * width) * 2  # MLP (4 x wide) and attention's working set, bf16
    return {
        "weights": 4 * sum(p.numel() for p in model.parameters()) / GB,
        "gradients": 0.0,
        "optimizer": 0.0,
        "activations": (outputs + block) / GB,
        "logits": 0.0,
        "rollout buffers": 0.0,
        "other": 2 * linear_weights(aggregator) / GB,
        "context": 2.0,
    }


def rows() -> list[tuple[str, str, str, str, dict[str, float]]]:
    """``(config, model, strategy, tokens/sample, parts)`` per row of docs/scaling.md's table."""
    qwen3b = qwen2_5_vl(2048, 11008, 36, 16, 2, 151936, True)
    llava = llava_video_7b()
    out = []
    for strategy, name in (("fsdp2", "FSDP2, 8 GPUs"), ("zero3", "ZeRO-3, 8 GPUs"), ("ddp", "DDP, 8 GPUs")):
        out.append(("3DThinker stage 1", "Qwen2.5-VL-3B", name, "2048 (512 supervised)",
                    training_parts(qwen3b, strategy, 2048, 512)))
    for strategy, name in (("fsdp2", "FSDP2, 8 GPUs"), ("zero3", "ZeRO-3, 8 GPUs"), ("ddp", "DDP, 8 GPUs")):
        # 32 frames as a video in LLaVA-Video's layout (joint.yaml: video_newline per_row): 32 x 14 x (14 + 1)
        # = 6,720, plus the question (about 130) and the time instruction (about 260: Qwen2 splits digits)
        out.append(("Loc3R-VLM joint", "LLaVA-Video-7B", name, "7100 (64 supervised)",
                    training_parts(llava, strategy, 7100, 64)))
    # the same scan as an image set (as_video: false): 32 x (27 x 27 + 1) = 23,360, plus the text
    out.append(("Loc3R-VLM joint, frames as images", "LLaVA-Video-7B", "FSDP2, 8 GPUs", "23500 (64 supervised)",
                training_parts(llava, "fsdp2", 23500, 64)))
    out.append(("3DThinker stage 2 (GRPO, LoRA r64)", "Qwen2.5-VL-3B", "DDP, 8 GPUs", "2048 + 8 x 2048",
                grpo_parts(qwen3b, 2048)))
    vggt = vggt_1b()
    for views in (4, 32):
        out.append((f"teacher cache, {views} views", "VGGT-1B", "one per GPU, bf16 autocast", f"{views} x 1374",
                    teacher_parts(vggt, views)))
    return out


def main() -> None:
    qwen3b, qwen7b, llava = qwen2_5_vl(2048, 11008, 36, 16, 2, 151936, True), \
        qwen2_5_vl(3584, 18944, 28, 28, 4, 152064, False), llava_video_7b()
    print("parameters (vision tower + rest):")
    for name, model in (("Qwen2.5-VL-3B", qwen3b), ("Qwen2.5-VL-7B", qwen7b), ("LLaVA-Video-7B-Qwen2", llava)):
        vision, rest = split_counts(model)
        print(f"  {name}: {vision:,} + {rest:,} = {vision + rest:,}")
    vggt = vggt_1b()
    print(f"  VGGT-1B: {sum(p.numel() for p in vggt.parameters()):,} "
          f"(aggregator {sum(p.numel() for p in vggt.aggregator.parameters()):,})\n")
    table = rows()
    names = list(table[0][4])
    print("| config | model | strategy | tokens/sample | " + " | ".join(names) + " | total GB |")
    print("| --- | --- | --- | --- |" + " ---: |" * (len(names) + 1))
    for config, model, strategy, tokens, parts in table:
        print(f"| {config} | {model} | {strategy} | {tokens} | " + " | ".join(f"{v:.1f}" for v in parts.values())
              + f" | {sum(parts.values()):.0f} |")


if __name__ == "__main__":
    main()
