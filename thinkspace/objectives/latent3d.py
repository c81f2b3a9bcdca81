"""``LatentAlignment``: 3D latent imagery aligned to a geometry teacher (3DThinker, stage 1).

The response carries a latent slot (see :mod:`thinkspace.objectives.latent_slot` for
the convention). The k latents and each view's visual tokens go through a projector
(:mod:`thinkspace.heads.projector`) to that view's teacher tokens ``[P, C]``
(camera, registers, patches), and a loss pulls them to the teacher's features.

Teacher features come from a feature cache (``cache``), from the teacher in the data
workers (cheap teachers such as :class:`~thinkspace.teachers.OracleGeometryTeacher`), or
from the teacher on the model's device in the training step (VGGT without a cache).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from thinkspace.backbones.capabilities import FIXED_TOKEN_GRID
from thinkspace.backbones.outputs import BackboneOutput
from thinkspace.backbones.released_checkpoint import PROJECTOR_PREFIX, prefixed_tensors
from thinkspace.data.batch import Batch
from thinkspace.data.schema import SpatialSample
from thinkspace.heads.precision import into_head
from thinkspace.heads.projector import (
    LatentProjector,
    PaperProjector,
    View,
    load_released_projector,
)
from thinkspace.objectives.base import Objective
from thinkspace.objectives.latent_slot import LatentSlot, Placement, add_slot_tokens
from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures, check_features
from thinkspace.teachers.oracle import OracleGeometryTeacher
from thinkspace.training.distributed import mean_over_ranks
from thinkspace.utils.choices import check_choice

logger = logging.getLogger(__name__)

AlignmentLoss = Literal["mse", "cosine", "smooth_l1"]
TokenLayout = Literal["thinkspace", "released"]
ProjectorInit = Literal["auto", "checkpoint", "new"]
Reduction = Literal["mean", "token_mean", "sample_sum"]


class LatentAlignment(Objective):
    """Align projected latents to teacher tokens.

    Args:
        teacher: the geometry teacher (default: :class:`OracleGeometryTeacher`).
        weight: weight of the term ``"{name}.align"``.
        k: latent pads in the slot.
        placement: where the slot goes when the response has no marker (``start``, ``end``).
        marker: response text the slot replaces (3DThinker's CoT data: ``<output_3D>``).
        require_marker: a response without the marker is an error naming the sample.
        loss: ``mse`` (3DThinker), ``cosine`` (1 - cosine along channels per token) or
            ``smooth_l1``: the per-element (per-token for cosine) error.
        reduction: how the errors of a batch become one number: ``mean`` over every element;
            ``token_mean``: summed over channels, averaged over tokens (every view's and sample's;
            the released code, ``trainer_single.py``); ``sample_sum``: summed over each sample's
            views, tokens and channels (the squared Frobenius norm the paper writes), averaged
            over samples.
        projector: ``attention`` (size-free, default) or ``paper`` (3DThinker's fixed
            token-axis MLPs; needs ``paper_view_size``).
        projector_width: internal width of the ``attention`` projector.
        paper_view_size: ``[width, height]`` in pixels (PIL's order, as the data adapters'
            ``image_size``) of every view for the ``paper`` projector; 3DThinker: ``[480, 640]``
            (portrait). Its token counts come from the backbone's processor and the teacher.
        visual: which view tokens the projector fuses: ``input`` (the decoder's input
            embeddings at visual positions, as 3DThinker) or ``hidden`` (last layer).
        cache: directory of a teacher feature cache (``thinkspace cache-teacher``).
        decoding: latent steps at generation: ``feedback`` (hidden state fed back as the
            next input embedding, the paper's inference) or ``tokens`` (pad tokens).
        token_layout: ``thinkspace`` adds start, pad, end and keeps a padded vocabulary's rows
            (Qwen2.5-VL: ids 151665-151667, 151,936 rows); ``released`` adds pad, start, end (ids 151665,
            151666, 151667) and resizes the tied vocabulary to the tokenizer's length (151,668), as
            3DThinker's stage 1 and its released checkpoints.
        projector_init: ``auto`` loads a released 3DThinker checkpoint's projector (its ``projector_model.*``
            tensors in the backbone directory's safetensors) into the ``paper`` projector when the directory
            holds one; ``checkpoint`` requires it (an error names what is missing); ``new`` never loads it.
    """

    terms = {"align": 1.0}

    def __init__(
        self,
        teacher: GeometryTeacher | None = None,
        weight: float = 1.0,
        k: int = 12,
        placement: Placement = "start",
        marker: str | None = "<output_3D>",
        require_marker: bool = False,
        loss: AlignmentLoss = "mse",
        reduction: Reduction = "mean",
        projector: Literal["attention", "paper"] = "attention",
        projector_width: int = 256,
        paper_view_size: tuple[int, int] | None = None,
        visual: Literal["input", "hidden"] = "input",
        cache: str | None = None,
        decoding: Literal["feedback", "tokens"] = "feedback",
        token_layout: TokenLayout = "thinkspace",
        projector_init: ProjectorInit = "auto",
    ) -> None:
        super().__init__(weight)
        check_choice("LatentAlignment.loss", loss, AlignmentLoss)
        check_choice("LatentAlignment.reduction", reduction, Reduction)
        check_choice("LatentAlignment.token_layout", token_layout, TokenLayout)
        check_choice("LatentAlignment.projector_init", projector_init, ProjectorInit)
        self.token_layout, self.projector_init = token_layout, projector_init
        if projector == "paper" and paper_view_size is None:
            raise ValueError("LatentAlignment: projector 'paper' needs paper_view_size: [width, height] "
                             "(3DThinker: [480, 640], the size the data adapter's image_size gives every view)")
        self.teacher = teacher if teacher is not None else OracleGeometryTeacher()
        self.slot = LatentSlot(k=k, placement=placement, marker=marker, require_marker=require_marker)
        self.loss_kind, self.reduction = loss, reduction
        self.projector_kind, self.projector_width = projector, projector_width
        self.paper_view_size = tuple(paper_view_size) if paper_view_size else None
        self.visual, self.cache_dir, self.decoding = visual, cache, decoding
        self._cache = None
        self.projector: torch.nn.Module | None = None

    # -- setup and data workers ------------------------------------------------------

    def setup(self, backbone: Any) -> None:
        self.slot = self.slot.bind(add_slot_tokens(backbone, self.token_layout))
        d, c, special = backbone.hidden_size, self.teacher.channels, 1 + self.teacher.num_register
        if self.projector_kind == "paper":
            w, h = self.paper_view_size
            rows, cols = self.teacher.grid(h, w)
            backbone.require(FIXED_TOKEN_GRID, "LatentAlignment(projector='paper')")
            visual = math.prod(backbone.tokens_per_frame(h, w))  # rows * cols tokens of one view
            self.projector = PaperProjector(d, c, self.slot.k, visual_tokens=visual,
                                            teacher_tokens=special + rows * cols, view_size=(w, h))
        else:
            self.projector = LatentProjector(d, c, self.slot.k, num_special=special, width=self.projector_width)
        self.load_released_projector(backbone)

    def load_released_projector(self, backbone: Any) -> None:
        """``projector_init``: the released checkpoint's projector into the paper projector, or not."""
        if self.projector_init == "new":
            return
        tensors = prefixed_tensors(backbone.path, PROJECTOR_PREFIX)
        where = f"{backbone.path} (LatentAlignment projector_init: {self.projector_init})"
        if not tensors:
            if self.projector_init == "checkpoint":
                raise ValueError(f"{where}: no {PROJECTOR_PREFIX}* tensors in the model directory's safetensors; "
                                 "expected a released 3DThinker checkpoint (its projector saved inside the model); "
                                 "projector_init: new starts a fresh projector")
            return
        if self.projector_kind != "paper":
            if self.projector_init == "checkpoint":
                raise ValueError(f"{where}: the released projector loads into projector: paper only, not "
                                 f"{self.projector_kind!r}")
            logger.info("%s holds a released projector; projector %r starts fresh", backbone.path, self.projector_kind)
            return
        load_released_projector(self.projector, tensors, str(backbone.path))

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        return self.slot.insert(sample)

    def mask_labels(self, input_ids: Tensor, labels: Tensor) -> Tensor:
        return self.slot.mask_labels(input_ids, labels)

    def targets(self, sample: SpatialSample) -> dict[str, Any] | None:
        """``{"features": TeacherFeatures}`` (cache or worker teacher) or ``{"prepared": Tensor}`` (device teacher)."""
        if self.cache_dir is not None:
            return {"features": check_features(self.feature_cache().load(sample), self.teacher, sample)}
        if not self.teacher.runs_in_workers:
            return {"prepared": self.teacher.prepare(sample)}
        if sample.geometry is None and sample.response is None:
            return None  # inference on data without geometry: nothing to align
        return {"features": check_features(self.teacher.encode(sample), self.teacher, sample)}

    def collate(self, targets: list[Any]) -> list[Any]:
        return list(targets)

    def feature_cache(self) -> Any:
        if self._cache is None:
            from thinkspace.teachers.cache import FeatureCache

            self._cache = FeatureCache(self.cache_dir, self.teacher.signature())
        return self._cache

    def __getstate__(self) -> dict[str, Any]:  # workers open their own cache
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_cache"] = None
        return state

    # -- training step ---------------------------------------------------------------

    def teacher_features(self, batch: Batch, allow_missing: bool = False) -> list[TeacherFeatures | None]:
        """Per sample, its teacher features (running a device teacher here if needed).

        ``allow_missing``: ``None`` for a sample without features (no geometry, no cache) instead
        of an error naming it.
        """
        out: list[TeacherFeatures | None] = []
        for sample_id, target in zip(batch.ids, batch.targets.get(self.name) or [None] * len(batch)):
            if target is None:
                if not allow_missing:
                    raise ValueError(f"sample {sample_id!r}: no teacher features (no geometry and no cache)")
                out.append(None)
            elif "prepared" in target:
                with torch.no_grad():
                    out.append(self.teacher.encode_prepared(target["prepared"]))
            else:
                out.append(target["features"])
        return out

    def project(self, out: BackboneOutput, batch: Batch, layout: list[tuple[int, tuple[int, int]]] | None = None,
                latents: Tensor | None = None) -> list[Tensor]:
        """Projected latents ``[S, P, C]`` per sample (camera, registers, patches per view).

        Args:
            out: backbone output on the batch (its sequences hold the latent slot unless
                ``latents`` is given).
            layout: per sample ``(views S, teacher grid (rows, cols))``; default: from the
                teacher features of the batch.
            latents: ``[B, k, D]`` instead of gathering them from ``out.hidden`` (decoding).
        """
        if latents is None:
            latents = self.slot.gather(out.hidden, batch.inputs["input_ids"], batch.ids)
        source = out.inputs_embeds if self.visual == "input" and out.inputs_embeds is not None else out.hidden
        if layout is None:
            layout = [(f.num_views, tuple(f.grid)) for f in self.teacher_features(batch)]
        visual = out.visual
        # the frame index read once per batch (two host reads), not once per sample and view
        grid, frames_per_group = visual.grid.tolist(), visual.frames_per_group.tolist()
        views, counts = [], []
        for b, (num_views, out_grid) in enumerate(layout):
            per_group = frames_per_group[b]
            frames = [row for row in grid if row[0] == b]
            for s in range(num_views):
                g = s // per_group
                if g >= len(frames):
                    raise ValueError(f"sample {batch.ids[b]!r}: teacher features for {num_views} views but the "
                                     f"sequence holds {len(frames)} frames")
                _, _, rows, cols = frames[g]
                tokens = into_head(source[b, visual.positions(b, g)], self.projector)
                views.append(View(sample=b, tokens=tokens, grid=(rows, cols), out_grid=tuple(out_grid)))
            counts.append(num_views)
        projected = self.projector(into_head(latents, self.projector), views)
        result, i = [], 0
        for n in counts:
            result.append(torch.stack(projected[i:i + n]))
            i += n
        return result

    def pair_with_teacher(self, out: BackboneOutput, batch: Batch, latents: Tensor | None = None,
                          features: list[TeacherFeatures] | None = None) -> LatentPairs:
        """The batch's latents beside the teacher: hidden latents -> projector -> teacher tokens,
        the teacher run once (what :meth:`loss`, :meth:`evaluate` and GRPO's latent-3D reward need).

        Args:
            out: backbone output on the batch.
            latents: ``[B, k, D]`` decoded latents instead of the slot's hidden states.
            features: per sample teacher features when the caller has them (default:
                :meth:`teacher_features`, an error for a sample without).
        """
        features = self.teacher_features(batch) if features is None else features
        projected = self.project(out, batch, [(f.num_views, tuple(f.grid)) for f in features], latents)
        teacher = [f.tokens().to(p.device) for p, f in zip(projected, features)]
        for sample_id, p, t in zip(batch.ids, projected, teacher):
            if p.shape != t.shape:
                raise ValueError(f"LatentAlignment: sample {sample_id!r}: projected tokens {tuple(p.shape)} "
                                 f"vs teacher {tuple(t.shape)}")
        return LatentPairs(projected, teacher)

    def loss(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        return {"align": self.align(self.pair_with_teacher(out, batch))}

    def align(self, paired: LatentPairs) -> Tensor:
        """The ``align`` term of paired latents (``loss`` and ``reduction``), averaged over ranks."""
        pairs = [(p.flatten(0, 1).float(), t.flatten(0, 1).float()) for p, t in zip(paired.projected, paired.teacher)]
        if self.reduction == "sample_sum":  # a mean over every rank's samples (see thinkspace.training.distributed)
            value = torch.stack([alignment_loss(p, t, self.loss_kind, "sum") for p, t in pairs]).mean()
            count = len(pairs)
        else:  # a mean over every rank's tokens
            pred, target = torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])
            value, count = alignment_loss(pred, target, self.loss_kind, self.reduction), pred.shape[0]
        return mean_over_ranks(value * count, count)

    @torch.no_grad()
    def evaluate(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        """Validation metric: mean cosine (along channels) between projected and teacher tokens,
        the quantity behind 3DThinker's stage-2 latent reward ``(cos + 1) / 2``."""
        return {"cosine": self.pair_with_teacher(out, batch).cosine()}

    @torch.no_grad()
    def validate(self, out: BackboneOutput, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The ``align`` term and the ``cosine`` metric from one :meth:`pair_with_teacher` (one teacher run)."""
        paired = self.pair_with_teacher(out, batch)
        return {"align": self.align(paired)}, {"cosine": paired.cosine()}

    # -- generation --------------------------------------------------------------------

    @property
    def feeds_back(self) -> bool:
        """Whether latent steps feed the hidden state back as the next input (``decoding: feedback``)."""
        return self.decoding == "feedback"

    def decode(self, backbone: Any, batch: Batch, inputs_embeds_hook: Any = None, **generation: Any) -> Any:
        """Decode with this objective's slot and latent steps; the whole result (texts, latents,
        the prompts' output; see :func:`~thinkspace.generation.decode.decode`, which takes ``generation``)."""
        from thinkspace.generation.decode import decode

        return decode(backbone, batch, self.slot, mode=self.decoding, inputs_embeds_hook=inputs_embeds_hook,
                      **generation)

    def generate(self, backbone: Any, batch: Batch, inputs_embeds_hook: Any = None, **generation: Any) -> list[str]:
        """Decode with latent steps (``decoding`` chooses feedback or tokens; ``generation`` may set
        ``force_start``, ``latent_steps`` and ``early_end``, see
        :func:`~thinkspace.generation.decode.thinkspace_decode`)."""
        return self.decode(backbone, batch, inputs_embeds_hook, **generation).texts


@dataclass
class LatentPairs:
    """Latents beside the teacher, per sample: ``projected`` and ``teacher`` tokens
    ``[S, P, C]`` (views, camera + registers + patches, teacher channels), on one device."""

    projected: list[Tensor]
    teacher: list[Tensor]

    def cosine(self) -> Tensor:
        """Mean cosine along channels over every token of every sample: a scalar in [-1, 1]."""
        pred = torch.cat([p.flatten(0, 1) for p in self.projected]).float()
        target = torch.cat([t.flatten(0, 1) for t in self.teacher]).float()
        return F.cosine_similarity(pred, target, dim=-1).mean()



def alignment_loss(pred: Tensor, target: Tensor, kind: str, reduction: str = "mean") -> Tensor:
    """Loss between token sets ``[T, C]``: ``mse``, ``cosine`` or ``smooth_l1`` errors reduced by
    ``mean`` (every element), ``token_mean`` (sum over channels, mean over tokens) or ``sum`` (all).
    Cosine has one error per token: ``mean`` and ``token_mean`` both average it over tokens."""
    if kind == "cosine":
        err = 1 - F.cosine_similarity(pred, target, dim=-1)  # [T]
        return err.sum() if reduction == "sum" else err.mean()
    err = (pred - target) ** 2 if kind == "mse" else F.smooth_l1_loss(pred, target, reduction="none")
    if reduction == "sum":
        return err.sum()
    return err.sum(-1).mean() if reduction == "token_mean" else err.mean()
