"""``QuestionsFile``: per-question correctness of a test stage, the input of the paired statistics."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

from thinkspace.answers import choice, gold_choice
from thinkspace.sweep.files import write_questions


def is_correct(prediction: str, answer: Any) -> bool:
    """Whether a generated text answers a multiple-choice question correctly: its option
    letter, read by thinkspace's rule as the test accuracy reads it
    (:class:`~thinkspace.accuracy.ChoiceAccuracy`), equals the gold letter."""
    return choice(prediction) == gold_choice(answer)


class QuestionsFile(Callback):
    """At the end of a test epoch, write one row per multiple-choice question to ``path``.

    Rows are ``id``, ``correct`` (0/1), ``answer`` (gold), ``prediction`` (the generated
    text) and ``task`` (the sample's task or question family, for per-task statistics), in the
    test order (with several processes: rank after rank); the mean of ``correct`` is the
    stage's ``test/accuracy``.
    They come from ``test_step``'s outputs (``ids``, ``predictions``) and the batch
    (``answers``, ``answer_types``); questions of other answer types are left out, as
    the accuracy leaves them out. With several processes the rows are gathered to global
    rank 0, which writes the file atomically (a sampler's padding repeats are dropped by id).
    Written in ``on_test_epoch_end``, so before ``MetricsFile`` marks the stage finished.

    Args:
        path: the CSV file to write (``questions_test_<stage>.csv`` in the run directory).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows = []

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if not isinstance(outputs, dict) or "predictions" not in outputs:
            return
        tasks = batch.tasks or [""] * len(batch.answers)
        for key, text, answer, kind, task in zip(outputs["ids"], outputs["predictions"], batch.answers,
                                                 batch.answer_types, tasks):
            if kind == "choice":
                self.rows.append({"id": str(key), "correct": is_correct(text, answer), "answer": answer,
                                  "prediction": text, "task": task})

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.rows
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        if trainer.is_global_zero:
            unique = {row["id"]: row for row in reversed(rows)}  # the first of any repeat wins
            write_questions(self.path, [unique[key] for key in dict.fromkeys(row["id"] for row in rows)])
