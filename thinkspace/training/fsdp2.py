"""``FSDP2``: fully sharded data parallelism with ``torch.distributed.fsdp.fully_shard``.

The same strategy runs on GPUs (NCCL) and on CPU processes (gloo): FSDP2 shards each
parameter over a ``DeviceMesh`` of the run's device type, where FSDP1 refuses a machine
without an accelerator. It is Lightning's ``ModelParallelStrategy`` (process launch, mesh,
checkpoints through ``torch.distributed.checkpoint``) with the sharding done here, from the
model's own layer classes, so a LightningModule needs no ``configure_model`` of its own:

- **groups** (:func:`~thinkspace.training.shard_groups.shard_groups`): each decoder layer and
  vision block (``layer_classes``: the model's ``_no_split_modules``); modules of another
  dtype than their surroundings (float32 heads, projector, camera prior, LoRA adapters
  beside bf16 weights) their own groups; the LightningModule the root, its ``*_step``
  methods registered as FSDP forwards (they, not ``forward``, run the model);
- **precision**: units all-gather and compute in ``param_dtype`` (bfloat16 under
  ``bf16-mixed``: half the traffic and unsharded memory) and reduce gradients in
  ``reduce_dtype`` (float32); the other groups keep their own dtype, with Lightning's
  autocast around the step as in one process. Optimizer states follow the sharded
  parameters' own dtype (float32 masters: :mod:`thinkspace.training.master_weights`);
- **clipping**: ``trainer.gradient_clip_val`` through Lightning's precision plugin, whose
  ``torch.nn.utils.clip_grad_norm_`` takes the norm of the whole (DTensor) gradients over
  every rank (FSDP1's precision plugin refuses to clip by norm).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn

from thinkspace.training.master_weights import MIXED_COMPUTE_DTYPE
from thinkspace.training.shard_groups import shard_groups
from thinkspace.training.strategies import layer_classes

#: the LightningModule methods that run the model: each all-gathers the root group
STEP_METHODS = ("training_step", "validation_step", "test_step", "predict_step")

Dtype = Literal["auto", "bfloat16", "float16", "float32"]


class FSDP2(ModelParallelStrategy):
    """Fully sharded data parallel (FSDP2) over every process, the model's layers as units.

    Args:
        wrap: class names sharded as units (``["Qwen2_5_VLDecoderLayer"]``); default: every
            name in the ``_no_split_modules`` of the model's transformers modules.
        param_dtype: dtype of the units' all-gathered weights and compute; ``auto``:
            bfloat16 under ``precision: bf16-mixed``, float16 under ``16-mixed``, else the
            weights' own; ``float32`` all-gathers float32 masters (what one process under
            autocast computes with, at twice the traffic).
        reduce_dtype: dtype of the gradient reduce-scatter (float32: no bf16 sums over ranks;
            ``auto``: the compute dtype).
        reshard_after_forward: free the units' gathered weights after forward and gather them
            again for backward (ZeRO-3); False keeps them until backward (ZeRO-2 memory).
        save_distributed_checkpoint: one shard file per rank in a checkpoint directory (the
            largest models); False (default): one consolidated ``.ckpt`` on rank 0, which
            ``thinkspace export`` and resume read.
        process_group_backend: default ``nccl`` on CUDA, ``gloo`` on the CPU.
    """

    def __init__(self, wrap: list[str] | None = None, param_dtype: Dtype = "auto", reduce_dtype: Dtype = "float32",
                 reshard_after_forward: bool = True, save_distributed_checkpoint: bool = False,
                 process_group_backend: str | None = None, timeout: timedelta | None = None) -> None:
        kwargs = {"timeout": timeout} if timeout is not None else {}
        super().__init__(save_distributed_checkpoint=save_distributed_checkpoint,
                         process_group_backend=process_group_backend, **kwargs)
        self.wrap, self.param_dtype, self.reduce_dtype = wrap, param_dtype, reduce_dtype
        self.reshard_after_forward = reshard_after_forward
        self.groups: list[str] = []  # the sharded groups' module names, root ("") last

    def setup_environment(self) -> None:
        # one mesh dimension over every process: full shard (Lightning's default splits per node)
        self._data_parallel_size = self.num_nodes * self.num_processes
        self._tensor_parallel_size = 1
        super().setup_environment()

    def setup(self, trainer: pl.Trainer) -> None:
        """Convert precision, shard, then Lightning's optimizer and precision set-up (the
        ``configure_model`` requirement of ``ModelParallelStrategy`` does not apply)."""
        assert self.model is not None and self.accelerator is not None
        self.accelerator.setup(trainer)
        refuse_meta_weights(self.model)
        self.model = self.precision_plugin.convert_module(self.model)  # bf16-true: before sharding
        self.shard(self.model)
        self.model_to_device()
        self.barrier()
        if trainer.state.fn == TrainerFn.FITTING:
            self.setup_optimizers(trainer)
        self.setup_precision_plugin()
        if trainer.state.fn == TrainerFn.FITTING:
            optimizer_states_to(self.optimizers, self.root_device)

    def shard(self, module: nn.Module) -> None:
        """``fully_shard`` every group of ``module`` (once) on the data-parallel mesh."""
        from torch.distributed.fsdp import FSDPModule, fully_shard, register_fsdp_forward_method

        if isinstance(module, FSDPModule):
            return
        mesh = self.device_mesh["data_parallel"]
        units = layer_classes(module, self.wrap)
        unit_policy, other_policy = self.policies()
        count = sum(1 for m in module.modules() if type(m) in units)

        def apply(group: nn.Module, name: str, is_unit: bool) -> None:
            fully_shard(group, mesh=mesh, mp_policy=unit_policy if is_unit else other_policy,
                        reshard_after_forward=self.reshard_after_forward if is_unit else False)

        self.groups = shard_groups(module, units, apply)
        for method in STEP_METHODS:
            if hasattr(module, method):
                register_fsdp_forward_method(module, method)
        rank_zero_info(f"FSDP2: {len(self.groups)} sharded groups over {mesh.size()} processes "
                       f"({count} units of "
                       f"{sorted(c.__name__ for c in units)}); units compute in {unit_policy.param_dtype or 'their dtype'}")

    def policies(self) -> tuple[Any, Any]:
        """Mixed-precision policies of the units and of the other groups.

        Inputs are not cast (``cast_forward_inputs=False``): the residual stream keeps the
        dtype it has in one process under autocast; only the weights are all-gathered in
        ``param_dtype``.
        """
        from torch.distributed.fsdp import MixedPrecisionPolicy

        reduce = getattr(torch, self.reduce_dtype) if self.reduce_dtype != "auto" else None
        unit = MixedPrecisionPolicy(param_dtype=self.compute_dtype(), reduce_dtype=reduce, cast_forward_inputs=False)
        return unit, MixedPrecisionPolicy(reduce_dtype=reduce, cast_forward_inputs=False)

    def compute_dtype(self) -> torch.dtype | None:
        """The units' ``param_dtype``: given, or from ``trainer.precision`` (None: the weights' own)."""
        if self.param_dtype != "auto":
            return getattr(torch, self.param_dtype)
        precision = str(getattr(self.precision_plugin, "precision", ""))
        return MIXED_COMPUTE_DTYPE.get(precision)


def refuse_meta_weights(model: nn.Module) -> None:
    """thinkspace builds its models with their weights; one on the meta device (no values) cannot be sharded.

    Raises:
        ValueError: naming the first such parameter or buffer.
    """
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:
            raise ValueError(f"FSDP2: {name} is on the meta device (no values); build the model with its weights")


def optimizer_states_to(optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
    """Move the optimizers' state tensors to ``device`` (``step`` stays where the optimizer keeps it)."""
    for optimizer in optimizers:
        for state in optimizer.state.values():
            for key, value in state.items():
                if key != "step" and isinstance(value, torch.Tensor):
                    state[key] = value.to(device)
