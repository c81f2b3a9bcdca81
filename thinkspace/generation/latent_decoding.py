"""KV-cached decoding with latent steps (3DThinker's inference), and group rollouts.

Each sample decodes normally until it emits ``<|latent_start|>`` (or from the first
step when ``force_start``); then come up to ``latent_steps`` latent steps (default the
slot's k), after which ``<|latent_end|>`` is forced and normal decoding resumes. With
``early_end`` the model may close the slot sooner: a latent step whose chosen token
(argmax or sample) is ``<|latent_end|>`` emits it instead of a pad. This is the official
generation (3DThinker's patched ``transformers/generation/utils.py``: the start token is
the model's choice, the end is its choice or forced after ``MAX_LATENT_LEN`` pads). In a
latent step the next input embedding is

* ``feedback``: the last-layer hidden state (after the final norm) of the previous
  position, as in the paper's inference (Coconut-style);
* ``tokens``: the ``<|latent_pad|>`` embedding, exactly as in teacher-forced training.

The latents returned are the hidden states at the positions whose next input is a
latent step (start and the pads but the last), the convention of
:mod:`thinkspace.objectives.latent_slot`; they are recorded when fed, so a slot closed
early holds as many latents as it has pads. In feedback mode latent ``j`` is also the
input embedding of pad ``j + 1``. Works for Qwen-VL backbones (multimodal RoPE: the
prefill fixes the per-sample position offsets, later steps continue from them) and
1D-RoPE backbones alike. Without a slot (``slot=None``) it is plain sampling.

Group rollouts (GRPO): with ``group=G`` each prompt is prefilled once (its images
encoded once), the prompt's KV cache is repeated G times and the ``B x G``
continuations are decoded as one batch, sample ``b`` of the prompt batch giving rows
``b * G ... b * G + G - 1``.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from thinkspace.backbones.capabilities import LATENT_DECODING
from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.data.batch import Batch
from thinkspace.generation.decode_state import DecodeMask, draw_uniforms, sliding_window_layers
from thinkspace.generation.decoder_step import lean_decoder_or_reason
from thinkspace.generation.prefill import Prefill, prefill
from thinkspace.generation.sampling import sample_token, stop_ids

#: decode a forced slot without early end on its fixed schedule (tests switch it off to compare)
SCHEDULE_FORCED_SLOT = True


@dataclass
class LatentGeneration:
    """What :func:`generate_with_latents` returns (``N = B x group`` rows).

    Attributes:
        texts: decoded continuations (special tokens skipped).
        tokens: ``[N, T]`` generated ids (pads stand for the latent steps; ``pad_token_id`` after the end).
        latents: ``[N, steps, D]`` latents (zeros past a row's ``latent_count``; ``[N, 0, D]`` without a slot).
        has_latents: ``[N]`` whether the sample produced the slot's k latents (what the projector
            takes; never when ``latent_steps`` differs from k).
        prompt_out: the backbone output on the ``B`` prompts (input embeddings, visual index) for the projector.
        prompts: the left-padded prompt batch (``B`` prompts) it ran on.
        completion_mask: ``[N, T]`` tokens that belong to the completion (up to and including the stop token).
        sampled: ``[N, T]`` completion tokens chosen by the sampler (not forced: a forced start, pads, end).
        latent_start: ``[N]`` step at which ``<|latent_start|>`` was emitted (-1: none); pads follow it.
        group: completions per prompt.
        latent_count: ``[N]`` latent steps taken (pads emitted, each fed one latent).
        logprobs: ``[N, T]`` log-probabilities of the emitted tokens under the decoding logits at
            ``temperature`` (0 outside the completion), when asked for (``return_logprobs``); the
            numbers :func:`~thinkspace.rl.rollout.sequence_logprobs` computes in a separate pass.
        decoder_step: which per-token step ran: ``"lean"``
            (:class:`~thinkspace.generation.decoder_step.LeanDecoder`) or ``"hugging face: <why>"``.
        prefix: with ``keep_prefix``, the ``N``-row prefill (repeated per group) as it was before
            decoding, computed with gradients: a scoring pass over the same weights can start from
            it instead of running the prompts again (:func:`~thinkspace.rl.rollout.sequence_logprobs`).
    """

    texts: list[str]
    tokens: Tensor
    latents: Tensor
    has_latents: Tensor
    prompt_out: BackboneOutput
    prompts: Batch
    completion_mask: Tensor | None = None
    sampled: Tensor | None = None
    latent_start: Tensor | None = None
    group: int = 1
    latent_count: Tensor | None = None
    logprobs: Tensor | None = None
    decoder_step: str = "hugging face"
    prefix: Prefill | None = None


@torch.no_grad()
def generate_with_latents(
    backbone: Any,
    batch: Batch,
    slot: Any | None,
    mode: Literal["feedback", "tokens"] = "feedback",
    max_new_tokens: int = 32,
    force_start: bool | None = None,
    latent_steps: int | None = None,
    early_end: bool = False,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    eos_token_id: int | list[int] | None = None,
    group: int = 1,
    generator: torch.Generator | list[torch.Generator] | None = None,
    inputs_embeds_hook: Any = None,
    fast: bool = True,
    return_logprobs: bool = False,
    decode_step: Literal["lean", "compiled", "hugging_face"] = "lean",
    keep_prefix: bool = False,
    **unknown: Any,
) -> LatentGeneration:
    """Decode each prompt of ``batch`` (``group`` times) with a latent slot of ``slot.k`` steps.

    Args:
        backbone: a backbone with ``hf``, ``tokenizer`` and ``model_inputs`` (Qwen-VL, LLaVA-OneVision).
        slot: a bound :class:`~thinkspace.objectives.latent_slot.LatentSlot`, or ``None`` for plain decoding.
        mode: ``feedback`` or ``tokens`` (see the module docstring).
        max_new_tokens: decoding steps in total, latent steps included.
        force_start: emit the start token as the first token; ``False``: the model opens the
            slot when it chooses the start token (official); ``None``: force it when the slot's
            ``placement`` is ``start``, not when it is ``end``.
        latent_steps: latent steps (pads) before the end is forced; ``None``: the slot's k
            (official: ``MAX_LATENT_LEN``, 12 in the code; the released MindCube-Tiny
            responses hold 8).
        early_end: the model may close the slot before ``latent_steps`` by choosing the end token.
        do_sample: sample (``temperature``, ``top_p``, ``top_k``) instead of the argmax.
        eos_token_id: stop token(s); default the tokenizer's and the end-of-turn token;
            ``[]`` never stops (every row decodes ``max_new_tokens``, e.g. for benchmarks).
        group: continuations per prompt, decoded as one batch from one shared prefill.
        generator: random generator for sampling (reproducible rollouts), or one per prompt:
            each prompt's ``group`` continuations then draw from its own generator only, so
            they do not depend on which other prompts share the batch (or the rank).
        inputs_embeds_hook: applied to the prefill's input embeddings (input cues).
        fast: (the Hugging Face step) hand the decoder the attention mask prepared for all steps at once
            (:class:`~thinkspace.generation.decode_state.DecodeMask`); ``False`` lets it build the
            mask at every token, as a plain forward does. The tokens are the same. A decoder with
            sliding-window layers always builds its own (one prepared mask cannot serve both kinds).
        return_logprobs: also return each emitted token's log-probability at ``temperature``
            (``LatentGeneration.logprobs``), from the logits the loop computes anyway.
        decode_step: the per-token step: ``lean``
            (:class:`~thinkspace.generation.decoder_step.LeanDecoder`: weights fused and LoRA folded
            once per rollout, static KV buffers, rotary tables for all steps) where the decoder
            supports it, else the Hugging Face step (``LatentGeneration.decoder_step`` says which ran
            and why); ``compiled``: the lean step through ``torch.compile`` (fixed shapes; see
            docs/benchmarks.md for what it gains on a CPU); ``hugging_face``: the model's own forward.
            The tokens are the same (bit for bit without LoRA; folded LoRA rounds within 1e-5).
        keep_prefix: run the prefill with gradients and return it (``LatentGeneration.prefix``), so
            the policy's scoring pass of a GRPO step reuses it instead of running the prompts and
            images again (equal only where the model has no dropout: the caller decides).

    Raises:
        ValueError: an option it does not take (a transformers ``generate`` option such as
            ``num_beams`` would otherwise be ignored silently), naming it.

    Per token the loop runs one decoder step (``decode_step``) and a few tensor operations; it
    reads nothing back from the device except, when a row can stop (``eos_token_id`` not ``[]``),
    whether all rows have stopped, every 8 tokens (steps after that are trimmed). The sampling's
    random numbers are drawn for all steps before the loop.
    """
    if unknown:  # e.g. a transformers generate option in model.generation: refused, never silently ignored
        raise ValueError(f"latent decoding takes no generation option(s) {sorted(unknown)} (from model.generation "
                         "or the call); it takes max_new_tokens, do_sample, temperature, top_p, top_k, eos_token_id, "
                         "force_start, latent_steps, early_end, decode_step")
    if mode not in ("feedback", "tokens"):
        raise ValueError(f"latent decoding mode must be 'feedback' or 'tokens', got {mode!r}")
    if group < 1:
        raise ValueError(f"latent decoding: group must be at least 1, got {group}")
    if decode_step not in ("lean", "compiled", "hugging_face"):
        raise ValueError(f"latent decoding: decode_step must be 'lean', 'compiled' or 'hugging_face', got "
                         f"{decode_step!r}")
    backbone.require(LATENT_DECODING, "generate_with_latents (latent decoding: LatentAlignment.generate, GRPO)")
    hf, tokenizer = backbone.hf, backbone.tokenizer
    pad_id = tokenizer.pad_token_id
    stops = stop_ids(tokenizer, eos_token_id)
    prompts = batch.prompts(pad_id)
    with torch.enable_grad() if keep_prefix else nullcontext():  # the repeat too: the graph reaches the prompts
        pre = prefill(backbone, prompts, inputs_embeds_hook)
        prompt_out = pre.out
        pre = pre.repeat(group)
    kept_prefix = pre.kept() if keep_prefix else None
    cache, hidden, mask = pre.cache, pre.hidden, pre.mask
    embed, decoder = hf.get_input_embeddings(), backbone.language_model()
    bsz = hidden.shape[0]
    k = (slot.k if latent_steps is None else int(latent_steps)) if slot is not None else 0
    if slot is not None and k < 1:
        raise ValueError(f"latent decoding: latent_steps must be at least 1, got {latent_steps}")
    if force_start is None:
        force_start = slot is not None and slot.placement == "start"
    last = hidden[:, -1]  # [N, D]: its logits choose the next token
    device = hidden.device
    # latent steps still to feed: -1 no slot yet, k..1 in the slot, 0 end is due, -2 slot closed (or no slot)
    remaining = torch.full((bsz,), -1 if slot is not None else -2, dtype=torch.long, device=device)
    latents = hidden.new_zeros(bsz, k, hidden.shape[-1])
    count = torch.zeros(bsz, dtype=torch.long, device=device)
    started = torch.full((bsz,), -1, dtype=torch.long, device=device)
    done = torch.zeros(bsz, dtype=torch.bool, device=device)
    stops = stops.to(device)
    can_stop = stops.numel() > 0
    rows = torch.arange(bsz, device=device)
    every_row = torch.ones(bsz, dtype=torch.bool, device=device)
    uniforms = draw_uniforms(bsz, max_new_tokens, generator, device) if do_sample else None
    # one prepared mask is every layer's only when every layer attends fully (not Gemma 3's sliding
    # windows: the decoder then builds each layer's own mask, as a plain forward does)
    attention = DecodeMask(mask, max_new_tokens, prepared=fast and not sliding_window_layers(decoder.config))
    lean, decoder_step = None, "hugging face: decode_step hugging_face"
    if decode_step != "hugging_face":  # built once per rollout: the weights do not change while it decodes
        lean, decoder_step = lean_decoder_or_reason(decoder, cache, mask, pre.positions(max_new_tokens),
                                                    compile=decode_step == "compiled", rows_stop=can_stop)
    # text positions continue from each sample's own valid length (left padding is not counted);
    # a finished row's positions run on too, harmlessly: its outputs are never read again
    first_position = (mask.sum(1, keepdim=True) + pre.deltas).to(device)  # [N, 1]
    # a forced start and no early end: every row opens the slot at step 0, feeds k latents and closes it
    # at step k + 1, so those steps' tokens are known here and need no logits (unless their
    # log-probabilities are asked for) and no per-row bookkeeping; afterwards rows decode as without a slot
    scheduled = slot is not None and force_start and not early_end and SCHEDULE_FORCED_SLOT
    tracking = slot is not None and not scheduled  # the slot's state is followed per row and per step
    no_row = ~every_row
    if scheduled:  # the slot's three tokens as whole rows, made once (not at every step)
        slot_rows = [torch.full((bsz,), i, dtype=torch.long, device=device)
                     for i in (slot.start_id, slot.pad_id, slot.end_id)]
    tokens, free, kept, logprobs = [], [], [], []
    for step in range(max_new_tokens):
        if scheduled and step <= k + 1:
            token = slot_rows[0 if step == 0 else 1 if step <= k else 2]
            step_embeds = embed(token)[:, None]
            if 0 < step <= k:  # the hidden state before a pad is latent step - 1 (fed back in feedback mode)
                latents[:, step - 1] = last.to(latents.dtype)
                if mode == "feedback":
                    step_embeds = last[:, None].to(step_embeds.dtype)
            live = every_row  # nothing is sampled before the slot closes: no row has stopped
            free.append(no_row)
            kept.append(live)
            tokens.append(token)
            if return_logprobs:
                scaled = hf.lm_head(last).float() / max(temperature, 1e-5)
                logprobs.append(scaled.gather(-1, token[:, None])[:, 0] - torch.logsumexp(scaled, -1))
        else:
            logits = hf.lm_head(last).float()
            if do_sample:
                token = sample_token(logits, temperature, top_p, top_k, uniform=uniforms[step])
            else:
                token = logits.argmax(-1)
            forced_start = tracking and step == 0 and force_start
            if forced_start:
                token = torch.full_like(token, slot.start_id)
            # without a slot (or after a scheduled one) every token is the sampler's choice
            latent_step, sampled = (remaining > 0, remaining < 0) if tracking else (None, every_row)
            if tracking and early_end:  # the model's own end closes the slot (a chosen, not forced, token)
                ends_early = latent_step & (token == slot.end_id)
                latent_step, sampled = latent_step & ~ends_early, sampled | ends_early
            if tracking:
                token = torch.where(latent_step, torch.full_like(token, slot.pad_id), token)
                token = torch.where(remaining == 0, torch.full_like(token, slot.end_id), token)
            if can_stop:  # no row stops otherwise: done stays all False
                token = torch.where(done, torch.full_like(token, pad_id), token)
            step_embeds = embed(token)[:, None]
            if tracking:
                if mode == "feedback":
                    step_embeds = torch.where(latent_step[:, None, None], last[:, None].to(step_embeds.dtype),
                                              step_embeds)
                # the hidden state before a pad is a latent (fed back in feedback mode): written in
                # place, without reading which rows take one (no device sync)
                record = latent_step & ~done & (count < k)
                slot_index = count.clamp(max=k - 1)
                latents[rows, slot_index] = torch.where(record[:, None], last.to(latents.dtype),
                                                        latents[rows, slot_index])
                count = count + record.long()
            live = ~done if can_stop else every_row  # this step's token counts unless the row had already stopped
            free.append(live & sampled if not forced_start else no_row)
            kept.append(live)
            if tracking:
                opened = sampled & (remaining == -1) & (token == slot.start_id) & ~done
                started = torch.where(opened, torch.full_like(started, step), started)
                remaining = torch.where(latent_step, remaining - 1, remaining)
                closed = ~latent_step & (token == slot.end_id) & (remaining >= 0)
                remaining = torch.where(closed, torch.full_like(remaining, -2), remaining)
                remaining = torch.where(opened, torch.full_like(remaining, k), remaining)
            tokens.append(token)
            if return_logprobs:
                scaled = logits / max(temperature, 1e-5)
                logprobs.append(scaled.gather(-1, token[:, None])[:, 0] - torch.logsumexp(scaled, -1))
            if can_stop:
                done = done | (sampled & torch.isin(token, stops))
        if lean is not None:
            last = lean.step(step_embeds[:, 0], step, live)
        else:
            position = first_position + step
            position = position.view(1, bsz, 1).expand(3, bsz, 1) if pre.mrope else position
            step_out = decoder(inputs_embeds=step_embeds, attention_mask=attention.step(step, live),
                               position_ids=position, past_key_values=cache, use_cache=True, return_dict=True)
            last = step_out.last_hidden_state[:, -1]
        # the only device sync of the loop, and only when a row can stop: every 8 steps
        if can_stop and step % 8 == 7 and bool(done.all()):
            break
    if scheduled:  # every row opened the slot at step 0 and took the latent steps the budget allowed
        started, count = torch.zeros_like(started), torch.full_like(count, min(k, max_new_tokens - 1))
    kept = torch.stack(kept, 1)
    steps = int(kept.any(0).sum())  # steps after every row had stopped hold nothing: trimmed
    ids = torch.stack(tokens, 1)[:, :steps]
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    complete = (count == k) & (k > 0) & (slot is not None and k == slot.k)  # the projector takes k latents
    logp = torch.stack(logprobs, 1)[:, :steps].where(kept[:, :steps], 0.0) if return_logprobs else None
    return LatentGeneration(texts=texts, tokens=ids, latents=latents, has_latents=complete,
                            prompt_out=prompt_out, prompts=prompts, completion_mask=kept[:, :steps],
                            sampled=torch.stack(free, 1)[:, :steps], latent_start=started, group=group,
                            latent_count=count, logprobs=logp, decoder_step=decoder_step,
                            prefix=kept_prefix)
