"""``decode``: the one entry to decoding, for both modules (validation, test, predict, ``thinkspace ask``,
GRPO rollouts), so the same settings decode the same way everywhere.

``sampler: thinkspace`` (the default) is thinkspace's KV-cached loop: the prompts are run once
(:mod:`~thinkspace.generation.prefill`), repeated per group, and decoded with or without a latent slot
(:mod:`~thinkspace.generation.slots`) by :func:`~thinkspace.generation.decode_loop.decode_loop`, one model
step per token (:mod:`~thinkspace.generation.model_step`). ``sampler: transformers`` is transformers' own
``generate`` (:mod:`~thinkspace.generation.transformers_generate`), chosen explicitly.

Group rollouts (GRPO): with ``group=G`` each prompt is prefilled once (its images encoded once), the
prompt's KV cache is repeated G times and the ``B x G`` continuations are decoded as one batch, sample
``b`` of the prompt batch giving rows ``b * G ... b * G + G - 1``. Works for Qwen-VL backbones (3D RoPE:
the prefill fixes the per-sample position offsets, later steps continue from them) and 1D-RoPE ones alike.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Literal

import torch

from thinkspace.backbones.capabilities import LATENT_DECODING
from thinkspace.data.batch import Batch
from thinkspace.generation.decode_loop import Sampling, decode_loop
from thinkspace.generation.decode_state import draw_uniforms
from thinkspace.generation.decoded import Decoded
from thinkspace.generation.model_step import model_step
from thinkspace.generation.prefill import prefill
from thinkspace.generation.rank_agreement import stop_test
from thinkspace.generation.repetition import RepetitionPenalty, head_width
from thinkspace.generation.sampling import stop_ids
from thinkspace.generation.slots import slot_rows
from thinkspace.generation.transformers_generate import transformers_generate
from thinkspace.utils.choices import check_choice

Sampler = Literal["thinkspace", "transformers"]
#: The per-token step: by device (lean on the CPU), thinkspace's lean step, the same compiled, or the
#: Hugging Face forward.
DecodeStep = Literal["auto", "lean", "compiled", "hugging_face"]
#: Latent steps feed back the hidden state, or the pad token's embedding.
DecodeMode = Literal["feedback", "tokens"]


def decode(backbone: Any, batch: Batch, slot: Any | None = None, mode: DecodeMode = "feedback",
           inputs_embeds_hook: Any = None, sampler: Sampler = "thinkspace", **settings: Any) -> Decoded:
    """Continue each prompt of ``batch`` (its responses are ignored).

    Args:
        backbone: the model (``hf``, ``tokenizer``, ``model_inputs``, ``language_model``).
        slot: a bound :class:`~thinkspace.objectives.latent_slot.LatentSlot` (its owner,
            :class:`~thinkspace.objectives.latent3d.LatentAlignment`, passes it), or ``None``.
        mode: latent steps feed the hidden state back (``feedback``) or the pad embedding (``tokens``).
        inputs_embeds_hook: applied to the prefill's input embeddings (input cues).
        sampler: ``thinkspace`` (:func:`thinkspace_decode`, whose options ``settings`` are) or
            ``transformers`` (transformers' ``generate``, its options; no latent slot).

    Raises:
        ValueError: an unknown sampler, a latent slot with ``transformers``, or an option the sampler
            does not take, naming it.
    """
    if sampler == "transformers":
        if slot is not None:
            raise ValueError("sampler 'transformers' cannot decode a latent slot (transformers' generate feeds "
                             "tokens only); use sampler 'thinkspace' with a LatentAlignment objective")
        return transformers_generate(backbone, batch, inputs_embeds_hook, **settings)
    if sampler != "thinkspace":
        raise ValueError(f"sampler must be 'thinkspace' or 'transformers', got {sampler!r}")
    return thinkspace_decode(backbone, batch, slot, mode, inputs_embeds_hook, **settings)


@torch.no_grad()
def thinkspace_decode(
    backbone: Any,
    batch: Batch,
    slot: Any | None = None,
    mode: DecodeMode = "feedback",
    inputs_embeds_hook: Any = None,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    repetition_penalty: float = 1.0,
    eos_token_id: int | list[int] | None = None,
    force_start: bool | None = None,
    latent_steps: int | None = None,
    early_end: bool = False,
    group: int = 1,
    generator: torch.Generator | list[torch.Generator] | None = None,
    return_logprobs: bool = False,
    decode_step: DecodeStep = "auto",
    fast: bool = True,
    keep_prefix: bool = False,
    drop_finished: bool = True,
    **unknown: Any,
) -> Decoded:
    """thinkspace's decoding of each prompt (``group`` times), with a latent slot of ``latent_steps`` steps
    when ``slot`` is given (3DThinker's generation: the start is the model's choice or forced; the end is
    its choice with ``early_end``, else forced after ``latent_steps`` pads).

    Args:
        max_new_tokens: decoding steps in total, latent steps included.
        do_sample: sample (``temperature``, ``top_p``, ``top_k``) instead of the argmax.
        repetition_penalty: transformers' repetition penalty (1.0: none) on every choice, latent steps
            included, over the prompt and every emitted token, the slot's included
            (:mod:`~thinkspace.generation.repetition`). The other logits processors transformers' generate
            builds from a generation config (``no_repeat_ngram_size``, ``min_new_tokens``, ``bad_words_ids``,
            ...) are not taken: refused by name, as every unknown option.
        eos_token_id: stop token(s); default the tokenizer's and the end-of-turn token; ``[]`` never
            stops (every row decodes ``max_new_tokens``, e.g. for benchmarks).
        force_start: emit the start token first; ``False``: the model opens the slot when it chooses the
            start token (official); ``None``: forced when the slot's ``placement`` is ``start``.
        latent_steps: latent steps (pads) before the end is forced; ``None``: the slot's k. 3DThinker's
            authors decode 8 (``MAX_LATENT_LEN`` in their patched ``generation/utils.py``, c0961ad to
            4787857) after training with k = 12; the mirror's commit 717ed3f changed it to 12.
        early_end: the model may close the slot before ``latent_steps`` by choosing the end token.
        group: continuations per prompt, decoded as one batch from one shared prefill.
        generator: random generator for sampling, or one per prompt: each prompt's ``group`` continuations
            then draw from its own generator only (independent of the other prompts in the batch, or rank).
        return_logprobs: also each emitted token's log-probability at ``temperature``.
        decode_step: the per-token step: ``auto`` (``lean`` on the CPU; the Hugging Face step on a GPU until
            the lean one is measured there, logged once: :func:`~thinkspace.generation.model_step.auto_step`),
            ``lean`` where the decoder supports it (else the Hugging Face step; ``Decoded.decoder_step`` says
            which ran and why), ``compiled`` (the lean step through ``torch.compile``) or ``hugging_face``.
            The tokens are the same (bit for bit without LoRA; folded LoRA rounds within 1e-5). Sharded
            weights (FSDP2, ZeRO-3) always take the Hugging Face step, and the ranks stop together
            (:mod:`~thinkspace.generation.rank_agreement`).
        fast: (the Hugging Face step) the attention mask prepared once for all steps (the same tokens).
        keep_prefix: run the prefill with gradients and return it (``Decoded.prefix``), so GRPO's scoring
            pass reuses it (equal only where the model has no dropout: the caller decides).
        drop_finished: drop rows that have stopped from the running batch every 8 tokens (their KV cache,
            positions, slot and sampling state), so a batch costs what its live rows cost; ``False`` masks
            them until every row is done (the same tokens; see
            :func:`~thinkspace.generation.decode_loop.decode_loop`).

    Raises:
        ValueError: an option it does not take (a transformers ``generate`` option such as ``num_beams``
            would otherwise be ignored silently), naming it; a bad mode, group, decode step or slot option.
    """
    if unknown:  # e.g. a transformers generate option in model.generation: refused, never silently ignored
        raise ValueError(f"{'latent decoding' if slot is not None else 'decoding'} takes no generation option(s) "
                         f"{sorted(unknown)} (from model.generation or the call); it takes max_new_tokens, do_sample, "
                         "temperature, top_p, top_k, repetition_penalty, eos_token_id, force_start, latent_steps, "
                         "early_end, decode_step, drop_finished; "
                         "sampler: transformers hands every option to transformers' generate (no latent slot)")
    check_choice("latent decoding mode", mode, DecodeMode)
    if group < 1:
        raise ValueError(f"decoding: group must be at least 1, got {group}")
    check_choice("decoding: decode_step", decode_step, DecodeStep)
    backbone.require(LATENT_DECODING, "decode (thinkspace's decoding; sampler: transformers does without)")
    k = (slot.k if latent_steps is None else int(latent_steps)) if slot is not None else 0
    if slot is not None and k < 1:
        raise ValueError(f"latent decoding: latent_steps must be at least 1, got {latent_steps}")
    tokenizer, hf = backbone.tokenizer, backbone.hf
    stops = stop_ids(tokenizer, eos_token_id)
    prompts = batch.prompts(tokenizer.pad_token_id)
    with torch.enable_grad() if keep_prefix else nullcontext():  # the repeat too: the graph reaches the prompts
        pre = prefill(backbone, prompts, inputs_embeds_hook)
        prompt_out = pre.out
        pre = pre.repeat(group)
    kept_prefix = pre.kept() if keep_prefix else None
    last = pre.hidden[:, -1]  # [N, D]: its logits choose the first token
    if force_start is None:
        force_start = slot is not None and slot.placement == "start"
    rows = slot_rows(slot, k, max_new_tokens, force_start, early_end, mode == "feedback", last)
    uniforms = draw_uniforms(last.shape[0], max_new_tokens, generator, last.device) if do_sample else None
    repetition = None if repetition_penalty == 1.0 else RepetitionPenalty(
        repetition_penalty, prompts.inputs["input_ids"].to(last.device).repeat_interleave(group, 0),
        prompts.inputs["attention_mask"].repeat_interleave(group, 0),  # rows b * G .. b * G + G - 1: prompt b
        head_width(hf.lm_head))
    all_done, sharded = stop_test(backbone.language_model())  # sharded: every step a collective, ranks agree
    step, decoder_step = model_step(backbone.language_model(), pre, max_new_tokens, decode_step, fast,
                                    rows_stop=stops.numel() > 0, sharded=sharded)
    out = decode_loop(step, hf.lm_head, hf.get_input_embeddings(), last, rows, max_new_tokens,
                      Sampling(do_sample, temperature, top_p, top_k, uniforms, repetition), stops,
                      tokenizer.pad_token_id, return_logprobs, all_done, drop_finished)
    started, count = rows.outcome()
    complete = (count == k) & (k > 0) & (slot is not None and k == slot.k)  # the projector takes k latents
    return Decoded(texts=tokenizer.batch_decode(out.tokens, skip_special_tokens=True), tokens=out.tokens,
                   latents=rows.latents, has_latents=complete, prompt_out=prompt_out, prompts=prompts,
                   completion_mask=out.kept, sampled=out.sampled, latent_start=started, group=group,
                   latent_count=count, logprobs=out.logprobs, decoder_step=decoder_step, prefix=kept_prefix)
