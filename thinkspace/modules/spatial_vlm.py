"""``SpatialVLM``: one LightningModule for supervised spatial training (any objective stack)."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import Metric

from thinkspace.accuracy import ChoiceAccuracy
from thinkspace.backbones.base import VLMBackbone
from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.cues.base import Cue
from thinkspace.data.batch import Batch
from thinkspace.generation.rank_agreement import any_rank_needs
from thinkspace.mixers import LossMixer, WeightedSum
from thinkspace.modules.base import SpatialModule
from thinkspace.objectives.answer_only import AnswerOnly
from thinkspace.objectives.base import Objective
from thinkspace.objectives.text import TextCrossEntropy

__all__ = ["SpatialVLM"]


def _adamw(params: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-4)


class SpatialVLM(SpatialModule):
    """A VLM backbone trained by a named stack of objectives mixed into one loss.

    Shared with GRPO (:class:`~thinkspace.modules.base.SpatialModule`): cues, freezing, the
    optimizer, ``generate``, ``locate``, ``test_step`` and ``predict_step``.

    Args:
        backbone: the vision-language model (e.g. :class:`thinkspace.backbones.QwenVL`).
        objectives: objectives by name; ``None`` entries are dropped, so
            ``--model.objectives.layout null`` switches one off. Default: text only.
        mixer: combines the named loss terms (default: :class:`WeightedSum`).
        cues: input-side geometric cues by name (e.g. a camera-pose prior); ``None``
            entries are dropped. Names must differ from the objectives' names.
        optimizer: optimizer factory over the trainable parameters (default AdamW, lr 1e-4).
        scheduler: learning-rate scheduler factory, stepped every optimizer step.
        freeze: regular expressions; parameters whose name matches any are frozen
            (e.g. ``"\\.visual\\."`` for the vision tower). A pattern that matches
            nothing is an error, so typos do not silently train everything.
        gradient_checkpointing: recompute activations in the backward pass.
        no_weight_decay: regular expressions on lower-cased parameter names exempt from weight
            decay (with ``nn.LayerNorm`` parameters), as the Hugging Face Trainer's
            ``["bias", "layernorm", "rmsnorm"]``; ``None``: decay every trainable parameter.
        max_length: longest sample in tokens; longer samples fail with their id.
        generation: decoding settings for validation, test and predict (e.g. ``{max_new_tokens: 4,
            do_sample: false}``), the options of :func:`~thinkspace.generation.decode.decode`, the one
            decoding GRPO's rollouts use too (``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``,
            ``top_k``, ``repetition_penalty``, ``eos_token_id``, the latent slot's ``force_start``, ``latent_steps``,
            ``early_end``, ``decode_step``); ``sampler: transformers`` decodes with transformers'
            ``generate`` instead (its options; no latent slot). ``None`` skips generation in validation
            (losses only). Prompts decode as a batch (``data.eval_batch_size``), left-padded, each row's
            tokens those of its prompt alone (greedy; ``tests/test_batched_decoding.py``).
        val_generation: what validation (fit's and ``thinkspace validate``) changes in ``generation``, e.g.
            ``{max_new_tokens: 1024}``: a cheaper decode for model selection while ``test`` keeps the full
            budget (docs/benchmarks_data.md, "Batched evaluation"). Needs ``generation``.
        master_weights: fitting under ``bf16-mixed``, train float32 copies of bf16 trainable
            weights (default); False trains them in their loaded dtype, pure bf16 as 3DThinker's
            released stage 1 (:mod:`thinkspace.training.master_weights`).
    """

    def __init__(
        self,
        backbone: VLMBackbone,
        objectives: dict[str, Objective | None] | None = None,
        mixer: LossMixer | None = None,
        cues: dict[str, Cue | None] | None = None,
        optimizer: OptimizerCallable = _adamw,
        scheduler: LRSchedulerCallable | None = None,
        freeze: list[str] | None = None,
        gradient_checkpointing: bool = False,
        no_weight_decay: list[str] | None = None,
        max_length: int | None = None,
        generation: dict[str, Any] | None = None,
        master_weights: bool = True,
        val_generation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(backbone, optimizer, scheduler, no_weight_decay)
        if objectives is None:
            objectives = {"text": TextCrossEntropy()}
        self.objectives = nn.ModuleDict({k: v for k, v in objectives.items() if v is not None})
        if not self.objectives:
            raise ValueError("model.objectives: every objective is null; keep at least one")
        self.cues = nn.ModuleDict({k: v for k, v in (cues or {}).items() if v is not None})
        clash = sorted(set(self.cues) & set(self.objectives))
        if clash:
            raise ValueError(f"model.cues and model.objectives share the name(s) {clash}; rename one")
        for name, component in [*self.objectives.items(), *self.cues.items()]:
            component.name = name
            component.setup(backbone)
        self.mixer = mixer if mixer is not None else WeightedSum()
        self.mixer.setup({k: v for o in self.objectives.values() for k, v in o.default_weights().items()})
        self.max_length = max_length
        if val_generation and generation is None:
            raise ValueError("model.val_generation is set but model.generation is null: validation decodes only "
                             "with model.generation (e.g. generation: {max_new_tokens: 2048}); set it or drop "
                             "val_generation")
        self.generation = generation
        self.val_generation = dict(val_generation or {})
        self.master_weights = master_weights
        self.val_accuracy = ChoiceAccuracy()
        self.test_accuracy = ChoiceAccuracy()
        self.finish_init(freeze, gradient_checkpointing)

    def collator(self, with_response: bool = True, evaluation: bool = False) -> Any:
        """The batch builder the data module uses (runs in data workers). ``evaluation`` (the test and
        predict loaders): objectives edit prompts only, as ``prepare_for_answer`` says, and compute no
        targets (:class:`~thinkspace.objectives.answer_only.AnswerOnly`); cues are unchanged."""
        objectives: dict[str, Any] = dict(self.objectives)
        if evaluation:
            objectives = {name: AnswerOnly(o) for name, o in objectives.items()}
        return self.backbone.collator({**objectives, **self.cues}, self.max_length, with_response)

    def generation_settings(self) -> dict[str, Any]:
        """``generation`` (empty when ``None``)."""
        return dict(self.generation or {})

    def losses(self, batch: Batch, out: BackboneOutput | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and every named term (unweighted) of one batch."""
        out = self.backbone(batch, self.embeds_hook()) if out is None else out
        return self.mix({f"{name}.{term}": value for name, objective in self.objectives.items() if objective.enabled
                         for term, value in objective.loss(out, batch).items()})

    def mix(self, terms: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The mixer's total of named terms, and the terms with the mixer's extra logs."""
        total, extra = self.mixer(terms, self.global_step)
        return total, {**terms, **extra}

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        total, logs = self.losses(batch)
        self.log("train/loss", total, prog_bar=True, batch_size=len(batch))
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=len(batch))
        return total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Loss terms and each objective's metrics from one forward (:meth:`Objective.validate`:
        e.g. the latent objective runs its teacher once for both)."""
        out = self.backbone(batch, self.embeds_hook())
        terms, metrics = {}, {}
        for name, objective in self.objectives.items():
            if objective.enabled:
                loss, measured = objective.validate(out, batch)
                terms.update({f"{name}.{term}": value for term, value in loss.items()})
                metrics.update({f"{name}.{key}": value for key, value in measured.items()})
        total, logs = self.mix(terms)
        for key, value in metrics.items():
            # torchmetrics sync themselves; plain tensors are averaged over ranks here
            self.log(f"val/{key}", value, batch_size=len(batch), sync_dist=not isinstance(value, Metric))
        self.log("val/loss", total, prog_bar=True, batch_size=len(batch), sync_dist=True)
        self.log_dict({f"val/{k}": v for k, v in logs.items() if "/" not in k}, batch_size=len(batch),
                      sync_dist=True)
        if self.generation is not None:
            self._log_accuracy(batch, self.val_accuracy, "val/accuracy", overrides=self.val_generation)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, list[Any]]:
        """As :meth:`SpatialModule.test_step`, logging ``test/accuracy`` on choice questions."""
        outputs = super().test_step(batch, batch_idx)
        self._log_accuracy(batch, self.test_accuracy, "test/accuracy", outputs["predictions"])
        return outputs

    def _log_accuracy(self, batch: Batch, metric: ChoiceAccuracy, name: str, texts: list[str] | None = None,
                      overrides: dict[str, Any] | None = None) -> None:
        choice = [i for i, kind in enumerate(batch.answer_types) if kind == "choice"]
        # sharded: every decoding step is a collective, so every rank decodes when any rank has a choice
        # question, and none when no rank has one
        if texts is None and any_rank_needs(bool(choice), self.backbone):
            texts = self.generate(batch, **(overrides or {}))
        if not choice:
            return
        metric.update([texts[i] for i in choice], [batch.answers[i] for i in choice])
        self.log(name, metric, prog_bar=True, batch_size=len(choice))
