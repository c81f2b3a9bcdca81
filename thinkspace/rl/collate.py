"""Prompt batches for rollouts: the backbone's collator without responses, plus what rewards read."""

from __future__ import annotations

from typing import Any

from thinkspace.data.batch import Batch
from thinkspace.data.schema import SpatialSample

#: ``Batch.targets`` key holding the prompts' texts and metadata for reward functions.
RL_KEY = "__rl__"


class PromptCollator:
    """Wrap a prompt-only collator; add ``targets[RL_KEY] = {"prompts": [str], "meta": [dict]}``.

    Picklable (runs in data workers).
    """

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, samples: list[SpatialSample]) -> Batch:
        batch = self.collate(samples)
        batch.targets[RL_KEY] = {"prompts": [s.prompt for s in samples], "meta": [dict(s.meta) for s in samples]}
        return batch
