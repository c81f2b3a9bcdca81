"""The per-token loop of thinkspace's decoding: choose a token, let the slot rows place it, run the model.

Per token it runs one model step and a few tensor operations; it reads nothing back from the device
except, when a row can stop, each row's done flag every 8 tokens, in one read that decides whether all
rows have stopped and which have (steps after that are trimmed). With sharded weights that test is one decision of all ranks
(:mod:`~thinkspace.generation.rank_agreement`): each model step is then a collective, so every rank
steps until every rank's rows are done. The sampling's random numbers are drawn before the loop (one
uniform per row and step).

Rows that have stopped stop costing compute: at the same test, every 8 tokens, rows that have stopped
are dropped from the running batch (``drop_finished``): the model step's KV cache, mask and positions,
the slot's per-row state, the last hidden states and the sampling's draws keep the live rows only,
and the outputs and the slot's results are written back to each row's place (:class:`_Running`, the one
owner of which rows run). A row's numbers do not
depend on the other rows (no operation mixes rows), so its tokens are those of the full batch
(tested in ``tests/test_batched_decoding.py``). Under sharding the ranks still step together: dropping
rows changes how many rows a rank's step computes, never how many steps it runs, and a rank keeps at
least one row (its last rows, masked) until every rank is done.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from thinkspace.generation.model_step import ModelStep
from thinkspace.generation.rank_agreement import AllDone, rows_done
from thinkspace.generation.repetition import RepetitionPenalty
from thinkspace.generation.sampling import sample_token, token_logprobs
from thinkspace.generation.slots import PlainRows


@dataclass
class Sampling:
    """How a token is chosen from logits: the argmax, or a draw at ``temperature`` restricted by ``top_p``
    and ``top_k`` (see :func:`~thinkspace.generation.sampling.sample_token`) from ``uniforms`` ``[T, N]``;
    with ``repetition``, of the logits after its penalty (transformers' order: processors, then warpers)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    uniforms: Tensor | None = None
    repetition: RepetitionPenalty | None = None

    def scores(self, logits: Tensor) -> Tensor:
        """The logits ``[N, V]`` a token is chosen from (the log-probabilities stay the model's own)."""
        return logits if self.repetition is None else self.repetition(logits)

    def emitted(self, token: Tensor) -> None:
        """Each row's token of this step ``[N]``, forced ones included: it counts as seen from now on."""
        if self.repetition is not None:
            self.repetition.see(token)

    def keep(self, index: Tensor) -> None:
        """Keep the running rows ``index`` ``[n']`` of the per-row state (finished rows dropped)."""
        if self.repetition is not None:
            self.repetition.keep(index)


@dataclass
class LoopOutput:
    """The loop's ``N`` rows over the ``T`` steps that hold a live token (later ones trimmed).

    Attributes:
        tokens: ``[N, T]`` emitted ids (``pad_id`` after a row's stop token).
        kept: ``[N, T]`` tokens of the completion (up to and including the stop token).
        sampled: ``[N, T]`` completion tokens the sampler chose (not forced by the slot).
        logprobs: ``[N, T]`` log-probabilities of the emitted tokens at the temperature (0 outside the
            completion), or ``None``.
    """

    tokens: Tensor
    kept: Tensor
    sampled: Tensor
    logprobs: Tensor | None


def decode_loop(step_model: ModelStep, lm_head: nn.Module, embed: nn.Module, last: Tensor, rows: PlainRows,
                steps: int, sampling: Sampling, stops: Tensor, pad_id: int, return_logprobs: bool = False,
                all_done: AllDone = rows_done, drop_finished: bool = True) -> LoopOutput:
    """Decode up to ``steps`` tokens for ``N`` rows whose last hidden states are ``last`` ``[N, D]``.

    Args:
        step_model: the model's step (:func:`~thinkspace.generation.model_step.model_step`).
        lm_head: hidden states -> logits; ``embed``: ids -> input embeddings.
        rows: the latent slot's rows (:mod:`thinkspace.generation.slots`); they record the latents.
        stops: ids that end a row (empty: no row stops, every row decodes ``steps`` tokens).
        pad_id: what a row emits after its stop token.
        return_logprobs: also the emitted tokens' log-probabilities, from the logits computed anyway.
        all_done: whether to stop, given the rows' done flags read back (every 8 tokens): this rank's rows all done, or,
            with sharded weights, every rank's (:func:`~thinkspace.generation.rank_agreement.stop_test`).
        drop_finished: drop rows that have stopped from the running batch (at the stop test, every 8
            tokens) where the model step can (its ``drops_rows``); ``False`` masks them to the end (the
            same tokens, more compute).
    """
    n, device = last.shape[0], last.device
    stops = stops.to(device)
    can_stop = stops.numel() > 0
    run = _Running(n, steps, pad_id, return_logprobs, sampling.uniforms, rows, device)
    drops = drop_finished and can_stop and getattr(step_model, "drops_rows", False)
    for step in range(steps):
        token = rows.known(step)
        if token is not None:  # the slot's scheduled token: no logits, no row has stopped yet
            embeds = rows.feed(step, embed(token)[:, None], last, run.done, None)
            live, free = run.every_row, run.no_row
            logits = lm_head(last).float() if return_logprobs else None
        else:
            logits = lm_head(last).float()
            scores = sampling.scores(logits)
            if sampling.do_sample:
                chosen = sample_token(scores, sampling.temperature, sampling.top_p, sampling.top_k,
                                      uniform=run.uniforms[step])
            else:
                chosen = scores.argmax(-1)
            token, latent_step, sampled, forced = rows.choose(step, chosen)
            if can_stop:  # no row stops otherwise: done stays all False
                token = torch.where(run.done, torch.full_like(token, pad_id), token)
            embeds = rows.feed(step, embed(token)[:, None], last, run.done, latent_step)
            live = ~run.done if can_stop else run.every_row  # this step's token counts unless the row had stopped
            free = live & sampled if not forced else run.no_row
            rows.advance(step, token, latent_step, sampled, run.done)
            if can_stop:
                run.done = run.done | (sampled & torch.isin(token, stops))
        sampling.emitted(token)
        logprob = token_logprobs(logits, token, sampling.temperature) if return_logprobs else None
        run.record(token, live, free, logprob)
        last = step_model(embeds, step, live)
        # the loop's only device sync, and only when a row can stop: every 8 steps each row's done flag, read
        # once, decides whether all rows are done (sharded: all ranks', one more read of the agreed flag) and
        # which rows run on
        if can_stop and step % 8 == 7:
            done = run.done.tolist()
            if all_done(done):
                break
            if drops:
                index = run.live_rows(done)
                if index is not None:  # some rows have stopped: the others run on alone
                    step_model.keep(index)
                    sampling.keep(index)
                    last = last[index]
    return run.output()


class _Running:
    """The loop's running rows and what they emitted: ``n`` of the ``N`` rows once finished rows were dropped.

    Tokens are collected per step for the running rows and written to each row's place in ``[N, steps]``
    outputs when the running rows change (and at the end): a dropped row keeps ``pad_id``, not kept, not
    sampled, log-probability 0 after its last step, what a masked row would have emitted. The slot's
    per-row state (``slot.row_state``) follows the running rows too: compacted with them, a dropped row's
    final state set aside in an ``[N, ...]`` copy, which becomes the slot's state again at the end.
    """

    def __init__(self, rows: int, steps: int, pad_id: int, logprobs: bool, uniforms: Tensor | None,
                 slot: PlainRows, device: torch.device) -> None:
        self.slot = slot
        self.slot_full: dict[str, Tensor] = {}  # every original row's slot state, once rows were dropped
        self.every_row = torch.ones(rows, dtype=torch.bool, device=device)
        self.no_row = ~self.every_row
        self.done = self.no_row.clone()
        self.uniforms = uniforms  # [T, n] the running rows' draws
        self.origin: Tensor | None = None  # [n] each running row's place among the N (None: all, in order)
        self.tokens = torch.full((rows, steps), pad_id, dtype=torch.long, device=device)
        self.kept = torch.zeros(rows, steps, dtype=torch.bool, device=device)
        self.sampled = torch.zeros_like(self.kept)
        self.logprobs = torch.zeros(rows, steps, device=device) if logprobs else None
        self.first, self.pending = 0, []  # the first step not yet written out, and the steps since

    def record(self, token: Tensor, live: Tensor, free: Tensor, logprob: Tensor | None) -> None:
        self.pending.append((token, live, free, logprob))

    def live_rows(self, done: list[bool]) -> Tensor | None:
        """The running rows not done ``[n']`` (positions among the running rows) when some are done and
        some not (and makes them the running rows), else ``None``. ``done``: the running rows' done flags,
        already read back (no further read from the device)."""
        if not any(done) or all(done):  # all done on this rank, not on every rank: keep stepping, masked
            return None
        index = torch.tensor([i for i, row_done in enumerate(done) if not row_done], device=self.done.device)
        self.flush()
        if self.origin is None:
            self.origin = torch.arange(self.done.shape[0], device=index.device)
            self.slot_full = {name: getattr(self.slot, name).clone() for name in self.slot.row_state}
        self._set_slot_aside()
        for name in self.slot.row_state:
            setattr(self.slot, name, getattr(self.slot, name)[index])
        self.origin = self.origin[index]
        self.done, self.every_row, self.no_row = self.done[index], self.every_row[index], self.no_row[index]
        if self.uniforms is not None:
            self.uniforms = self.uniforms[:, index]
        return index

    def flush(self) -> None:
        """Write the steps since the last flush to the running rows' places in the outputs."""
        if not self.pending:
            return
        columns = slice(self.first, self.first + len(self.pending))
        self.first = columns.stop
        parts = list(zip(*self.pending))
        self.pending = []
        outputs = [(self.tokens, parts[0]), (self.kept, parts[1]), (self.sampled, parts[2])]
        if self.logprobs is not None:
            outputs.append((self.logprobs, parts[3]))
        for out, values in outputs:
            stacked = torch.stack(values, 1)
            if self.origin is None:
                out[:, columns] = stacked
            else:
                out[self.origin, columns] = stacked

    def _set_slot_aside(self) -> None:
        for name in self.slot.row_state:
            self.slot_full[name][self.origin] = getattr(self.slot, name)

    def output(self) -> LoopOutput:
        """The outputs over the steps that hold a live token (later ones trimmed); the slot's state of
        every row again, in row order."""
        self.flush()
        if self.origin is not None:
            self._set_slot_aside()
            for name in self.slot.row_state:
                setattr(self.slot, name, self.slot_full[name])
        length = int(self.kept.any(0).sum())  # steps after every row had stopped hold nothing: trimmed
        kept = self.kept[:, :length]
        logp = self.logprobs[:, :length].where(kept, 0.0) if self.logprobs is not None else None
        return LoopOutput(tokens=self.tokens[:, :length], kept=kept, sampled=self.sampled[:, :length], logprobs=logp)
