"""Estimated GPU memory per device for the paper-scale models under each strategy.

Not a measurement (no GPU here): parameter counts are exact (the real architectures are
built from their published dimensions on the meta device, no weights), the rest is
arithmetic, printed with its assumptions so it can be checked. Used for the table in
docs/scaling.md.

    python benchmarks/memory_estimate.py

Assumptions, per device:
* full fine-tuning under ``bf16-mixed``: trainable parameters cost 16 bytes (fp32 weight,
  fp32 gradient, two fp32 AdamW moments), frozen ones 4 (fp32 weight), as Lightning keeps
  fp32 master weights; FSDP full shard and ZeRO-3 divide all of it by the GPU count, DDP
  replicates it.
* LoRA (GRPO): the base model frozen in bf16 (2 bytes), the adapter 16 bytes per parameter,
  DDP replicas; the reference policy is the same weights with the adapter off (no copy).
* activations with gradient checkpointing: each decoder layer keeps its bf16 input
  (2 x tokens x hidden bytes) and one layer is recomputed at a time (about
  34 x tokens x hidden bytes, Korthikanti et al. 2022 with flash attention); logits only at
  supervised positions (thinkspace's losses), so they are left out; the frozen vision tower
  runs without storing activations.
* plus 2 GB for the CUDA context, allocator slack and communication buffers.

GRPO (LoRA r64, G = 8 completions of 2,048 tokens after a prompt of ``tokens/sample``), printed per
part in a second table, summed (an upper bound: the rollout's parts and the scoring's need not
coexist):
* the lean decode step's copy of the decoder's projections with LoRA folded in (bf16);
* the rollout's KV cache, bf16, for 8 x (prompt + 2,048) tokens;
* the completions' activations under gradient checkpointing (8 x the rule above);
* the prompt's prefill with gradients (computed once by the rollout and kept for the policy's
  backward, not checkpointed: 34 x tokens x hidden bytes per layer);
* float32 logits of one chunk of ``logprob_chunk_tokens`` = 1,024 positions and their gradient buffer
  (``thinkspace/rl/chosen_logprobs.py``); materialised, all 8 x 2,048 positions' logits would be kept
  for backward (9.3 GiB at Qwen's vocabulary, about 2.5 times that at the backward's peak).
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


def activations(tokens: int, hidden: int, layers: int) -> float:
    return (2 * tokens * hidden * layers + 34 * tokens * hidden) / GB


def per_gpu(strategy: str, vision: int, rest: int, gpus: int, act: float, lora: int = 0) -> float:
    if strategy == "lora-ddp":
        states = (2 * (vision + rest) + 16 * lora) / GB
    else:
        states = (16 * rest + 4 * vision) / GB
        if strategy in ("fsdp", "zero3"):
            states /= gpus
    return states + act + 2.0


def grpo_parts(model: nn.Module, vision: int, rest: int, lora: int, prompt: int, hidden: int, layers: int,
               completion: int = 2048, group: int = 8, chunk: int = 1024) -> dict[str, float]:
    """GB per part of a GRPO LoRA step on one GPU (see the module docstring)."""
    text = model.config.get_text_config()
    kv_width = text.num_key_value_heads * (text.hidden_size // text.num_attention_heads)
    projections = sum(m.weight.numel() for n, m in model.model.language_model.named_modules()
                      if isinstance(m, nn.Linear))
    return {
        "weights + adapter states": (2 * (vision + rest) + 16 * lora) / GB,
        "folded LoRA copy": 2 * projections / GB,
        "rollout KV cache": group * (prompt + completion) * layers * 2 * kv_width * 2 / GB,
        "completion activations": group * activations(completion, hidden, layers),
        "prompt prefill with gradients": 34 * prompt * hidden * layers / GB,
        "logits (one chunk)": 2 * chunk * text.vocab_size * 4 / GB,
        "context": 2.0,
    }


def main() -> None:
    setups = [
        # name, model, tokens per sample (sequence), hidden, layers
        ("Qwen2.5-VL-3B (3DThinker stage 1)", qwen2_5_vl(2048, 11008, 36, 16, 2, 151936, True), 2048, 2048, 36),
        ("Qwen2.5-VL-7B", qwen2_5_vl(3584, 18944, 28, 28, 4, 152064, False), 2048, 3584, 28),
        # 32 frames as a video: 32 x 14 x 14 pooled tokens + 1 newline = 6,273, plus the text
        ("LLaVA-Video-7B (Loc3R-VLM, 32 frames)", llava_video_7b(), 6400, 3584, 28),
        # the same scan as an image set (as_video: false): 32 x (27 x 27 + 1) = 23,360, plus the text
        ("LLaVA-Video-7B, 32 frames as images", llava_video_7b(), 23500, 3584, 28),
    ]
    print("| model | parameters (vision + rest) | tokens/sample | DDP | FSDP full shard, 8 GPUs | ZeRO-3, 8 GPUs "
          "| GRPO LoRA r64 DDP, G 8 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    grpo_rows = []
    for name, model, tokens, hidden, layers in setups:
        vision, rest = split_counts(model)
        act = activations(tokens, hidden, layers)
        # LoRA r 64 on q, k, v, o, gate, up, down of every decoder layer: r x (in + out) each
        lora = 0
        for module in model.model.language_model.modules():
            if isinstance(module, nn.Linear):
                lora += 64 * (module.in_features + module.out_features)
        cells = [per_gpu(s, vision, rest, 8, act) for s in ("ddp", "fsdp", "zero3")]
        parts = grpo_parts(model, vision, rest, lora, tokens, hidden, layers)
        grpo_rows.append((name, parts))
        cells.append(sum(parts.values()))
        print(f"| {name} | {vision / 1e9:.2f}B + {rest / 1e9:.2f}B | {tokens} | "
              + " | ".join(f"{c:.0f} GB" for c in cells) + " |")
    names = list(grpo_rows[0][1])
    print("\nGRPO LoRA r64 DDP, G 8 x 2,048 completion tokens, per part (GB):\n")
    print("| model | " + " | ".join(names) + " | total |")
    print("| --- |" + " --- |" * (len(names) + 1))
    for name, parts in grpo_rows:
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in parts.values()) + f" | {sum(parts.values()):.0f} |")


if __name__ == "__main__":
    main()
