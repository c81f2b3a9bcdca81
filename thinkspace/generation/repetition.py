"""The repetition penalty of thinkspace's decoding, as transformers' ``RepetitionPenaltyLogitsProcessor``
applies it (CTRL's rule): the logit of every token already in the row, prompt included, is divided by the
penalty where it is positive and multiplied by it where it is negative, before the token is chosen (argmax
or draw).

Which ids count as seen, per row: the prompt's tokens (its left padding not: transformers 5 skips it
through ``prompt_ignore_length``, so a row's tokens do not depend on its batch neighbours) and every token
the row has emitted, the latent slot's start, pads and end included (3DThinker's patched sampler appends
them to ``input_ids`` and runs its logits processors at every step, latent steps too, so a penalised pad
or start can change whether the model closes the slot early). The seen set is a boolean ``[N, V]`` mask
updated in place with each step's token: no growing id list to gather over.
"""

from __future__ import annotations

import torch
from torch import Tensor


class RepetitionPenalty:
    """The seen tokens of ``N`` rows and the penalty on their logits.

    Args:
        penalty: above 1 discourages repeats, below 1 encourages them (transformers' ``repetition_penalty``;
            Qwen2.5-VL-Instruct checkpoints ship 1.05).
        prompt_ids: ``[N, Lp]`` the rows' prompt ids (left-padded).
        prompt_mask: ``[N, Lp]`` 1 on prompt tokens, 0 on padding (left out of the seen set).

    Raises:
        ValueError: a penalty that is not a positive number, naming ``repetition_penalty``.
    """

    def __init__(self, penalty: float, prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
            raise ValueError(f"decoding: repetition_penalty must be a positive number (1.0: none), got {penalty!r}")
        self.penalty = float(penalty)
        self.prompt_ids, self.prompt_mask = prompt_ids, prompt_mask.bool()
        self.seen: Tensor | None = None  # [N, V], built at the first logits (V: the LM head's width)
        self.pending: list[Tensor] = []  # tokens emitted before the first logits (a forced start)

    def __call__(self, logits: Tensor) -> Tensor:
        """``logits`` ``[N, V]`` (float32) with the seen tokens' entries penalised; a new tensor."""
        if self.seen is None:
            rows, vocab = logits.shape
            ids = self.prompt_ids.to(logits.device).masked_fill(~self.prompt_mask.to(logits.device), vocab)
            ids = torch.cat([ids, *(t[:, None].to(ids) for t in self.pending)], 1)
            # padding goes to an extra column V, then dropped; so do ids the head cannot emit
            self.seen = logits.new_zeros(rows, vocab + 1, dtype=torch.bool).scatter_(1, ids.clamp(max=vocab), True)
            self.seen = self.seen[:, :vocab]
        penalised = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
        return torch.where(self.seen, penalised, logits)

    def see(self, token: Tensor) -> None:
        """Add each row's token of this step ``[N]`` to its seen set."""
        if self.seen is None:
            self.pending.append(token)
        else:
            self.seen.scatter_(1, token[:, None], True)

    def keep(self, index: Tensor) -> None:
        """Keep rows ``index`` ``[n']`` only (decoding dropped the rows that have stopped)."""
        self.prompt_ids, self.prompt_mask = self.prompt_ids[index.to(self.prompt_ids.device)], \
            self.prompt_mask[index.to(self.prompt_mask.device)]
        self.pending = [t[index] for t in self.pending]
        if self.seen is not None:
            self.seen = self.seen[index]
