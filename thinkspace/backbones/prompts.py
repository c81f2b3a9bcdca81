"""Prompt-only batches for generation, shared by every backbone family."""

from __future__ import annotations

from dataclasses import replace

import torch

from thinkspace.data.batch import IGNORE_INDEX, Batch


def prompt_batch(batch: Batch, pad_id: int) -> Batch:
    """The batch's prompts alone, left-padded for generation; visual positions shifted to match."""
    ids, types = batch.inputs["input_ids"], batch.inputs["mm_token_type_ids"]
    lengths = batch.prompt_lengths
    width = int(lengths.max())
    shift = width - lengths  # [B] left padding per sample
    new_ids = ids.new_full((len(lengths), width), pad_id)
    new_types = torch.zeros_like(new_ids, dtype=types.dtype)
    mask = torch.zeros_like(new_ids)
    for b, n in enumerate(lengths.tolist()):
        s = width - n
        new_ids[b, s:], new_types[b, s:], mask[b, s:] = ids[b, :n], types[b, :n], 1
    inputs = dict(batch.inputs, input_ids=new_ids, attention_mask=mask, mm_token_type_ids=new_types)
    visual = replace(batch.visual, position=batch.visual.position + shift[batch.visual.sample])
    return replace(batch, inputs=inputs, labels=torch.full_like(new_ids, IGNORE_INDEX),
                   prompt_lengths=torch.full_like(lengths, width), visual=visual)
