"""``BenchmarkPredictions``: ``thinkspace test``/``predict`` write predictions and score them.

At the end of a test or predict run, the generated texts are written as jsonl to the
run's log directory (``trainer.log_dir``): ``predictions_{stage}_{benchmark}.jsonl``
holding the benchmark's own records with the response in the field its evaluator reads
(see each dataset's ``prediction_record``), so ``thinkspace score BENCHMARK FILE`` and
the official evaluator read it as is. The scores are logged (``{stage}/{benchmark}/overall``
and one entry per setting or question type, percent), written to
``scores_{stage}_{benchmark}.json`` and printed. Datasets that are no benchmark give
``predictions_{stage}.jsonl`` with ``id`` and ``prediction``.

When the model predicts situations (a ``Situation`` objective: world x, y metres and
facing yaw radians per sample) and the dataset ``localizes`` (SQA3D), each record also
gets the dataset's ``agent_pos`` / ``agent_rot`` in the benchmark's own frame, and the
dataset's ``score_options()`` (e.g. SQA3D's localization gold file) go to the scorer.

A dataset may also write the official evaluator's own file (``write_official``: ScanQA's
``pred.json`` layout), and say its questions cannot be scored (``scorable``: test splits
without answers), in which case the predictions are written only.

Single process: with several ranks each writes its own ``.rank{r}`` file, unscored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from thinkspace.eval import SCORERS


class BenchmarkPredictions(Callback):
    """Collect (id, text) of every test/predict batch; write, score and log at the end.

    Args:
        directory: where to write (default: ``trainer.log_dir``, else ``default_root_dir``).
        print_table: print the score table at the end.
    """

    def __init__(self, directory: str | None = None, print_table: bool = True) -> None:
        self.directory = directory
        self.print_table = print_table
        self.rows: list[tuple[str, str, tuple[float, float, float] | None]] = []
        self.written: dict[str, Path] = {}

    # -- collecting ---------------------------------------------------------------------
    def on_test_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.rows = []

    def on_predict_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.rows = []

    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        if isinstance(outputs, dict) and "predictions" in outputs:
            situations = outputs.get("situations") or [None] * len(outputs["ids"])
            self.rows.extend(zip(outputs["ids"], outputs["predictions"], situations))

    def on_predict_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None:
        if isinstance(outputs, list):
            self.rows.extend((o["id"], o["prediction"], o.get("situation"))
                             for o in outputs if isinstance(o, dict) and "id" in o)

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.finish(trainer, "test")

    def on_predict_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.finish(trainer, "predict")

    # -- writing and scoring ------------------------------------------------------------
    def finish(self, trainer: Any, stage: str) -> Path | None:
        """Write the collected predictions of ``stage``; score and log them for a benchmark."""
        if not self.rows:
            return None
        dataset = _dataset(trainer, stage)
        benchmark = getattr(dataset, "benchmark", None)
        directory = Path(self.directory or trainer.log_dir or trainer.default_root_dir)
        directory.mkdir(parents=True, exist_ok=True)
        suffix = f"_{benchmark}" if benchmark else ""
        rank = f".rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        path = directory / f"predictions_{stage}{suffix}.jsonl{rank}"
        if benchmark:
            positions = dataset.positions_of([row[0] for row in self.rows])
            localizes = getattr(dataset, "localizes", False)
            records = [dataset.prediction_record(k, text, situation) if localizes and situation is not None
                       else dataset.prediction_record(k, text) for k, (_, text, situation) in zip(positions, self.rows)]
        else:
            records = [{"id": i, "prediction": text} for i, text, _ in self.rows]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        self.written[stage] = path
        if benchmark and not rank and hasattr(dataset, "write_official"):
            self.written[f"{stage}_official"] = dataset.write_official(records, directory, stage)
        if benchmark and not rank and not getattr(dataset, "scorable", True):
            print(f"{benchmark}: predictions written to {path}, not scored (the questions carry no answers)")
        elif benchmark and not rank:
            options = dataset.score_options() if hasattr(dataset, "score_options") else {}
            score = SCORERS[benchmark]([(f"{path}:{n + 1}", r) for n, r in enumerate(records)], None, **options)
            scores = json.dumps(score.to_dict(notes=True), indent=1) + "\n"
            (directory / f"scores_{stage}_{benchmark}.json").write_text(scores)
            if trainer.logger is not None:
                trainer.logger.log_metrics(score.metrics(f"{stage}/{benchmark}"), step=trainer.global_step)
            if self.print_table:
                score.print_table()
        return path


def _dataset(trainer: Any, stage: str) -> Any:
    datamodule = getattr(trainer, "datamodule", None)
    datasets = getattr(datamodule, "datasets", None) or {}
    return datasets.get(stage)
