"""SIGTERM and SIGINT during ``fit``: finish the current step, save ``last.ckpt``, exit non-zero.

Lightning on its own answers SIGTERM with ``SIGTERMException``, a ``SystemExit`` without a code:
the process ended with exit code 0 and no checkpoint, so a scheduler or an ``&&`` chain took a
killed run for a finished one, and up to ``--checkpoint_every_n_steps`` steps were lost; Ctrl-C
(SIGINT) interrupted the step wherever it was and exited 1. :class:`StopOnSignal` makes both
what a requeued SLURM job expects: the step in progress ends, ``last.ckpt`` is written (exactly
resumable with ``--ckpt_path last``, as a step checkpoint is), and the process exits with
``128 + signal``: 143 for SIGTERM, 130 for SIGINT. A second Ctrl-C interrupts at once.

A signal before the first training step (during Lightning's sanity check, which trains nothing) stops
the run when training would start, with the same exit code and a line saying so, and saves nothing:
the weights are those the run started from (its initial ones, or the checkpoint it resumed), so a
checkpoint would add nothing a rerun does not have. (Before, a SIGTERM there reached Lightning's own
handler: one training step, nothing saved, exit code 0.)
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class StopRequested(SystemExit):
    """Raised at the end of the step after SIGTERM or SIGINT; its code is ``128 + signal``."""


def exit_code(signum: int) -> int:
    """The shell's exit code of a process ended by ``signum``: 143 for SIGTERM, 130 for SIGINT."""
    return 128 + int(signum)


class StopOnSignal(Callback):
    """Saves ``checkpoint`` at the end of the training step during which SIGTERM or SIGINT arrived,
    then raises :class:`StopRequested` (exit code 143 or 130).

    SIGINT is caught from ``setup`` to ``on_fit_start``, then both from the sanity check's start (SIGTERM
    in place of Lightning's handler; from ``on_train_start`` without a sanity check), to the end of ``fit``.
    Lightning records the handlers it finds in between and puts them back when ``fit`` ends, after the
    callbacks' last hook if ``fit`` raised: SIGINT is handed back there so that what it puts back is the
    caller's handler, not this callback's (a Ctrl-C in that short window, while Lightning restores the
    training state, is Lightning's: ``KeyboardInterrupt``, nothing trained). Whatever way ``fit`` ends,
    the caller's handlers are in place afterwards.
    A signal before the first step stops the run at ``on_train_start``, nothing saved. Lightning's handler raises its ``SIGTERMException``
    (exit 0, nothing saved) at the end of the step, after the callbacks' ``on_train_batch_end``: a
    SIGTERM arriving while the step checkpoint was written (after this callback's turn) escaped the
    save, and the run stopped unsaved. A signal arriving
    during validation stops the run at the end of the next training step. With several processes the
    decision is taken together (any rank signalled stops every rank after the same step), so the
    checkpoint's collective save never waits for a rank that went on.

    Args:
        checkpoint: the file to write (the run's ``checkpoints/last.ckpt``); ``None``: exit without
            saving (checkpointing switched off).
    """

    def __init__(self, checkpoint: Path | None) -> None:
        self.checkpoint = checkpoint
        self.signum: int | None = None
        self.training = False  # whether training has started (a signal before it saves nothing)
        self._previous: dict[int, Any] = {}

    def _catch(self, signum: int) -> None:
        if threading.current_thread() is threading.main_thread() and signum not in self._previous:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _catch_both(self) -> None:
        if self.signum is None:  # after a first Ctrl-C, a second one must interrupt at once
            self._catch(signal.SIGINT)
        self._catch(signal.SIGTERM)  # after Lightning installed its own (Trainer._run), in its place

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self.signum, self.training = None, False
            self._catch(signal.SIGINT)  # from here: Ctrl-C in the sanity check stops before the first step

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore(signal.SIGINT)  # Lightning records the handlers next: the caller's, to put back at the end

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._catch_both()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._catch_both()  # (no sanity check: not caught yet)
        signum = self.received(trainer)  # every rank: a signal in the sanity check stops them all here
        if signum is not None:
            if trainer.is_global_zero:
                print(f"thinkspace: {signal.Signals(signum).name} before the first training step (in the sanity "
                      f"check): stopped, nothing to save (the weights are the run's starting ones); exit code "
                      f"{exit_code(signum)}", file=sys.stderr, flush=True)
            raise StopRequested(exit_code(signum))
        self.training = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._restore()  # (after Lightning put back what it recorded: only a handler still ours is replaced)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self, *signums: int) -> None:
        """Puts back the handler found before this callback's, where this callback's is still installed
        (once Lightning restored SIGTERM at the end of ``fit``, putting back the handler found then,
        Lightning's, would leave a finished trainer's handler bound to SIGTERM)."""
        for signum in signums or list(self._previous):
            if signum in self._previous and threading.current_thread() is threading.main_thread():
                previous = self._previous.pop(signum)
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, previous)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            when = "stopping after this step and saving last.ckpt" if self.training else "stopping before training"
            print(f"thinkspace: {signal.Signals(signum).name}: {when}"
                  + (" (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""), file=sys.stderr, flush=True)
        if signum == signal.SIGINT:
            self._restore(signal.SIGINT)  # a second Ctrl-C: KeyboardInterrupt at once

    def received(self, trainer: Trainer) -> int | None:
        """The signal to stop for, agreed by every process (the highest number: SIGTERM over SIGINT);
        ``None`` to go on."""
        signum = self.signum
        if trainer.world_size > 1:  # one all-reduce per optimizer step: every rank stops after the same step
            import torch

            local = torch.tensor([int(signum or 0)], device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(local, reduce_op="max").item()) or None
        return signum

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # only where the optimizer stepped: a checkpoint between micro-batches would lose the accumulated
        # gradients, and the check (a collective with several processes) runs once per step, not per batch
        if (batch_idx + 1) % trainer.accumulate_grad_batches and not trainer.is_last_batch:
            return
        signum = self.received(trainer)
        if signum is None:
            return
        name = signal.Signals(signum).name
        if self.checkpoint is not None:
            trainer.save_checkpoint(str(self.checkpoint))
            saved = f"saved {self.checkpoint} at step {trainer.global_step} (resume with --ckpt_path last)"
        else:
            saved = "checkpointing is off: nothing saved"
        if trainer.is_global_zero:
            print(f"thinkspace: {name}: {saved}; exit code {exit_code(signum)}", file=sys.stderr, flush=True)
        raise StopRequested(exit_code(signum))
