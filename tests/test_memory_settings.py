"""Memory settings of data-parallel training reach torch (issue 28 item 6): DDP's gradients as views into
its all-reduce buckets, AdamW's step by name (fused on CUDA), and the 7B config sharded by default."""

from collections.abc import Callable, Iterable

import pytest
import torch
import torch.distributed as dist
from cli_helpers import REPO
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.lightning_cli import ThinkspaceCLI
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.training import adamw
from thinkspace.training.adamw import AdamW
from thinkspace.training.fsdp2 import FSDP2
from thinkspace.training.strategies import DDP


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of one rank (torch's DDP needs one), destroyed afterwards."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_ddp_strategy_hands_torch_gradients_that_are_views_into_its_buckets(one_process_group):
    torch.manual_seed(0)
    strategy = DDP(parallel_devices=[torch.device("cpu")])
    model = strategy._setup_model(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))  # Lightning's wrapping
    assert type(model) is torch.nn.parallel.DistributedDataParallel
    assert model.gradient_as_bucket_view is True and model.find_unused_parameters is False
    model(torch.randn(3, 4)).square().sum().backward()
    grads = [p.grad for p in model.parameters()]
    storages = {g.untyped_storage().data_ptr() for g in grads}
    # every gradient lives in the one bucket's storage (torch's default copies each into it: 4 storages)
    assert len(storages) == 1 and all(g.numel() > 0 for g in grads)


def _params(n: int = 3) -> list[nn.Parameter]:
    torch.manual_seed(0)
    return [nn.Parameter(torch.randn(5, 4)) for _ in range(n)]


def _steps(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], steps: int = 3) -> list[torch.Tensor]:
    for step in range(steps):
        optimizer.zero_grad()
        sum(((p - step) ** 2).sum() for p in params).backward()
        optimizer.step()
    return [p.detach().clone() for p in params]


def test_adamw_auto_takes_the_fused_step_where_every_parameter_is_on_cuda(monkeypatch):
    cpu = AdamW(_params(), lr=0.1)
    assert cpu.implementation == "torch's default"
    assert cpu.defaults["fused"] is None and cpu.defaults["foreach"] is None
    monkeypatch.setattr(adamw, "on_cuda", lambda tensor: True)  # a GPU, as far as the choice sees
    params = _params()
    groups = [{"params": iter(params[:2]), "weight_decay": 0.01}, {"params": params[2], "weight_decay": 0.0}]
    fused = AdamW(groups, lr=0.1)  # parameter groups as thinkspace's modules hand them (generators too)
    assert fused.implementation == "fused" and fused.defaults["fused"] is True
    assert [len(g["params"]) for g in fused.param_groups] == [2, 1]
    # the same update as torch's for-loop AdamW (torch's fused kernel runs on the CPU too)
    reference = _params()
    expected = _steps(torch.optim.AdamW([{"params": reference[:2], "weight_decay": 0.01},
                                         {"params": reference[2:], "weight_decay": 0.0}], lr=0.1, foreach=False),
                      reference)
    for got, want in zip(_steps(fused, params), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("implementation", "fused", "foreach"), [
    ("fused", True, None), ("foreach", None, True), ("for_loop", None, False),
])
def test_adamw_implementation_by_name_reaches_torch(implementation, fused, foreach):
    optimizer = AdamW(_params(), lr=0.1, implementation=implementation)
    assert (optimizer.implementation, optimizer.defaults["fused"], optimizer.defaults["foreach"]) == (
        implementation, fused, foreach)
    assert all(torch.isfinite(p).all() for p in _steps(optimizer, optimizer.param_groups[0]["params"], 1))


def test_adamw_implementation_misspelt_is_an_error_naming_the_key():
    with pytest.raises(ValueError, match=r"model.optimizer.init_args.implementation must be 'auto', 'fused', "
                                         r"'foreach' or 'for_loop', got 'fast'"):
        AdamW(_params(), implementation="fast")


def test_joint_7b_config_on_8_devices_without_a_fragment_shards_and_steps_fused(tmp_path):
    """`thinkspace fit --config configs/loc3r/joint.yaml --trainer.devices 8` (no fragment) builds FSDP2,
    not DDP, and its optimizer is the AdamW whose step is fused on GPUs."""
    cli = ThinkspaceCLI(
        SpatialVLM, SpatialDataModule, run=False, save_config_callback=None,
        parser_kwargs={"parser_mode": "omegaconf"}, auto_configure_optimizers=False,
        args=["--config", str(REPO / "configs" / "loc3r" / "joint.yaml"),
              "--model.backbone.init_args.path", "tiny:llava_onevision", "--trainer.logger", "false",
              "--trainer.accelerator", "cpu", "--trainer.devices", "8",  # up to where GPUs would be needed
              "--trainer.default_root_dir", str(tmp_path)],
    )
    assert isinstance(cli.trainer.strategy, FSDP2) and cli.trainer.world_size == 8
    optimizer = cli.model.optimizer_factory([nn.Parameter(torch.zeros(2))])
    assert type(optimizer) is AdamW and optimizer.defaults["lr"] == 1e-5
    assert optimizer.implementation == "torch's default"  # the CPU here; fused where the weights are on CUDA


class _Regression(LightningModule):
    """One linear layer on random data: a real Lightning fit in a second."""

    def __init__(self, optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]) -> None:
        super().__init__()
        self.layer, self.optimizer = nn.Linear(8, 1), optimizer
        self.clipped: list[float] = []

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        return 100 * ((self.layer(x) - y) ** 2).mean()  # large gradients: clipping has work to do

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.clipped.append(float(torch.cat([p.grad.flatten() for p in self.parameters()]).norm()))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(8, 8, generator=generator), torch.randn(8, 1, generator=generator)),
                          batch_size=4)


def _fit_bf16_mixed_with_clipping(optimizer) -> _Regression:
    module = _Regression(optimizer)
    trainer = Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", gradient_clip_val=1.0, max_steps=2,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    trainer.fit(module)
    return module


def test_the_fused_step_trains_under_bf16_mixed_with_gradient_clipping_where_torchs_fused_adamw_is_refused():
    with pytest.raises(RuntimeError, match="does not allow for gradient clipping"):  # Lightning's check
        _fit_bf16_mixed_with_clipping(lambda params: torch.optim.AdamW(params, lr=0.1, fused=True))
    module = _fit_bf16_mixed_with_clipping(lambda params: AdamW(params, lr=0.1, implementation="fused"))
    # on_before_optimizer_step sees the gradients before clipping: large (the loss is scaled by 100)
    assert len(module.clipped) == 2 and min(module.clipped) > 1.0
    assert module.trainer.global_step == 2
