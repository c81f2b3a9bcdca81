"""The progress bar's epoch total and description for step-limited and resumed runs."""

from types import SimpleNamespace

import pytest

from thinkspace.progress_bar import ThinkspaceRichBar, ThinkspaceTQDMBar, data_epoch, epoch_total


def trainer(batches_done: int, global_step: int, max_steps: int = 300, per_epoch: int = 128, accumulate: int = 1,
            lightning_epoch: int = 3):
    progress = SimpleNamespace(total=SimpleNamespace(ready=batches_done))
    return SimpleNamespace(num_training_batches=per_epoch, max_steps=max_steps, max_epochs=-1, global_step=global_step,
                           accumulate_grad_batches=accumulate, current_epoch=lightning_epoch,
                           fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)))


@pytest.mark.parametrize(("done", "step", "accumulate", "total"), [
    (281, 281, 1, 44),  # resumed 25 batches into epoch 2, 19 steps left: ends at batch 44 (Lightning: 19)
    (256, 256, 1, 44),  # epoch 2 from its start, 44 steps left
    (128, 128, 1, 128),  # a whole epoch left
    (20, 10, 2, 128),  # accumulation: 290 steps left are 580 batches
    (250, 125, 2, 128),  # 122 batches into epoch 1, 175 steps (350 batches) left
])
def test_epoch_total_is_where_this_epoch_ends(done, step, accumulate, total):
    assert epoch_total(trainer(done, step, accumulate=accumulate)) == total


def test_no_max_steps_means_the_whole_epoch():
    assert epoch_total(trainer(281, 281, max_steps=-1)) == 128


@pytest.mark.parametrize("bar", [ThinkspaceRichBar, ThinkspaceTQDMBar])
def test_bars_use_the_epoch_total(bar):
    instance = bar()
    instance._trainer = trainer(281, 281)
    assert instance.total_train_batches == 44


def test_the_epoch_shown_is_the_data_epoch_not_lightning_counter():
    # resumed from a max_steps checkpoint 25 batches into epoch 2: Lightning's counter says 3
    assert data_epoch(trainer(281, 281, lightning_epoch=3)) == 2
    assert data_epoch(trainer(256, 256, lightning_epoch=2)) == 2


def test_rich_description_has_no_negative_epoch_count():
    bar = ThinkspaceRichBar()
    bar._trainer = trainer(281, 281)
    assert bar._get_train_description(3).strip() == "Epoch 2"
    bar._trainer.max_epochs = 5
    assert bar._get_train_description(3).strip() == "Epoch 2/4"
