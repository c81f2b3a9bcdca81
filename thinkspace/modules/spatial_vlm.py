"""``SpatialVLM``: one LightningModule for supervised spatial training (any objective stack)."""

from __future__ import annotations

import re
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import Metric

from thinkspace.backbones.base import VLMBackbone
from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.data.batch import Batch
from thinkspace.cues.base import Cue
from thinkspace.metrics import ChoiceAccuracy
from thinkspace.mixers import LossMixer, WeightedSum
from thinkspace.objectives.base import Objective
from thinkspace.objectives.text import TextCrossEntropy
from thinkspace.optim import WarmupSchedule
from thinkspace.weight_decay import decay_groups


def _adamw(params: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-4)


class SpatialVLM(L.LightningModule):
    """A VLM backbone trained by a named stack of objectives mixed into one loss.

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
        generation: arguments for :meth:`VLMBackbone.generate` in validation, test
            and predict (e.g. ``{max_new_tokens: 4}``); ``None`` skips generation in
            validation (losses only).
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
    ) -> None:
        super().__init__()
        self.backbone = backbone
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
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.max_length = max_length
        self.no_weight_decay = no_weight_decay
        self.generation = generation
        self.val_accuracy = ChoiceAccuracy()
        self.test_accuracy = ChoiceAccuracy()
        freeze_parameters(self, freeze or [])
        if gradient_checkpointing:
            backbone.enable_gradient_checkpointing()

    def collator(self, with_response: bool = True) -> Any:
        """The batch builder the data module uses (runs in data workers)."""
        return self.backbone.collator({**self.objectives, **self.cues}, self.max_length, with_response)

    def embeds_hook(self) -> Any:
        """The inputs-embeds hook applying every cue in order, or None without cues."""
        if not self.cues:
            return None

        def apply(embeds: Tensor, batch: Batch) -> Tensor:
            for cue in self.cues.values():
                embeds = cue.edit_embeds(embeds, batch)
            return embeds

        return apply

    def losses(self, batch: Batch, out: BackboneOutput | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and every named term (unweighted) of one batch."""
        out = self.backbone(batch, self.embeds_hook()) if out is None else out
        terms = {
            f"{name}.{term}": value
            for name, objective in self.objectives.items()
            if objective.enabled
            for term, value in objective.loss(out, batch).items()
        }
        total, extra = self.mixer(terms, self.global_step)
        return total, {**terms, **extra}

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        total, logs = self.losses(batch)
        self.log("train/loss", total, prog_bar=True, batch_size=len(batch))
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=len(batch))
        return total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.backbone(batch, self.embeds_hook())
        total, logs = self.losses(batch, out)
        self._log_objective_metrics(out, batch)
        self.log("val/loss", total, prog_bar=True, batch_size=len(batch), sync_dist=True)
        self.log_dict({f"val/{k}": v for k, v in logs.items() if "/" not in k}, batch_size=len(batch),
                      sync_dist=True)
        if self.generation is not None:
            self._log_accuracy(batch, self.val_accuracy, "val/accuracy")

    def _log_objective_metrics(self, out: BackboneOutput, batch: Batch) -> None:
        """Log what objectives with an ``evaluate`` method measure (e.g. localization)."""
        for name, objective in self.objectives.items():
            evaluate = getattr(objective, "evaluate", None)
            if evaluate is None or not objective.enabled:
                continue
            for key, value in evaluate(out, batch).items():
                # torchmetrics sync themselves; plain tensors are averaged over ranks here
                self.log(f"val/{name}.{key}", value, batch_size=len(batch), sync_dist=not isinstance(value, Metric))

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, list[Any]]:
        """Generate for every sample; log choice accuracy; return ids and texts (and, with a
        situation objective, ``situations``) for callbacks (e.g.
        :class:`thinkspace.eval.predictions.BenchmarkPredictions`)."""
        texts = self.generate(batch)
        self._log_accuracy(batch, self.test_accuracy, "test/accuracy", texts)
        outputs: dict[str, list[Any]] = {"ids": list(batch.ids), "predictions": list(texts)}
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

    def locate(self, batch: Batch) -> list[tuple[float, float, float]] | None:
        """Each sample's predicted situation, world ``(x, y, yaw)`` in metres and radians (the
        direction faced), from the first enabled objective that has ``locate``; None without one."""
        objective = next((o for o in self.objectives.values() if o.enabled and hasattr(o, "locate")), None)
        if objective is None:
            return None
        return objective.locate(self.backbone(batch, self.embeds_hook()), batch)

    def generate(self, batch: Batch) -> list[str]:
        """Continuations of the batch's prompts with ``self.generation``; an objective
        with its own ``generate`` (e.g. latent decoding) decides how."""
        for objective in self.objectives.values():
            if hasattr(objective, "generate"):
                return objective.generate(self.backbone, batch, inputs_embeds_hook=self.embeds_hook(),
                                          **(self.generation or {}))
        return self.backbone.generate(batch, self.embeds_hook(), **(self.generation or {}))

    def _log_accuracy(self, batch: Batch, metric: ChoiceAccuracy, name: str, texts: list[str] | None = None) -> None:
        choice = [i for i, kind in enumerate(batch.answer_types) if kind == "choice"]
        if not choice:
            return
        if texts is None:
            texts = self.generate(batch)
        metric.update([texts[i] for i in choice], [batch.answers[i] for i in choice])
        self.log(name, metric, prog_bar=True, batch_size=len(choice))

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(decay_groups(self, self.no_weight_decay))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if isinstance(scheduler, WarmupSchedule) and scheduler.total_steps is None:
            scheduler.total_steps = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


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
