"""Prompt-only batches for generation, shared by every backbone family."""

from __future__ import annotations

from dataclasses import replace

import torch

from thinkspace.data.batch import IGNORE_INDEX, Batch


def prompt_batch(batch: Batch, pad_id: int) -> Batch:
    """The batch's prompts alone, left-padded for generation; visual positions shifted to match.

    Every per-token input (``[B, L]`` like ``input_ids``: the attention mask, Qwen-VL's
    ``mm_token_type_ids``) is cut and left-padded the same way: ids with ``pad_id``, the rest with 0.
    """
    ids = batch.inputs["input_ids"]
    lengths = batch.prompt_lengths
    width = int(lengths.max())
    shift = width - lengths  # [B] left padding per sample
    per_token = [k for k, v in batch.inputs.items()
                 if v.shape == ids.shape and k not in ("input_ids", "attention_mask")]
    new_ids = ids.new_full((len(lengths), width), pad_id)
    new = {k: torch.zeros_like(new_ids, dtype=batch.inputs[k].dtype) for k in per_token}
    for b, n in enumerate(lengths.tolist()):
        new_ids[b, width - n:] = ids[b, :n]
        for k in per_token:
            new[k][b, width - n:] = batch.inputs[k][b, :n]
    mask = (torch.arange(width, device=ids.device)[None] >= shift.to(ids.device)[:, None]).to(ids.dtype)
    inputs = dict(batch.inputs, **new, input_ids=new_ids, attention_mask=mask)
    visual = replace(batch.visual, position=batch.visual.position + shift[batch.visual.sample])
    return replace(batch, inputs=inputs, labels=torch.full_like(new_ids, IGNORE_INDEX),
                   prompt_lengths=torch.full_like(lengths, width), visual=visual)
