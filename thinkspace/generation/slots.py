"""The latent slot during a decode, row by row: which token a row emits at a step and which hidden
states become latents (3DThinker's inference; the slot's convention is
:mod:`thinkspace.objectives.latent_slot`).

The decode loop (:func:`~thinkspace.generation.decode_loop.decode_loop`) asks one of these per step:

* :class:`PlainRows`: no slot; every token is the sampler's choice.
* :class:`ScheduledSlot`: the start forced and no early end. Every row opens the slot at step 0,
  takes k latent steps and closes it at step k + 1, so those tokens are known before the loop:
  they need no logits and no per-row state. Afterwards rows decode as without a slot.
* :class:`TrackedSlot`: the model opens the slot when it chooses the start token (or the start is
  forced but the model may end the slot early): each row's state is followed with whole-row tensor
  operations, never read back from the device.

In a latent step the next input embedding is the last hidden state (``feedback``, Coconut-style, the
paper's inference) or the pad token's embedding (``tokens``, exactly the training sequence). The
latents are the hidden states at the positions whose next input is a latent step (the start and the
pads but the last), recorded when fed: a slot closed early holds as many latents as it has pads.

Every kind answers the same four questions: :meth:`known` (the step's whole-row token when it is
fixed in advance), :meth:`choose` (the step's tokens from the sampler's choice), :meth:`feed` (the
next input embeddings, recording latents), :meth:`advance` (the state after the step). Which rows are
still running is the loop's to know, not the slot's: a kind names its per-row attributes in
``row_state`` (row axis first) and, when finished rows are dropped from the running batch, the loop
compacts them and sets the dropped rows' results aside, restoring every row after the loop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: ``(token [N], latent_step [N] or None, sampled [N], forced_start)`` of one step (see ``choose``)
Choice = tuple[Tensor, Tensor | None, Tensor, bool]


class PlainRows:
    """Decoding without a slot: ``N`` rows, last hidden states like ``last`` ``[N, D]``."""

    k = 0
    #: attributes holding one entry per running row (row axis first): compacted by the loop when rows drop
    row_state: tuple[str, ...] = ("latents",)

    def __init__(self, last: Tensor) -> None:
        self.latents = last.new_zeros(last.shape[0], 0, last.shape[-1])

    def known(self, step: int) -> Tensor | None:
        """The step's token ``[N]`` when it is fixed before the loop (no logits needed), else ``None``."""
        return None

    def choose(self, step: int, token: Tensor) -> Choice:
        """From the sampler's ``token`` ``[N]``: the emitted token, the rows taking a latent step (``None``:
        no slot followed), the rows whose token is the sampler's choice, and whether the step forced the
        start in every row."""
        return token, None, torch.ones_like(token, dtype=torch.bool), False

    def feed(self, step: int, embeds: Tensor, last: Tensor, done: Tensor, latent_step: Tensor | None) -> Tensor:
        """The next input embeddings ``[N, 1, D]`` (the emitted tokens' ``embeds``, or ``last`` ``[N, D]``
        in feedback latent steps); records the latents of rows not ``done``."""
        return embeds

    def advance(self, step: int, token: Tensor, latent_step: Tensor | None, sampled: Tensor, done: Tensor) -> None:
        """Follow the slot's state after the step emitted ``token``."""

    def outcome(self) -> tuple[Tensor, Tensor]:
        """``(latent_start [N], latent_count [N])``: the step each row opened the slot (-1: never) and
        the latent steps it took."""
        rows, device = self.latents.shape[0], self.latents.device
        return torch.full((rows,), -1, dtype=torch.long, device=device), torch.zeros(rows, dtype=torch.long,
                                                                                  device=device)


class ScheduledSlot(PlainRows):
    """A forced start without early end: start at step 0, pads at steps 1..k, end at step k + 1.

    Args:
        slot: the bound :class:`~thinkspace.objectives.latent_slot.LatentSlot` (its token ids).
        k: latent steps.
        steps: the decode's budget (a budget shorter than the slot cuts it).
        feedback: latent steps feed the hidden state back (else the pad embedding).
        last: ``[N, D]`` the prompt's last hidden states (rows, width, device, dtype).
    """

    row_state = ("latents", "slot_rows")

    def __init__(self, slot: Any, k: int, steps: int, feedback: bool, last: Tensor) -> None:
        super().__init__(last)
        self.k, self.steps, self.feedback = k, steps, feedback
        self.latents = last.new_zeros(last.shape[0], k, last.shape[-1])
        # the slot's three tokens (start, pad, end) as whole rows ``[N, 3]``, made once (not at every step)
        ids = torch.tensor([slot.start_id, slot.pad_id, slot.end_id], dtype=torch.long, device=last.device)
        self.slot_rows = ids.expand(last.shape[0], 3).contiguous()

    @staticmethod
    def fits(force_start: bool, early_end: bool) -> bool:
        """Whether every row's slot steps are known in advance: the start forced, the end never chosen."""
        return force_start and not early_end

    def known(self, step: int) -> Tensor | None:
        if step > self.k + 1:
            return None
        return self.slot_rows[:, 0 if step == 0 else 1 if step <= self.k else 2]

    def feed(self, step: int, embeds: Tensor, last: Tensor, done: Tensor, latent_step: Tensor | None) -> Tensor:
        if 0 < step <= self.k:  # the hidden state before a pad is latent step - 1 (fed back in feedback mode)
            self.latents[:, step - 1] = last.to(self.latents.dtype)
            if self.feedback:
                return last[:, None].to(embeds.dtype)
        return embeds

    def outcome(self) -> tuple[Tensor, Tensor]:
        """Every row opened the slot at step 0 and took the latent steps the budget allowed."""
        started, count = super().outcome()
        return torch.zeros_like(started), torch.full_like(count, min(self.k, self.steps - 1))


