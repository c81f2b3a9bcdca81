"""The repetition penalty of thinkspace's decoding, as transformers' ``RepetitionPenaltyLogitsProcessor``
applies it (CTRL's rule): the logit of every token already in the row, prompt included, is divided by the
penalty where it is positive and multiplied by it where it is negative, before the token is chosen (argmax
or draw).

Which ids count as seen, per row: the prompt's tokens (its left padding not: transformers 5 skips it
through ``prompt_ignore_length``, so a row's tokens do not depend on its batch neighbours) and every token
the row has emitted, the latent slot's start, pads and end included (3DThinker's patched sampler appends
them to ``input_ids`` and runs its logits processors at every step, latent steps too, so a penalised pad
or start can change whether the model closes the slot early). The seen set is a boolean ``[N, V]`` mask,
built once from the prompts and updated in place with each step's token: no growing id list to gather over.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def head_width(lm_head: nn.Module) -> int:
    """The logits ``lm_head`` gives per position, V: the ``out_features`` of its first ``nn.Linear`` (itself,
    or the layer a LoRA or ``modules_to_save`` wrapper holds), else its weight's rows."""
    for module in lm_head.modules():
        if isinstance(module, nn.Linear):
            return int(module.out_features)
    return int(lm_head.weight.shape[0])


class RepetitionPenalty:
    """The seen tokens of ``N`` rows and the penalty on their logits.

    Args:
        penalty: above 1 discourages repeats, below 1 encourages them (transformers' ``repetition_penalty``;
            Qwen2.5-VL-Instruct checkpoints ship 1.05).
        prompt_ids: ``[N, Lp]`` the rows' prompt ids (left-padded), on the logits' device.
        prompt_mask: ``[N, Lp]`` 1 on prompt tokens, 0 on padding (left out of the seen set).
        vocab: the LM head's width V (the logits' last axis); prompt ids beyond it are never seen.

    Raises:
        ValueError: a penalty that is not a positive number, naming ``repetition_penalty``.
    """

    def __init__(self, penalty: float, prompt_ids: Tensor, prompt_mask: Tensor, vocab: int) -> None:
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
            raise ValueError(f"decoding: repetition_penalty must be a positive number (1.0: none), got {penalty!r}")
        self.penalty = float(penalty)
        # built once, then updated in place by each step's token; padding goes to an extra column V, then
        # dropped, as do ids the head cannot emit
        ids = prompt_ids.masked_fill(~prompt_mask.to(prompt_ids.device).bool(), vocab).clamp(max=vocab)
        seen = torch.zeros(ids.shape[0], vocab + 1, dtype=torch.bool, device=ids.device).scatter_(1, ids, True)
        self.seen = seen[:, :vocab]  # [N, V]

    def __call__(self, logits: Tensor) -> Tensor:
        """``logits`` ``[N, V]`` (float32) with the seen tokens' entries penalised; a new tensor."""
        penalised = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
        return torch.where(self.seen, penalised, logits)

    def see(self, token: Tensor) -> None:
        """Add each row's token of this step ``[N]`` to its seen set."""
        self.seen.scatter_(1, token[:, None], True)

    def keep(self, index: Tensor) -> None:
        """Keep rows ``index`` ``[n']`` only (decoding dropped the rows that have stopped)."""
        self.seen = self.seen[index]
