"""After an in-process ``fit`` with :class:`StopOnSignal`, SIGINT and SIGTERM are bound to the handlers
they had before, whatever way the run ended: finished, raised, or stopped by a signal. (Lightning puts
back the handlers it recorded after the callbacks' last hook when ``fit`` raises; it once put back
this callback's SIGINT handler, so Ctrl-C no longer interrupted, and after a finished run SIGTERM
stayed bound to the finished trainer's handler, so the process no longer stopped on SIGTERM.)"""

from __future__ import annotations

import os
import signal

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader

from thinkspace.training.stop_signals import StopOnSignal, StopRequested


class Tiny(LightningModule):
    """One linear layer; raises ``ValueError`` at its second step when ``fail``."""

    def __init__(self, fail: bool) -> None:
        super().__init__()
        self.layer, self.fail = nn.Linear(2, 1), fail

    def training_step(self, batch, batch_idx):
        if self.fail and batch_idx == 1:
            raise ValueError("boom at step 2")
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SignalAtFirstStep(Callback):
    """Sends this process ``signum`` at the first training batch."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            os.kill(os.getpid(), self.signum)


def callers_int(signum, frame):  # the caller's own handlers, told apart from Python's defaults
    raise AssertionError("the caller's SIGINT handler ran")


def callers_term(signum, frame):
    raise AssertionError("the caller's SIGTERM handler ran")


@pytest.mark.parametrize("sanity", [0, 1], ids=["no-sanity-check", "sanity-check"])
@pytest.mark.parametrize("end", ["finished", "raised", "sigint", "sigterm"])
def test_fit_leaves_the_callers_signal_handlers_in_place_however_it_ends(tmp_path, end, sanity):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, callers_int)
    signal.signal(signal.SIGTERM, callers_term)
    extra = {"sigint": [SignalAtFirstStep(signal.SIGINT)], "sigterm": [SignalAtFirstStep(signal.SIGTERM)]}
    trainer = Trainer(max_steps=3, num_sanity_val_steps=sanity, accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=tmp_path, callbacks=[StopOnSignal(None), *extra.get(end, [])])
    data = DataLoader(torch.randn(8, 2), batch_size=2)
    try:
        if end == "finished":
            trainer.fit(Tiny(fail=False), data, data)
            assert trainer.global_step == 3
        elif end == "raised":
            with pytest.raises(ValueError, match="boom at step 2"):
                trainer.fit(Tiny(fail=True), data, data)
        else:
            with pytest.raises(StopRequested) as stopped:
                trainer.fit(Tiny(fail=False), data, data)
            assert stopped.value.code == {"sigint": 130, "sigterm": 143}[end]
            assert trainer.global_step == 1
        assert signal.getsignal(signal.SIGINT) is callers_int
        assert signal.getsignal(signal.SIGTERM) is callers_term
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
