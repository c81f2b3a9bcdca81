"""Samples/s, tokens/s and an MFU estimate in the training logs (Lightning's ``ThroughputMonitor``).

Logged under ``train/`` on rank zero every ``log_every_n_steps``, once ``window_size``
batches have been seen: ``device/samples_per_sec``, ``device/items_per_sec`` (tokens,
prompt and visual tokens included), ``device/flops_per_sec`` and, on GPUs whose peak
Lightning knows, ``device/mfu``; with several processes also the global rates (rank
zero's batch times the world size). ``thinkspace fit`` adds it unless the config lists a
``ThroughputMonitor`` of its own or turns the logger off.

A LightningModule whose step does other work than one pass over its batch says so with
``training_work(batch) -> (samples, tokens)``, read after the step; GRPO counts its
``B x G`` completions and the tokens it scored, and logs no FLOPs (generation, scoring and
the reference pass do not fit the estimate below).

The FLOPs of a training batch are estimated, not measured: 2 FLOPs per parameter per
token forward, 4 more backward for parameters that train, 2 more for frozen ones that
still pass gradients back (the decoder under LoRA), and forward only for a frozen vision
tower (nothing before it needs gradients). The attention's quadratic term is left out.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ThroughputMonitor
from torch import Tensor, nn

from thinkspace.data.batch import Batch


def batch_samples(batch: Batch) -> int:
    return len(batch)


def batch_tokens(batch: Batch) -> int:
    """Tokens the decoder processes (padding excluded)."""
    mask = batch.inputs.get("attention_mask")
    return int(mask.sum()) if mask is not None else int(batch.inputs["input_ids"].numel())


class Throughput(ThroughputMonitor):
    """Throughput of training (and evaluation) in the run's logs.

    Args:
        window_size: batches in the sliding window the rates are measured over.
    """

    def __init__(self, window_size: int = 10) -> None:
        super().__init__(batch_size_fn=self._samples, length_fn=self._tokens, window_size=window_size)
        self._counts: tuple[int, int, int, int] | None = None
        self._module: L.LightningModule | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._module = pl_module
        pl_module.flops_per_batch = None  # set per batch below; its presence tells the monitor to use it

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, *_: Any) -> None:
        if trainer.global_rank == 0 and not hasattr(pl_module, "training_work"):
            pl_module.flops_per_batch = self.estimate_flops(pl_module, batch)

    def _work(self, batch: Batch) -> tuple[int, int] | None:
        training = self._module is not None and self._module.training
        report = getattr(self._module, "training_work", None) if training else None
        return report(batch) if report is not None else None

    def _samples(self, batch: Batch) -> int:
        work = self._work(batch)
        return batch_samples(batch) if work is None else work[0]

    def _tokens(self, batch: Batch) -> int:
        work = self._work(batch)
        return batch_tokens(batch) if work is None else work[1]

    def estimate_flops(self, pl_module: L.LightningModule, batch: Batch) -> int:
        """Training FLOPs of one batch on this process (see the module docstring)."""
        if self._counts is None:
            self._counts = parameter_counts(pl_module.backbone)
        decoder_train, decoder_frozen, vision_train, vision_frozen = self._counts
        tokens = batch_tokens(batch)
        pixels = batch.inputs.get("pixel_values", batch.inputs.get("pixel_values_videos"))
        patches = vision_patches(pixels, vision_patch_size(pl_module.backbone))
        decoder = (6 * decoder_train + 4 * decoder_frozen) * tokens
        vision = (6 * vision_train + 2 * vision_frozen) * patches
        return int(decoder + vision)


def full_numel(param: Tensor) -> int:
    """Elements of the whole parameter, whichever process holds which part of it.

    DeepSpeed ZeRO-3 leaves an empty tensor on every rank and keeps the size in ``ds_numel``; an
    FSDP2 parameter is a DTensor whose ``numel`` is the global one (its local shard is
    ``to_local()``). Counting local sizes would estimate 0 FLOPs under ZeRO-3 and 1 / N of them
    under FSDP2.
    """
    return int(getattr(param, "ds_numel", None) or param.numel())


def parameter_counts(backbone: Any) -> tuple[int, int, int, int]:
    """``(decoder trainable, decoder frozen, vision trainable, vision frozen)`` parameter counts.

    The decoder is the backbone's language model without its input embeddings (a lookup,
    not a matmul); everything else of the model but the LM head counts as vision. Whole
    parameters are counted under sharding (:func:`full_numel`).
    """
    model = getattr(backbone, "hf", backbone.model)
    decoder = backbone.language_model()
    skip = {id(p) for p in decoder.get_input_embeddings().parameters()} if hasattr(
        decoder, "get_input_embeddings") else set()
    head = getattr(model, "lm_head", None)
    skip |= {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    in_decoder = {id(p) for p in decoder.parameters()}
    counts = [0, 0, 0, 0]
    for p in model.parameters():
        if id(p) in skip:
            continue
        counts[(0 if id(p) in in_decoder else 2) + (0 if p.requires_grad else 1)] += full_numel(p)
    return tuple(counts)  # type: ignore[return-value]


def vision_patch_size(backbone: Any) -> int:
    """The vision tower's patch side in pixels (14 when the config does not say)."""
    config = getattr(getattr(backbone, "hf", backbone.model), "config", None)
    return int(getattr(getattr(config, "vision_config", None), "patch_size", 14) or 14)


def vision_patches(pixels: Tensor | None, patch_size: int = 14) -> int:
    """Patches the vision tower encodes: Qwen-VL's flattened rows, else ``pixels / (3 * p * p)``."""
    if pixels is None:
        return 0
    if pixels.dim() == 2:  # Qwen-VL: one row per (temporal) patch
        return int(pixels.shape[0])
    return int(pixels.numel() // (3 * patch_size * patch_size))
