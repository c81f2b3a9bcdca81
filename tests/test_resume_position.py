"""Where a resumed run's training order starts, read before Lightning has counted its batches."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset

from thinkspace.data.datamodule import SpatialDataModule, epoch_batches


class Numbers(Dataset):
    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int) -> int:
        return index


def fake_trainer(ready: int, epoch: int, limit: int | float = 1.0) -> SimpleNamespace:
    """What a trainer resumed from a ``max_steps`` checkpoint looks like when a worker-backed loader is
    first iterated: the batch count restored, the epoch marked completed, the batches per epoch not yet
    counted (``inf``)."""
    progress = SimpleNamespace(total=SimpleNamespace(ready=ready))
    return SimpleNamespace(
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)),
        num_training_batches=float("inf"), current_epoch=epoch, limit_train_batches=limit,
        global_rank=0, world_size=1, lightning_module=SimpleNamespace(collator=lambda with_response, evaluation=False: list),
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )


@pytest.mark.parametrize(("ready", "limit", "epoch", "skip"), [(6, 1.0, 0, 6), (10, 1.0, 1, 0), (13, 1.0, 1, 3),
                                                               (6, 4, 1, 2), (6, 0.5, 1, 1)])
def test_resumed_order_comes_from_the_batch_count_not_lightning_epoch(ready, limit, epoch, skip):
    data = SpatialDataModule(train=Numbers(), batch_size=4, seed=3)
    data.trainer = fake_trainer(ready, epoch=epoch + 1, limit=limit)  # Lightning's epoch is one ahead
    loader = data.train_dataloader()
    assert list(loader.sampler) == loader.sampler.order(epoch)[skip * 4:]


def test_epoch_batches_follows_lightning_limit_rule():
    assert [epoch_batches(10, limit) for limit in (1.0, 0.25, 3, 20, None)] == [10, 2, 3, 10, 10]
