"""Transformers' own ``generate`` on the prompts, as the explicit choice ``sampler: transformers``.

Its sampling, stopping and options (``num_beams``, ``repetition_penalty``, the checkpoint's
``generation_config.json`` for what is not given) are transformers'; it has no latent slot. Greedy, it
gives the tokens of thinkspace's decoding (``tests/test_decode.py``). With sharded weights it runs with
``synced_gpus`` (each rank steps until every rank is done; transformers detects FSDP only where the model
itself is the wrapped module, not thinkspace's layer-wise FSDP2).
"""

from __future__ import annotations

from typing import Any

import torch

from thinkspace.data.batch import Batch
from thinkspace.generation.decoded import Decoded
from thinkspace.generation.rank_agreement import stop_test

#: options only thinkspace's decoding takes: refused here rather than handed to transformers
THINKSPACE_ONLY = ("force_start", "latent_steps", "early_end", "group", "generator", "fast", "return_logprobs",
                   "decode_step", "keep_prefix", "drop_finished")


@torch.no_grad()
def transformers_generate(backbone: Any, batch: Batch, inputs_embeds_hook: Any = None, **options: Any) -> Decoded:
    """``backbone.hf.generate`` on the batch's left-padded prompts (the responses are ignored), ``options``
    handed over as they are (``pad_token_id`` defaults to the tokenizer's).

    Args:
        inputs_embeds_hook: applied to the prefill, with the left-padded prompt batch (input cues).

    Raises:
        ValueError: naming an option only thinkspace's decoding takes.
    """
    refused = sorted(set(options) & set(THINKSPACE_ONLY))
    if refused:
        raise ValueError(f"sampler 'transformers' (transformers' generate) takes no option(s) {refused}: they are "
                         "thinkspace's decoding's; drop them or use sampler 'thinkspace'")
    tokenizer = backbone.tokenizer
    prompts = batch.prompts(tokenizer.pad_token_id)
    options.setdefault("pad_token_id", tokenizer.pad_token_id)
    if stop_test(backbone.language_model())[1]:  # sharded: every forward a collective, the ranks stop together
        options.setdefault("synced_gpus", True)
    with backbone.inputs_embeds_hook(inputs_embeds_hook, prompts):
        out = backbone.hf.generate(**backbone.model_inputs(prompts), **options)
    tokens = out[:, prompts.inputs["input_ids"].shape[1]:]
    rows = tokens.shape[0]
    return Decoded(texts=tokenizer.batch_decode(tokens, skip_special_tokens=True), tokens=tokens,
                   latents=torch.zeros(rows, 0, backbone.hidden_size, device=tokens.device),
                   has_latents=torch.zeros(rows, dtype=torch.bool, device=tokens.device), prompt_out=None,
                   prompts=prompts, group=rows // len(batch), decoder_step="transformers generate")
