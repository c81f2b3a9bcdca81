"""SpatialVLM: objective stacks, freezing, precision, logging of every term."""

import lightning as L
import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.mixers import WeightedSum
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import Objective, TextCrossEntropy


class Exploding(Objective):
    """Fails if its loss is ever computed."""

    terms = {"boom": 1.0}

    def loss(self, out, batch):
        raise AssertionError("a weight-0 objective must not be computed")


class LoggedMetrics(L.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, *args):
        self.seen.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def fit(module, steps=3, **trainer):
    data = SpatialDataModule(train=ColouredSquares(16, image_size=(28, 56)), batch_size=4)
    metrics = LoggedMetrics()
    L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
              callbacks=[metrics], **trainer).fit(module, data)
    return metrics.seen


def test_frozen_vision_tower_does_not_move_and_the_rest_does(tiny_cache):
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), freeze=[r"\.visual\."],
                        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    fit(module)
    for name, param in module.named_parameters():
        moved = not torch.equal(param, before[name])
        assert moved == (".visual." not in name), name


def test_bf16_mixed_precision_trains_with_gradient_clipping(tiny_cache):
    """The paper recipes' setting. The default optimizer stays unfused: Lightning's mixed-precision plugin
    refuses gradient clipping with a fused optimizer (it unscales inside its step)."""
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"))
    seen = fit(module, steps=2, precision="bf16-mixed", gradient_clip_val=1.0)
    assert len(seen) == 2 and all(torch.isfinite(torch.tensor(s["train/loss"])) for s in seen)
    assert next(module.parameters()).dtype == torch.float32  # master weights stay fp32


def test_every_term_is_logged_and_weight_zero_skips_an_objective(tiny_cache):
    module = SpatialVLM(
        QwenVL("tiny:qwen2_5_vl"),
        objectives={"text": TextCrossEntropy(), "extra": Exploding(weight=0.0), "gone": None},
        mixer=WeightedSum(weights={"text.ce": 2.0}),
    )
    assert set(module.objectives) == {"text", "extra"}
    seen = fit(module, steps=2)
    last = seen[-1]
    assert last["train/loss"] == pytest.approx(2.0 * last["train/text.ce"], rel=1e-5)
    assert last["train/weight/text.ce"] == 2.0


def test_all_objectives_null_is_an_error(tiny_cache):
    with pytest.raises(ValueError, match="model.objectives: every objective is null"):
        SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": None})
