"""For multi-process tests: a callback recording each rank's sample ids, and a reward."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class RecordIds(L.Callback):
    """Append every training batch's sample ids to ``{out_dir}/rank{global_rank}.txt``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / f"rank{trainer.global_rank}.txt", "a") as f:
            f.write(f"{trainer.current_epoch} " + " ".join(batch.ids) + "\n")


def length_reward(prompts: list[str], completions: list[str], **fields) -> list[float]:
    """A reward with spread inside every group of a random model: the completion's length / 10."""
    return [len(c) / 10 for c in completions]
