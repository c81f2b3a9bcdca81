"""SIGTERM or SIGINT during Lightning's sanity check (before any training step): the run stops when
training would start, with exit code 143 / 130 and one line saying so, no step trained and nothing
saved (the weights are the run's starting ones). Signals during training: ``tests/test_stop_signals.py``."""

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
    """One linear layer; counts its training steps."""

    def __init__(self) -> None:
        super().__init__()
        self.layer, self.steps = nn.Linear(2, 1), 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SignalInSanityCheck(Callback):
    """Sends this process ``signum`` at the sanity check's first batch."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if trainer.sanity_checking:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["term", "int"])
def test_a_signal_in_the_sanity_check_stops_before_the_first_step_saving_nothing(tmp_path, capsys, signum, code):
    before = signal.getsignal(signum)
    last = tmp_path / "checkpoints" / "last.ckpt"
    model = Tiny()
    trainer = Trainer(max_steps=3, num_sanity_val_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[StopOnSignal(last), SignalInSanityCheck(signum)])
    data = DataLoader(torch.randn(8, 2), batch_size=2)
    try:
        with pytest.raises(StopRequested) as stopped:
            trainer.fit(model, data, data)
        assert signal.getsignal(signum) == before  # the caller's handler is back (tests/test_stop_signal_handlers.py)
    finally:  # whatever failed above, the next test gets pytest's handler
        signal.signal(signum, before)
    assert stopped.value.code == code
    assert model.steps == 0 and trainer.global_step == 0 and not last.exists()
    name = signal.Signals(signum).name
    err = capsys.readouterr().err
    assert f"thinkspace: {name}: stopping before training" in err
    assert (f"thinkspace: {name} before the first training step (in the sanity check): stopped, nothing to save "
            f"(the weights are the run's starting ones); exit code {code}") in err
