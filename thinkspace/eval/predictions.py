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

Several processes (DDP, ``--trainer.devices N``): every rank's rows are gathered to global
rank 0 (``all_gather_object`` on the default group: gloo or NCCL), a sampler's padding
repeats are dropped by id (the first stays), the dataset's order is restored, and rank 0
alone writes the one file (atomically), scores, logs and prints once (see
:func:`merge_rank_rows`). Every rank reads ``trainer.log_dir``, a collective in Lightning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import chain, zip_longest
from pathlib import Path
from typing import Any

import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

from thinkspace.eval import SCORERS
from thinkspace.utils.file_modes import atomic_write

#: one prediction: sample id, generated text, predicted situation (world x, y metres, yaw radians) or None
Row = tuple[str, str, tuple[float, float, float] | None]


class BenchmarkPredictions(Callback):
    """Collect (id, text) of every test/predict batch; write, score and log at the end.

    Args:
        directory: where to write (default: ``trainer.log_dir``, else ``default_root_dir``).
        print_table: print the score table at the end.
    """

    def __init__(self, directory: str | None = None, print_table: bool = True) -> None:
        self.directory = directory
        self.print_table = print_table
        self.rows: list[Row] = []
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
        """Write the collected predictions of ``stage``; score and log them for a benchmark.

        With several processes every rank must call this (it gathers); global rank 0 writes and
        returns the path, the others return None."""
        rows = self.rows
        dataset = _dataset(trainer, stage)
        benchmark = getattr(dataset, "benchmark", None)
        if trainer.world_size > 1:
            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(f"BenchmarkPredictions: trainer.world_size is {trainer.world_size} but no "
                                   "torch.distributed process group is initialized to gather the predictions")
            parts: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(parts, rows)  # every rank gets every part: all agree on "empty"
            total = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
            rows = merge_rank_rows(parts, dataset.positions_of if benchmark else None, total)
        if not rows:
            return None
        directory = Path(self.directory or trainer.log_dir or trainer.default_root_dir)  # log_dir: on every rank
        path, error = None, None
        if trainer.global_rank == 0:
            try:
                path = self._write_and_score(trainer, stage, dataset, benchmark, rows, directory)
            except Exception as exc:  # noqa: BLE001 (re-raised below, after the other ranks hear of it)
                error = exc
        if trainer.world_size > 1:
            failure = [None if error is None else f"{type(error).__name__}: {error}"]
            dist.broadcast_object_list(failure, src=0)
            if failure[0] is not None and error is None:
                raise RuntimeError(f"rank 0 could not write or score the {stage} predictions: {failure[0]}")
        if error is not None:
            raise error
        return path

    def _write_and_score(self, trainer: Any, stage: str, dataset: Any, benchmark: str | None, rows: list[Row],
                         directory: Path) -> Path:
        """Global rank 0's part of :meth:`finish`: the file, the official file, the score, its log line."""
        directory.mkdir(parents=True, exist_ok=True)
        suffix = f"_{benchmark}" if benchmark else ""
        path = directory / f"predictions_{stage}{suffix}.jsonl"
        if benchmark:
            positions = dataset.positions_of([row[0] for row in rows])
            localizes = getattr(dataset, "localizes", False)
            records = [dataset.prediction_record(k, text, situation) if localizes and situation is not None
                       else dataset.prediction_record(k, text) for k, (_, text, situation) in zip(positions, rows)]
        else:
            records = [{"id": i, "prediction": text} for i, text, _ in rows]
        with atomic_write(path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        self.written[stage] = path
        if benchmark and hasattr(dataset, "write_official"):
            self.written[f"{stage}_official"] = dataset.write_official(records, directory, stage)
        if benchmark and not getattr(dataset, "scorable", True):
            print(f"{benchmark}: predictions written to {path}, not scored (the questions carry no answers)")
        elif benchmark:
            options = dataset.score_options() if hasattr(dataset, "score_options") else {}
            score = SCORERS[benchmark]([(f"{path}:{n + 1}", r) for n, r in enumerate(records)], None, **options)
            with atomic_write(directory / f"scores_{stage}_{benchmark}.json") as tmp:
                tmp.write_text(json.dumps(score.to_dict(notes=True), indent=1) + "\n")
            if trainer.logger is not None:
                # Lightning's loggers log on global rank 0 only (``log_metrics`` is ``rank_zero_only``)
                # and hold no collective, so logging here, on rank 0 alone, is what every logger does
                trainer.logger.log_metrics(score.metrics(f"{stage}/{benchmark}"), step=trainer.global_step)
            if self.print_table:
                score.print_table()
        return path


def merge_rank_rows(parts: Sequence[Sequence[Row]],
                    positions_of: Callable[[list[str]], list[int]] | None = None,
                    total: int | None = None) -> list[Row]:
    """Every rank's rows as one list, each sample once, in the dataset's order.

    ``parts[r]`` holds rank ``r``'s rows in its sampler's order. Taken round-robin, the parts
    are in the order of the evaluation sampler (:class:`~thinkspace.data.sampler.EpochSampler`
    without shuffling, like ``DistributedSampler``, deals index ``i`` to rank ``i % world_size``
    and pads the last round with the first indices), so the padding is the tail. A benchmark
    (``positions_of``: ids -> dataset indices; its ids are unique) keeps the first row of each id
    and sorts the rows by index, whatever sampler dealt them. Otherwise ids may repeat (a
    ``Mixture`` serving a sample twice): the first ``total`` rows (the dataset's length) are kept,
    or, without a length, the first row of each id.
    """
    rows = [row for row in chain.from_iterable(zip_longest(*parts)) if row is not None]
    if positions_of is None and total is not None:
        return rows[:total]
    unique: dict[str, Row] = {}
    for row in rows:
        unique.setdefault(row[0], row)
    rows = list(unique.values())
    if positions_of is not None:
        order = positions_of([row[0] for row in rows])
        rows = [row for _, row in sorted(zip(order, rows), key=lambda pair: pair[0])]
    return rows


def _dataset(trainer: Any, stage: str) -> Any:
    datamodule = getattr(trainer, "datamodule", None)
    datasets = getattr(datamodule, "datasets", None) or {}
    return datasets.get(stage)