class TrackedSlot(PlainRows):
    """The slot followed per row: opened when the model chooses the start (or forced at step 0), k latent
    steps (fewer with ``early_end``: the model's own end closes it), then the end, forced.

    Args:
        slot: the bound :class:`~thinkspace.objectives.latent_slot.LatentSlot`.
        k: latent steps before the end is forced.
        force_start: emit the start as every row's first token.
        early_end: a latent step whose chosen token is the end emits it instead of a pad.
        feedback: latent steps feed the hidden state back (else the pad embedding).
        last: ``[N, D]`` the prompt's last hidden states.
    """

    row_state = ("latents", "remaining", "count", "started")

    def __init__(self, slot: Any, k: int, force_start: bool, early_end: bool, feedback: bool, last: Tensor) -> None:
        super().__init__(last)
        rows, device = last.shape[0], last.device
        self.k, self.force_start, self.early_end, self.feedback = k, force_start, early_end, feedback
        self.start_id, self.pad_id, self.end_id = slot.start_id, slot.pad_id, slot.end_id
        self.latents = last.new_zeros(rows, k, last.shape[-1])
        # latent steps still to feed: -1 no slot yet, k..1 in the slot, 0 end is due, -2 slot closed
        self.remaining = torch.full((rows,), -1, dtype=torch.long, device=device)
        self.count = torch.zeros(rows, dtype=torch.long, device=device)
        self.started = torch.full((rows,), -1, dtype=torch.long, device=device)

    def choose(self, step: int, token: Tensor) -> Choice:
        forced = step == 0 and self.force_start
        if forced:
            token = torch.full_like(token, self.start_id)
        latent_step, sampled = self.remaining > 0, self.remaining < 0
        if self.early_end:  # the model's own end closes the slot (a chosen, not forced, token)
            ends_early = latent_step & (token == self.end_id)
            latent_step, sampled = latent_step & ~ends_early, sampled | ends_early
        token = torch.where(latent_step, torch.full_like(token, self.pad_id), token)
        token = torch.where(self.remaining == 0, torch.full_like(token, self.end_id), token)
        return token, latent_step, sampled, forced

    def feed(self, step: int, embeds: Tensor, last: Tensor, done: Tensor, latent_step: Tensor | None) -> Tensor:
        if self.feedback:
            embeds = torch.where(latent_step[:, None, None], last[:, None].to(embeds.dtype), embeds)
        # the hidden state before a pad is a latent: written in place, without reading which rows take
        # one (no device sync)
        record = latent_step & ~done & (self.count < self.k)
        index = self.count.clamp(max=self.k - 1)[:, None, None].expand(-1, 1, self.latents.shape[-1])  # [N, 1, D]
        written = torch.where(record[:, None, None], last[:, None].to(self.latents.dtype), self.latents.gather(1, index))
        self.latents.scatter_(1, index, written)
        self.count = self.count + record.long()
        return embeds

    def advance(self, step: int, token: Tensor, latent_step: Tensor | None, sampled: Tensor, done: Tensor) -> None:
        remaining = self.remaining
        opened = sampled & (remaining == -1) & (token == self.start_id) & ~done
        self.started = torch.where(opened, torch.full_like(self.started, step), self.started)
        remaining = torch.where(latent_step, remaining - 1, remaining)
        closed = ~latent_step & (token == self.end_id) & (remaining >= 0)
        remaining = torch.where(closed, torch.full_like(remaining, -2), remaining)
        self.remaining = torch.where(opened, torch.full_like(remaining, self.k), remaining)

    def outcome(self) -> tuple[Tensor, Tensor]:
        return self.started, self.count


def slot_rows(slot: Any | None, k: int, steps: int, force_start: bool, early_end: bool, feedback: bool,
              last: Tensor) -> PlainRows:
    """The slot's rows for a decode of ``steps`` tokens from ``last`` ``[N, D]``: none without ``slot``,
    on its schedule where :meth:`ScheduledSlot.fits`, else tracked."""
    if slot is None:
        return PlainRows(last)
    if ScheduledSlot.fits(force_start, early_end):
        return ScheduledSlot(slot, k, steps, feedback, last)
    return TrackedSlot(slot, k, force_start, early_end, feedback, last)
