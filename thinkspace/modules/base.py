"""``SpatialModule``: what the supervised (:class:`~thinkspace.modules.spatial_vlm.SpatialVLM`) and the
GRPO (:class:`~thinkspace.rl.grpo.SpatialGRPO`) LightningModules share.

The backbone, its input cues and their inputs-embeds hook, frozen parameters, the optimizer
(with weight-decay groups and the warm-up schedule's total steps), and the inference API that
callers (test/predict loops, :class:`thinkspace.inference.SpatialModel`) use on either module:
:attr:`objectives`, :meth:`generation_settings`, :meth:`decode`, :meth:`generate`, :meth:`locate`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from thinkspace.backbones.base import VLMBackbone
from thinkspace.data.batch import Batch
from thinkspace.generation.decode import decode
from thinkspace.generation.decoded import Decoded
from thinkspace.generation.rank_agreement import any_rank_needs
from thinkspace.objectives.base import Objective, hook_owner
from thinkspace.training.master_weights import keep_fp32_masters, wants_masters
from thinkspace.training.optim import WarmupSchedule
from thinkspace.training.weight_decay import decay_groups


class SpatialModule(L.LightningModule):
    """A VLM backbone with its cues, trained by a subclass's steps.

    Subclasses call :meth:`finish_init` at the end of ``__init__`` (once every head exists) and
    provide ``objectives``: a mapping name -> :class:`Objective` (their heads and hooks).

    Args:
        backbone: the vision-language model.
        optimizer: optimizer factory over the trainable parameters.
        scheduler: learning-rate scheduler factory, stepped every optimizer step; a
            :class:`~thinkspace.training.optim.WarmupSchedule` without ``total_steps`` gets the trainer's estimate.
        no_weight_decay: regular expressions of parameter names exempt from weight decay
            (see :func:`~thinkspace.training.weight_decay.decay_groups`); ``None``: decay every one.
    """

    #: objectives by name (a ``ModuleDict`` in SpatialVLM; GRPO: its latent objective, if any)
    objectives: Mapping[str, Objective]
    #: float32 masters of bf16 trainable weights under mixed precision (SpatialVLM's argument)
    master_weights: bool = True

    def __init__(self, backbone: VLMBackbone, optimizer: OptimizerCallable,
                 scheduler: LRSchedulerCallable | None = None, no_weight_decay: list[str] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.cues = nn.ModuleDict()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.no_weight_decay = no_weight_decay

    def finish_init(self, freeze: list[str] | None, gradient_checkpointing: bool) -> None:
        """Check the objectives' hooks (one owner of decoding and of locate), freeze parameters
        matching ``freeze`` and switch on gradient checkpointing."""
        hook_owner(self.objectives, "generate")
        hook_owner(self.objectives, "locate")
        freeze_parameters(self, freeze or [])
        if gradient_checkpointing:
            self.backbone.enable_gradient_checkpointing()

    # -- inference API -------------------------------------------------------------------

    def embeds_hook(self) -> Any:
        """The inputs-embeds hook applying every cue in order, or None without cues."""
        if not self.cues:
            return None

        def apply(embeds: Tensor, batch: Batch) -> Tensor:
            for cue in self.cues.values():
                embeds = cue.edit_embeds(embeds, batch)
            return embeds

        return apply

    def generation_settings(self) -> dict[str, Any]:
        """The module's own decoding arguments (e.g. ``max_new_tokens``) for test, predict and inference."""
        return {}

    def decode(self, batch: Batch, **overrides: Any) -> Decoded:
        """The prompts' continuations, the whole result, with :meth:`generation_settings` updated by
        ``overrides``, through the one :func:`~thinkspace.generation.decode.decode` both modules share:
        the objective that owns decoding (its ``generate`` hook; e.g. the latent slot) passes its slot."""
        hook, settings = self.embeds_hook(), {**self.generation_settings(), **overrides}
        decoder = hook_owner(self.objectives, "generate")
        if decoder is not None:
            return decoder.decode(self.backbone, batch, inputs_embeds_hook=hook, **settings)
        return decode(self.backbone, batch, inputs_embeds_hook=hook, **settings)

    def generate(self, batch: Batch, **overrides: Any) -> list[str]:
        """Continuations of the batch's prompts with :meth:`generation_settings` updated by ``overrides``
        (e.g. validation's token cap), special tokens skipped: the texts of :meth:`decode` (an objective that
        owns decoding gives its ``generate``'s)."""
        decoder = hook_owner(self.objectives, "generate")
        if decoder is not None:
            return decoder.generate(self.backbone, batch, inputs_embeds_hook=self.embeds_hook(),
                                    **{**self.generation_settings(), **overrides})
        return self.decode(batch, **overrides).texts

    def locate(self, batch: Batch) -> list[tuple[float, float, float]] | None:
        """Each sample's predicted situation, world ``(x, y, yaw)`` in metres and radians (the
        direction faced), from the enabled objective that owns ``locate``; None without one.
        Runs its own forward on the prompts: generation re-pads them and does not return the
        last layer's prefill states, so its numbers are not those of this forward bit for bit."""
        locator = hook_owner(self.objectives, "locate")
        if locator is None:
            return None
        # a batch whose prompts ask for no situation (VSI-Bench answered without <Pos><Ori>) needs no
        # forward; sharded, every rank runs it when any rank's batch needs it (one collective each)
        if not any_rank_needs(any(locator.locates(batch)), self.backbone):
            return [None] * len(batch.ids)
        return locator.locate(self.backbone(batch, self.embeds_hook()), batch)

    # -- Lightning hooks -------------------------------------------------------------------

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, list[Any]]:
        """Generate for every sample; return ids and texts (and, with an objective that locates,
        ``situations``) for callbacks (e.g. :class:`thinkspace.eval.predictions.BenchmarkPredictions`)."""
        outputs: dict[str, list[Any]] = {"ids": list(batch.ids), "predictions": list(self.generate(batch))}
        situations = self.locate(batch)
        if situations is not None:
            outputs["situations"] = situations
        return outputs

    def predict_step(self, batch: Batch, batch_idx: int) -> list[dict[str, Any]]:
        texts = self.generate(batch)
        rows = [{"id": i, "prediction": t, "answer": a} for i, t, a in zip(batch.ids, texts, batch.answers)]
        for row, situation in zip(rows, self.locate(batch) or []):
            row["situation"] = situation
        return rows

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(decay_groups(self, self.no_weight_decay))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if isinstance(scheduler, WarmupSchedule) and scheduler.total_steps is None:
            scheduler.total_steps = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def transfer_batch_to_device(self, batch: Any, device: Any, dataloader_idx: int) -> Any:
        """A :class:`Batch` moves whole, teacher features included, without blocking the host on CUDA
        (the loader pins it there, ``SpatialDataModule``); Lightning's default would move only
        plain tensors without blocking."""
        if isinstance(batch, Batch):
            return batch.to(device, non_blocking=torch.device(device).type == "cuda")
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def configure_model(self) -> None:
        """Before the optimizer and any sharding, when fitting under mixed precision: float32
        master weights for every trainable parameter (:mod:`thinkspace.training.master_weights`)."""
        if self.master_weights and self.trainer.state.fn == "fit" and wants_masters(self.trainer.precision):
            keep_fp32_masters(self)


def freeze_parameters(module: nn.Module, patterns: list[str]) -> int:
    """Freeze parameters whose qualified name matches any regex in ``patterns``.

    Returns the number of frozen tensors. Raises ``ValueError`` naming a pattern that
    matches no parameter.
    """
    compiled = [(p, re.compile(p)) for p in patterns]
    used: set[str] = set()
    frozen = 0
    for name, param in module.named_parameters():
        for pattern, regex in compiled:
            if regex.search(name):
                param.requires_grad_(False)
                used.add(pattern)
                frozen += 1
                break
    unused = [p for p, _ in compiled if p not in used]
    if unused:
        raise ValueError(f"model.freeze: pattern(s) {unused} match no parameter name")
    return frozen
