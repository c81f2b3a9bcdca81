"""Cheaper validation for model selection: a fixed subset of the validation set (``data.val_subset``) and
validation's own decoding settings (``model.val_generation``, e.g. a token cap), while ``test`` keeps the
full set and the full budget."""

import lightning as L
import pytest

import thinkspace.modules.base as module_base
from thinkspace.backbones import QwenVL
from thinkspace.data.datamodule import SpatialDataModule, validation_subset
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.modules.spatial_vlm import SpatialVLM

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_subset_is_fixed_by_the_seed_sorted_and_without_repeats():
    first = validation_subset(1050, 200, seed=42)
    assert first == validation_subset(1050, 200, seed=42)  # every validation, every rank, every run
    assert len(first) == 200 and len(set(first)) == 200 and first == sorted(first)
    assert 0 <= first[0] and first[-1] < 1050
    assert first != validation_subset(1050, 200, seed=43)
    assert first[-1] > 900  # drawn from the whole set, not its first samples (MindCube files group settings)
    assert validation_subset(5, 5, seed=0) == [0, 1, 2, 3, 4]


def test_a_subset_larger_than_the_set_or_below_one_is_an_error_naming_the_key():
    with pytest.raises(ValueError, match=r"data.val_subset 11 exceeds the validation set's 10 samples"):
        validation_subset(10, 11, seed=0)
    with pytest.raises(ValueError, match=r"data.val_subset must be at least 1 .* got 0"):
        SpatialDataModule(val=ColouredSquares(4), val_subset=0)


def test_val_generation_needs_generation(tiny_cache):
    with pytest.raises(ValueError, match=r"model.val_generation is set but model.generation is null"):
        SpatialVLM(QwenVL("tiny:qwen2_5_vl"), val_generation={"max_new_tokens": 4})


class DecodeSpy:
    """Records each decode's prompt ids and settings, and decodes."""

    def __init__(self, monkeypatch):
        self.calls, original = [], module_base.decode

        def spy(backbone, batch, **settings):
            self.calls.append((list(batch.ids), settings))
            return original(backbone, batch, **settings)

        monkeypatch.setattr(module_base, "decode", spy)


def test_validation_decodes_the_subset_with_its_cap_and_test_the_whole_set_with_the_full_budget(tiny_cache,
                                                                                                 monkeypatch):
    squares = ColouredSquares(10, image_size=(28, 56))
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), generation={"max_new_tokens": 6, "eos_token_id": []},
                        val_generation={"max_new_tokens": 2})
    data = SpatialDataModule(val=squares, test=squares, batch_size=1, eval_batch_size=3, val_subset=4, seed=7)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    spy = DecodeSpy(monkeypatch)
    metrics = trainer.validate(module, data, verbose=False)[0]
    chosen = [squares[i].id for i in validation_subset(10, 4, seed=7)]
    assert [ids for ids, _ in spy.calls] == [chosen[:3], chosen[3:]]  # eval_batch_size 3: two batches
    assert all(settings["max_new_tokens"] == 2 and settings["eos_token_id"] == [] for _, settings in spy.calls)
    assert 0.0 <= metrics["val/accuracy"] <= 1.0
    spy.calls.clear()
    trainer.test(module, data, verbose=False)
    assert [i for ids, _ in spy.calls for i in ids] == [squares[i].id for i in range(10)]
    assert all(settings["max_new_tokens"] == 6 for _, settings in spy.calls)
