"""What a run tells its user about resuming: the step checkpoint, the line saying what was resumed,
and the line saying that ``--ckpt_path last`` found nothing to resume.

Resume itself is exact by design (see ``docs/architecture.md``, "Exact resume"): the training order
comes from (seed, epoch) and the loop's batch count, rollouts from (seed, step, sample id), and
dropout from (seed, batch count, rank) (:class:`SeedPerBatch`).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from thinkspace.utils.seeds import mix_seed

#: default of ``--checkpoint_every_n_steps``: a long run loses at most this many optimizer steps
#: to a crash, even without validation (GRPO) or with epochs longer than the run.
CHECKPOINT_EVERY_N_STEPS = 500


def step_checkpoint(directory: Path, every_n_steps: int) -> ModelCheckpoint:
    """``last.ckpt`` in ``directory`` rewritten every ``every_n_steps`` optimizer steps (no other file).

    It sits beside the validation/epoch checkpoint (:func:`run_checkpoint`): Lightning's
    ``every_n_train_steps`` switches off saving at validation in the callback that has it, so one
    callback cannot do both. Both overwrite ``last.ckpt`` (no version counter), or each would take
    the other's file for a stale one and write ``last-v1.ckpt``.
    """
    return ModelCheckpoint(dirpath=str(directory), every_n_train_steps=every_n_steps, save_top_k=0, save_last=True,
                           enable_version_counter=False)


def run_checkpoint(directory: Path) -> ModelCheckpoint:
    """The run's checkpoint ``last.ckpt``, written at validation (or epoch end without validation).

    Only ``last.ckpt``: Lightning's default also keeps ``epoch=E-step=S.ckpt``, a copy of the same
    weights (no metric is monitored, so it is never a "best" one). Keep several with your own
    ``ModelCheckpoint`` in ``trainer.callbacks`` (README, "What a run leaves behind"). The one
    "top-1" file is named ``last`` rather than switched off (``save_top_k=0``): Lightning 2.6 writes
    its ``save_last`` file at validation only in a step that saved a top-k one.
    """
    return ModelCheckpoint(dirpath=str(directory), filename="last", save_top_k=1, enable_version_counter=False)


def samples_seen(trainer: Trainer) -> tuple[int, int] | None:
    """``(epoch, samples seen over all processes)`` from the training sampler's own progress,
    or ``None`` when the loader is not a :class:`~thinkspace.data.sampler.EpochSampler`'s."""
    loader = trainer.train_dataloader
    sampler = getattr(loader, "sampler", None)
    if getattr(sampler, "progress", None) is None:
        return None
    epoch, batches = sampler.progress()
    per_rank = len(sampler)
    in_epoch = min(batches * sampler.batch_size, per_rank)
    return epoch, (epoch * per_rank + in_epoch) * sampler.world_size


class SeedPerBatch(Callback):
    """Seeds torch's global generator before every training batch from (seed, batch count, rank).

    Dropout (LoRA's, the backbone's) draws from the global generator, whose state a checkpoint does
    not hold and whose draws depend on what ran before (loader iterators draw a seed from it when they
    are built). Keyed by the loop's batch count, restored exactly on resume, the masks of a resumed
    run are those of the uninterrupted one. Ranks differ, so each draws its own masks.
    """

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # set by seed_everything (the CLI's seed_everything)
        done = int(trainer.fit_loop.epoch_loop.batch_progress.total.ready)
        torch.manual_seed(mix_seed(seed, done, rank=trainer.global_rank))


class ResumeReport(Callback):
    """Prints one line when ``fit`` resumes: the checkpoint, its step, epoch and samples seen."""

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.ckpt_path or not trainer.is_global_zero:
            return
        seen = samples_seen(trainer)
        where = f"epoch {seen[0]}, {seen[1]} samples seen" if seen else f"epoch {trainer.current_epoch}"
        print(f"Resumed from {trainer.ckpt_path}: step {trainer.global_step}, {where}", file=sys.stderr, flush=True)


def report_missing_last(ckpt_path: Any, checkpoints: list[Path]) -> None:
    """``--ckpt_path last`` with no ``last.ckpt`` yet: say in one line that the run starts from step 0.

    Starting over (rather than refusing) keeps ``--ckpt_path last`` a set-and-forget flag for job
    scripts that rerun one command; the line makes sure it never happens silently. Lightning's own
    warning about it is silenced: it would say the same thing, less plainly, among other warnings.
    """
    if ckpt_path != "last" or any((d / "last.ckpt").exists() for d in checkpoints):
        return
    warnings.filterwarnings("ignore", message=r'.*ckpt_path="last"\) is set, but there is no last checkpoint')
    if rank_zero_only.rank != 0:
        return
    where = ", ".join(dict.fromkeys(map(str, checkpoints))) or "the run directory"
    print(f"--ckpt_path last: no last.ckpt in {where} (the run stopped before its first checkpoint, "
          "or never ran): starting from step 0", file=sys.stderr, flush=True)
