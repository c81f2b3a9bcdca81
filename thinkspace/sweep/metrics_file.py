"""``MetricsFile``: a run's final metrics as one JSON file, the sweep's source of numbers."""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback

from thinkspace.sweep.files import write_json

class MetricsFile(Callback):
    """At the end of fit, validate or test, write ``trainer.callback_metrics`` to ``path``.

    The file reads ``{"stage": "fit", "global_step": 300, "metrics": {"val/accuracy":
    0.41, ...}}``: every logged scalar as its last (or epoch-aggregated) value. Only global
    rank 0 writes, atomically, and only when the stage ends normally, so a file present
    means the stage finished.

    Args:
        path: the JSON file to write.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def _write(self, trainer: L.Trainer, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {}
        for key, value in trainer.callback_metrics.items():
            number = float(value)
            metrics[key] = number if math.isfinite(number) else None
        write_json(self.path, {"stage": stage, "global_step": int(trainer.global_step), "metrics": metrics})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, "fit")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, "test")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._write(trainer, "validate")
