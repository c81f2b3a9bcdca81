"""fp32 master weights: a bf16 backbone under ``bf16-mixed`` trains float32 copies; ``bf16-true`` is pure bf16."""

import lightning as L
import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.training.master_weights import keep_fp32_masters, wants_masters


def _one_step(module, precision):
    data = SpatialDataModule(train=ColouredSquares(8, image_size=(28, 56)), batch_size=4)
    L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, use_distributed_sampler=False, precision=precision).fit(module, data)


def _bf16_module(freeze=None, master_weights=True):
    backbone = QwenVL("tiny:qwen2_5_vl", dtype="bfloat16")
    with torch.no_grad():  # the small weights of a trained model: N(0, 0.02), as the tiny model's init
        for name, param in backbone.named_parameters():
            if param.ndim == 2:
                param.normal_(0.0, 0.02)
    return SpatialVLM(backbone, freeze=freeze, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-5),
                      master_weights=master_weights)


def _moved(module, before, keep):
    """Fraction of the elements of parameters named by ``keep`` that changed in the step."""
    changed = total = 0
    for name, param in module.named_parameters():
        if keep(name, before[name]):
            changed += (param.detach().float() != before[name].float()).sum().item()
            total += param.numel()
    return changed / total


def test_bf16_backbone_under_bf16_mixed_moves_norm_and_small_weights_at_lr_1e_5(tiny_cache):
    # bf16 weights stepped in bf16: a norm weight of 1.0 has spacing 2^-7, so AdamW's first step of
    # lr = 1e-5 rounds away everywhere, and most N(0, 0.02) weights (spacing ~1e-4) do not move either
    module = _bf16_module()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    _one_step(module, "bf16-mixed")
    norms = _moved(module, before, lambda n, p: "norm" in n and p.ndim == 1)
    small = _moved(module, before, lambda n, p: p.ndim == 2 and "backbone" in n)
    # Adam's first step is lr * sign(grad): every element with a gradient moves by 1e-5
    assert norms > 0.95, f"only {norms:.1%} of norm weights moved"
    assert small > 0.95, f"only {small:.1%} of N(0, 0.02) weights moved"
    assert {p.dtype for p in module.parameters()} == {torch.float32}


def test_frozen_weights_keep_their_loaded_dtype(tiny_cache):
    module = _bf16_module(freeze=[r"\.visual\."])
    _one_step(module, "bf16-mixed")
    dtypes = {n: p.dtype for n, p in module.named_parameters()}
    assert {d for n, d in dtypes.items() if ".visual." in n} == {torch.bfloat16}  # frozen: never stepped
    assert {d for n, d in dtypes.items() if ".visual." not in n} == {torch.float32}


def test_master_weights_false_trains_pure_bf16_as_the_released_stage_1(tiny_cache):
    module = _bf16_module(master_weights=False)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    _one_step(module, "bf16-mixed")
    assert {p.dtype for p in module.backbone.parameters()} == {torch.bfloat16}
    # the documented cost: at lr 1e-5 no norm weight moves (what the masters fix)
    assert _moved(module, before, lambda n, p: "norm" in n and p.ndim == 1) == 0.0


def test_keep_fp32_masters_casts_trainable_low_precision_and_keeps_ties():
    model = torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 4, bias=False))
    model.to(torch.bfloat16)
    model[1].requires_grad_(False)
    model[2].weight = model[0].weight  # one tensor in two modules (an LM's tied embeddings)
    assert keep_fp32_masters(model) == ["0.weight"]
    assert model[2].weight is model[0].weight and model[0].weight.dtype == torch.float32
    assert model[1].weight.dtype == torch.bfloat16  # frozen
    assert [wants_masters(p) for p in ("bf16-mixed", "16-mixed", "bf16-true", "32-true")] == [True, True, False, False]
