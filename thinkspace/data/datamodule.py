"""``SpatialDataModule``: datasets of ``SpatialSample`` in, collated batches out."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, Subset

from thinkspace.data.sampler import EpochSampler
from thinkspace.data.schema import DATA_SPLIT, SpatialSample


class SpatialDataModule(L.LightningDataModule):
    """Loaders for any datasets that yield :class:`~thinkspace.data.schema.SpatialSample`.

    The collator comes from the model (it needs the backbone's processor and the
    objectives' targets), so batches of image sets and videos mix freely. Training
    order is a function of (seed, epoch) and the loop's progress (see
    :class:`~thinkspace.data.sampler.EpochSampler`), which makes resumed and
    multi-process runs exact. Set ``trainer.use_distributed_sampler: false`` (the CLI's
    default): ranks are split here. Each loader's samples carry the split they came from
    (``meta["data_split"]``, :class:`SplitTagged`), for errors that need it.

    Args:
        train: training dataset.
        val: validation dataset.
        test: test dataset.
        predict: prediction dataset.
        batch_size: samples per process per step.
        eval_batch_size: batch size for val/test/predict (default: ``batch_size``); generation decodes the
            batch at once (left-padded prompts, finished rows dropped), each answer that of batch 1.
        num_workers: data-loading worker processes (decoding, processing, targets).
        seed: seed of the training order.
        global_batch_size: samples per optimizer step over all processes; the gradient
            accumulation is derived from it (``global / (processes x batch_size)``) and a
            global batch that does not divide evenly is an error before any work starts.
        val_subset: validate on this many samples of ``val`` only: a fixed subset drawn once from ``seed``
            (:func:`validation_subset`: the same samples at every validation and in every run with that
            seed, in dataset order), for cheaper model selection; ``None``: all.
    """

    def __init__(
        self,
        train: Dataset | None = None,
        val: Dataset | None = None,
        test: Dataset | None = None,
        predict: Dataset | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        global_batch_size: int | None = None,
        val_subset: int | None = None,
    ) -> None:
        super().__init__()
        self.datasets = {"train": train, "val": val, "test": test, "predict": predict}
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.global_batch_size = global_batch_size
        if val_subset is not None and val_subset < 1:
            raise ValueError(f"data.val_subset must be at least 1 (or null for the whole validation set), got {val_subset}")
        self.val_subset = val_subset
        if val is None:
            # No loader at all (rather than an empty one): Lightning then skips
            # validation without warning about an empty dataloader.
            self.val_dataloader = None  # type: ignore[assignment]

    def setup(self, stage: str) -> None:
        if self.global_batch_size is not None and self.trainer is not None and stage == "fit":
            self.trainer.accumulate_grad_batches = accumulation_steps(
                self.global_batch_size, self.trainer.world_size, self.batch_size, self.trainer.accumulate_grad_batches)

    def _progress(self, loader_batches: int) -> tuple[int, int]:
        """(epoch, batches already done in it), from the count of training batches so far.

        Lightning's own epoch counter is not trusted here: a checkpoint written when
        ``max_steps`` stops a run mid-epoch records that epoch as completed, and the
        resumed run would draw the next epoch's order. The total batch count does not
        lie, and divided by the batches per epoch it gives both numbers. The batches per
        epoch come from the loader itself (``loader_batches``, cut by
        ``trainer.limit_train_batches`` as Lightning cuts it), not from
        ``trainer.num_training_batches``: with ``num_workers > 0`` the sampler is iterated
        as soon as the loader's iterator is built, before Lightning has counted the batches
        of a resumed run.
        """
        trainer = self.trainer
        done = int(trainer.fit_loop.epoch_loop.batch_progress.total.ready)
        per_epoch = epoch_batches(loader_batches, trainer.limit_train_batches)
        if per_epoch <= 0:
            return trainer.current_epoch, 0
        return divmod(done, per_epoch)

    def _loader(self, split: str, shuffle: bool, with_response: bool = True, evaluation: bool = False) -> DataLoader:
        dataset = self.datasets[split]
        if dataset is None:
            raise ValueError(f"data.{split}: no dataset configured for this stage")
        if split == "val" and self.val_subset is not None:
            dataset = Subset(dataset, validation_subset(len(dataset), self.val_subset, self.seed))
        dataset = SplitTagged(dataset, split)
        trainer = self.trainer
        batch_size = self.batch_size if shuffle else self.eval_batch_size
        sampler = EpochSampler(
            len(dataset),
            seed=self.seed,
            shuffle=shuffle,
            batch_size=batch_size,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        if shuffle and trainer:
            sampler.progress = partial(self._progress, -(-len(sampler) // batch_size))
        collate = self.trainer.lightning_module.collator(with_response=with_response, evaluation=evaluation)
        return EpochLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # page-locked batches (teacher features included, Batch.pin_memory) copy to the GPU without
            # blocking the host (SpatialModule.transfer_batch_to_device)
            pin_memory=trainer is not None and trainer.strategy.root_device.type == "cuda",
            # workers start from a single-threaded server, not forked from this process: a fork while
            # another thread holds the interpreter's thread-state lock deadlocks the child (seen under
            # DDP with Lightning's and tqdm's threads: rank 1's worker hung in PyOS_AfterFork_Child)
            multiprocessing_context="forkserver" if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, with_response=False, evaluation=True)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False, with_response=False, evaluation=True)


class SplitTagged(Dataset):
    """``dataset``'s samples with ``meta["data_split"] = split`` (:data:`~thinkspace.data.schema.DATA_SPLIT`),
    so what fails on a sample in a worker (a missing teacher-cache entry) can name its ``data.<split>``.
    Items that are not a ``SpatialSample`` pass unchanged."""

    def __init__(self, dataset: Any, split: str) -> None:
        self.dataset, self.split = dataset, split

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        if not isinstance(sample, SpatialSample):
            return sample
        return replace(sample, meta={**sample.meta, DATA_SPLIT: self.split})  # a copy: a dataset's cache stays as is


class EpochLoader(DataLoader):
    """A ``DataLoader`` over an :class:`~thinkspace.data.sampler.EpochSampler`, resumable the way
    Lightning asks (``state_dict`` / ``load_state_dict``), by construction.

    Its position needs no saved state: the sampler reads it from the loop's batch count, which the
    checkpoint restores. What it saves is what that position means, the seed and the dataset
    length; a resume with other ones says, in one line, that the order will not match.
    """

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.sampler.seed, "length": self.sampler.length}

    def load_state_dict(self, state: dict[str, int]) -> None:
        now = self.state_dict()
        if state and state != now:
            rank_zero_warn(f"resuming with training data seed/length {now} where the checkpoint had {state}: the "
                           "order continues from the same batch count but is not the uninterrupted run's")


def validation_subset(length: int, size: int, seed: int) -> list[int]:
    """``size`` indices of a dataset of ``length`` samples, drawn without replacement from ``seed`` alone
    (a permutation's first ``size``), sorted: the same subset at every call, on every rank and machine.

    Raises:
        ValueError: ``size`` exceeds ``length`` (naming ``data.val_subset`` and both numbers).
    """
    if size > length:
        raise ValueError(f"data.val_subset {size} exceeds the validation set's {length} samples; "
                         "use a smaller subset or null for all of them")
    order = torch.randperm(length, generator=torch.Generator().manual_seed(seed))
    return sorted(order[:size].tolist())


def accumulation_steps(global_batch: int, processes: int, batch_size: int, configured: int = 1) -> int:
    """Gradient-accumulation steps that make ``global_batch`` from ``processes x batch_size``.

    Raises:
        ValueError: when ``global_batch`` is not a multiple of ``processes x batch_size``,
            or ``configured`` (``trainer.accumulate_grad_batches``, 1 when unset) disagrees.
    """
    per_step = processes * batch_size
    if global_batch < 1 or global_batch % per_step:
        raise ValueError(
            f"data.global_batch_size {global_batch} is not a multiple of processes x data.batch_size = "
            f"{processes} x {batch_size} = {per_step}; choose a global batch divisible by {per_step} or change "
            "trainer.devices / trainer.num_nodes / data.batch_size"
        )
    steps = global_batch // per_step
    if configured not in (1, steps):
        raise ValueError(
            f"trainer.accumulate_grad_batches {configured} disagrees with data.global_batch_size {global_batch} "
            f"= {processes} processes x batch {batch_size} x {steps} accumulation steps; set only one of them"
        )
    return steps


def epoch_batches(loader_batches: int, limit: int | float | None) -> int:
    """Training batches per epoch: ``loader_batches`` cut by ``trainer.limit_train_batches``
    (an int caps the count, a float is a fraction), the rule Lightning applies."""
    if limit is None:
        return loader_batches
    if isinstance(limit, int):
        return min(loader_batches, limit)
    return int(loader_batches * limit)
