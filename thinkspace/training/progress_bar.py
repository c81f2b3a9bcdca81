"""Lightning's progress bars, with an epoch total that is right for step-limited and resumed runs.

Lightning shows ``Epoch 2/-2`` when only ``max_steps`` is set (``max_epochs`` is then -1), and after a
mid-epoch resume a total of "steps left" against a count of "batches into the epoch" (``64/19``).
Here the bar counts batches into the epoch against the batch at which this epoch will end: the
epoch's length, or sooner when ``max_steps`` stops the run inside it; and the epoch it names is the
one the data is in (a checkpoint written when ``max_steps`` stopped a run mid-epoch records that
epoch as completed, so Lightning's counter is one ahead after such a resume).

Only Lightning's public API is used: the bars' hooks, ``total_train_batches``, and the rich
bar's ``progress``, ``train_progress_bar_id`` and ``theme`` (its description is set after
Lightning's hooks rather than by overriding a private method).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar


def epoch_total(trainer: Any) -> int | float:
    """The batch index (1-based, within the current epoch) at which this epoch's training ends."""
    per_epoch = trainer.num_training_batches
    if trainer.max_steps is None or trainer.max_steps < 0 or per_epoch == float("inf"):
        return per_epoch
    done = int(trainer.fit_loop.epoch_loop.batch_progress.total.ready) % int(per_epoch)
    left = (trainer.max_steps - trainer.global_step) * trainer.accumulate_grad_batches
    return min(per_epoch, done + left)


def data_epoch(trainer: Any) -> int:
    """The epoch the training data is in, from the loop's batch count (as the sampler reads it)."""
    per_epoch = trainer.num_training_batches
    if not per_epoch or per_epoch == float("inf"):
        return trainer.current_epoch
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.ready) // int(per_epoch)


class EpochTotal:
    """Mixin for a Lightning progress bar: :func:`epoch_total` as the training total."""

    @property
    def total_train_batches(self) -> int | float:
        return epoch_total(self.trainer)


class ThinkspaceTQDMBar(EpochTotal, TQDMProgressBar):
    """Lightning's tqdm bar with the epoch total of :func:`epoch_total` and :func:`data_epoch`."""

    def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"Epoch {data_epoch(trainer)}")


class ThinkspaceRichBar(EpochTotal, RichProgressBar):
    """Lightning's rich bar with the epoch total of :func:`epoch_total`, :func:`data_epoch`, and no
    ``/-2`` after the epoch when the run is limited by steps, not epochs."""

    def train_description(self) -> str:
        """``Epoch E`` (the data's epoch), ``/max_epochs - 1`` when epochs limit the run, padded to
        the validation bar's description as Lightning pads it (no flicker between bars)."""
        max_epochs = self.trainer.max_epochs
        description = f"Epoch {data_epoch(self.trainer)}"
        if max_epochs and max_epochs > 0:  # Lightning adds "/{max_epochs - 1}" always: "/-2" for step-limited runs
            description += f"/{max_epochs - 1}"
        if len(self.validation_description) > len(description):
            description = f"{description:{len(self.validation_description)}}"
        return description

    def describe_train_bar(self) -> None:
        """Put :meth:`train_description` on the training bar (styled as Lightning styles it)."""
        if self.progress is None or self.train_progress_bar_id is None:
            return
        text = self.train_description()
        style = self.theme.description
        self.progress.update(self.train_progress_bar_id, description=f"[{style}]{text}" if style else text)
        self.refresh()

    def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.describe_train_bar()

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        fresh = self.train_progress_bar_id is None  # Lightning makes the bar here after a validation
        super().on_train_batch_end(trainer, *args)
        if fresh:
            self.describe_train_bar()


def progress_bar() -> TQDMProgressBar | RichProgressBar:
    """The bar Lightning would pick (rich when installed), with the fixes above."""
    try:
        return ThinkspaceRichBar()
    except ModuleNotFoundError:  # Lightning's RichProgressBar refuses to exist without rich
        return ThinkspaceTQDMBar()
