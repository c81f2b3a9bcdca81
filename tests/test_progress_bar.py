"""The progress bar's epoch total and description for step-limited and resumed runs."""

from types import SimpleNamespace

import pytest

from thinkspace.training.progress_bar import ThinkspaceRichBar, ThinkspaceTQDMBar, data_epoch, epoch_total


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
    assert bar.train_description().strip() == "Epoch 2"
    bar._trainer.max_epochs = 5
    assert bar.train_description().strip() == "Epoch 2/4"


def test_a_real_step_limited_fit_shows_the_data_epoch_without_a_negative_count(tmp_path):
    """Through Lightning's own hooks (public API only): the training bar reads "Epoch E", never "/-2"."""
    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel

    seen = []

    class Recorder(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            bar = trainer.progress_bar_callback
            seen.append(bar.progress.tasks[bar.train_progress_bar_id].description)

    bar = ThinkspaceRichBar()
    trainer = L.Trainer(max_steps=3, limit_train_batches=2, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, callbacks=[bar, Recorder()], default_root_dir=tmp_path)
    trainer.fit(BoringModel())
    assert len(seen) == 3
    assert [d.split("]")[-1].strip() for d in seen] == ["Epoch 0", "Epoch 0", "Epoch 1"]
