"""The last line of ``thinkspace fit``: where the run went and how it ended."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback


def fit_summary(trainer: L.Trainer, run_dir: str | Path) -> str:
    """``fit: N steps; val/loss 0.12, val/accuracy 0.97; checkpoint PATH; run dir DIR``.

    Validation metrics are the last ones logged (names as in TensorBoard); accuracies print
    as fractions, as they are logged.
    """
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val") and v.numel() == 1}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())) or "no validation run"
    checkpoint = trainer.checkpoint_callback
    path = (checkpoint.last_model_path or checkpoint.best_model_path) if checkpoint is not None else ""
    return (f"fit: {trainer.global_step} steps; {shown}; checkpoint {path or 'none written'}; "
            f"run dir {Path(run_dir)}")


class FitSummary(Callback):
    """Print :func:`fit_summary` once, on global rank 0, when ``fit`` ends."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = run_dir

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            print(fit_summary(trainer, self.run_dir), flush=True)
