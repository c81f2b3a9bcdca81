"""Generation with exactly k latent steps (3DThinker's inference), with a KV cache.

Each sample decodes normally until it emits ``<|latent_start|>`` (or from the first
step when ``force_start``); then come k latent steps, after which ``<|latent_end|>`` is
forced and normal decoding resumes. In a latent step the next input embedding is

* ``feedback``: the last-layer hidden state (after the final norm) of the previous
  position, as in the paper's inference (Coconut-style);
* ``tokens``: the ``<|latent_pad|>`` embedding, exactly as in teacher-forced training.

The latents returned are the hidden states at the k positions whose next input is a
latent step (start and the first k - 1 steps), the convention of
:mod:`thinkspace.objectives.latent_slot`. Works for Qwen-VL backbones (multimodal RoPE:
the prefill fixes the per-sample position offsets, later steps continue from them) and
1D-RoPE backbones alike. Sampling takes ``do_sample`` and ``temperature``; other
generation arguments are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from thinkspace.backbones.outputs import BackboneOutput, Batch
from thinkspace.backbones.prompts import prompt_batch


@dataclass
class LatentGeneration:
    """What :func:`generate_with_latents` returns.

    Attributes:
        texts: decoded continuations (special tokens skipped).
        tokens: ``[B, T]`` generated ids (pads stand for the latent steps; ``pad_token_id`` after the end).
        latents: ``[B, k, D]`` latents (zeros for a sample that never opened a slot).
        has_latents: ``[B]`` whether the sample produced its k latents.
        prompt_out: the backbone output on the prompt (input embeddings, visual index) for the projector.
        prompts: the left-padded prompt batch it ran on.
    """

    texts: list[str]
    tokens: Tensor
    latents: Tensor
    has_latents: Tensor
    prompt_out: BackboneOutput
    prompts: Batch


@torch.no_grad()
def generate_with_latents(
    backbone: Any,
    batch: Batch,
    slot: Any,
    mode: Literal["feedback", "tokens"] = "feedback",
    max_new_tokens: int = 32,
    force_start: bool = True,
    do_sample: bool = False,
    temperature: float = 1.0,
    eos_token_id: int | list[int] | None = None,
    **unused: Any,
) -> LatentGeneration:
    """Decode each prompt of ``batch`` with a latent slot of ``slot.k`` steps.

    Args:
        backbone: a Qwen-VL backbone (``hf``, ``tokenizer``).
        slot: a bound :class:`~thinkspace.objectives.latent_slot.LatentSlot`.
        mode: ``feedback`` or ``tokens`` (see the module docstring).
        max_new_tokens: decoding steps in total, latent steps included.
        force_start: emit the start token as the first token (slot placed at the start).
        eos_token_id: stop token(s); default the tokenizer's and the end-of-turn token.
    """
    if mode not in ("feedback", "tokens"):
        raise ValueError(f"latent decoding mode must be 'feedback' or 'tokens', got {mode!r}")
    hf, tokenizer = backbone.hf, backbone.tokenizer
    pad_id = tokenizer.pad_token_id
    stops = _stop_ids(tokenizer, eos_token_id)
    prompts = prompt_batch(batch, pad_id)
    from transformers import DynamicCache

    cache = DynamicCache()
    seen: dict[str, Tensor] = {}

    def keep(embeds: Tensor, _: Batch) -> Tensor:
        seen["embeds"] = embeds
        return embeds

    mrope = hasattr(hf.model, "rope_deltas")  # Qwen-VL: 3D RoPE; others: 1D positions
    if mrope:
        hf.model.rope_deltas = None  # recomputed by this prefill, never left over from another batch
    extra = {}
    if not mrope:  # left padding: positions count valid tokens only, as in (right-padded) training
        extra["position_ids"] = (prompts.inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with backbone._embeds_hook(keep, prompts):
        out = hf.model(**prompts.inputs, past_key_values=cache, use_cache=True, return_dict=True, **extra)
    hidden = out.last_hidden_state
    prompt_out = BackboneOutput(hidden=hidden, visual=prompts.visual, lm_head=hf.lm_head,
                                inputs_embeds=seen.get("embeds"))
    deltas = getattr(hf.model, "rope_deltas", None)  # [B, 1]: 3D-RoPE offset of each sample's next text position
    deltas = 0 if deltas is None else deltas
    embed = hf.get_input_embeddings()
    bsz, width = prompts.inputs["input_ids"].shape
    mask = prompts.inputs["attention_mask"]
    last = hidden[:, -1]  # [B, D]: its logits choose the next token
    # latent steps still to feed: -1 no slot yet, k..1 in the slot, 0 end is due, -2 slot closed
    remaining = torch.full((bsz,), -1, dtype=torch.long, device=hidden.device)
    latents = hidden.new_zeros(bsz, slot.k, hidden.shape[-1])
    count = torch.zeros(bsz, dtype=torch.long, device=hidden.device)
    done = torch.zeros(bsz, dtype=torch.bool, device=hidden.device)
    stops = stops.to(hidden.device)
    tokens = []
    for step in range(max_new_tokens):
        logits = hf.lm_head(last).float()
        if do_sample:
            token = torch.multinomial(torch.softmax(logits / max(temperature, 1e-5), -1), 1)[:, 0]
        else:
            token = logits.argmax(-1)
        if step == 0 and force_start:
            token = torch.full_like(token, slot.start_id)
        latent_step = remaining > 0
        sampled = remaining < 0
        token = torch.where(latent_step, torch.full_like(token, slot.pad_id), token)
        token = torch.where(remaining == 0, torch.full_like(token, slot.end_id), token)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        step_embeds = embed(token)[:, None]
        if mode == "feedback":
            step_embeds = torch.where(latent_step[:, None, None], last[:, None].to(step_embeds.dtype), step_embeds)
        opened = sampled & (remaining == -1) & (token == slot.start_id) & ~done
        remaining = torch.where(latent_step, remaining - 1, remaining)
        closed = ~latent_step & (token == slot.end_id) & (remaining == 0)
        remaining = torch.where(closed, torch.full_like(remaining, -2), remaining)
        remaining = torch.where(opened, torch.full_like(remaining, slot.k), remaining)
        tokens.append(token)
        # text positions continue from each sample's own valid length (left padding is not counted)
        position = (mask.sum(1, keepdim=True) + deltas).to(hidden.device)  # [B, 1]
        position = position.view(1, bsz, 1).expand(3, bsz, 1) if mrope else position
        mask = torch.cat([mask, (~done).long()[:, None]], 1)
        done = done | (sampled & torch.isin(token, stops))
        step_out = hf.model.language_model(inputs_embeds=step_embeds, attention_mask=mask, position_ids=position,
                                           past_key_values=cache, use_cache=True, return_dict=True)
        last = step_out.last_hidden_state[:, -1]
        # this position's hidden state is a latent when the next input is a latent step
        for b in ((remaining > 0) & (count < slot.k)).nonzero().flatten().tolist():
            latents[b, count[b]] = last[b]
            count[b] += 1
        if bool(done.all()):
            break
    ids = torch.stack(tokens, 1)
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    return LatentGeneration(texts=texts, tokens=ids, latents=latents, has_latents=count == slot.k,
                            prompt_out=prompt_out, prompts=prompts)


def _stop_ids(tokenizer: Any, eos: int | list[int] | None) -> Tensor:
    if eos is None:
        ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
        ids.discard(None)
        return torch.tensor(sorted(i for i in ids if isinstance(i, int) and i >= 0))
    return torch.tensor([eos] if isinstance(eos, int) else list(eos))
