"""Egocentric situation modelling: ``<Pos>`` and ``<Ori>`` tokens predict where the agent
stands and which way it faces."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thinkspace.backbones.outputs import BackboneOutput

from thinkspace.data.batch import Batch
from thinkspace.data.schema import SpatialSample
from thinkspace.training.distributed import mean_over_ranks
from thinkspace.geometry import circular_soft_argmax, gaussian_nll, wrapped_gaussian
from thinkspace.heads.precision import into_head
from thinkspace.accuracy import LocalizationAccuracy
from thinkspace.objectives.base import Objective

POS_TOKEN, ORI_TOKEN = "<Pos>", "<Ori>"


def _mlp(width: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, out))


class Situation(Objective):
    """Position (Gaussian NLL) and yaw (36-bin wrapped-Gaussian KL) from two added tokens.

    The prompt becomes ``"{situation text} <Pos><Ori>\\n{question}"``, the paper's order
    (video, situation, ``<Pos>``, ``<Ori>``, question), with the situation text once: a
    dataset whose prompt already starts with it (SQA3D, the synthetic world) gets the
    tokens right after it; otherwise the text is put in front. A sample with no situation
    gets the pseudo-situation text and no situation loss in training; when it is only
    answered (``thinkspace test``/``predict``) it keeps the dataset's prompt unchanged, no
    text and no tokens, unless ``pseudo_situation_at_eval`` (:meth:`prepare_for_answer`;
    docs/parity.md: the paper does not say). Position: a
    2-layer MLP on the ``<Pos>`` state predicts ``(x, y, log_var_x, log_var_y)`` in the
    world frame (metres). Orientation: a 2-layer MLP on the ``<Ori>`` state predicts
    logits over ``num_bins`` yaw bins tiling ``[-pi, pi)``; the target is a Gaussian of
    ``sigma_bins`` bins over the wrapped distance to each bin centre; the loss is
    ``KL(target || softmax)``; the predicted yaw is the circular soft-argmax.
    Terms: ``position`` (factor 1) and ``orientation`` (factor ``orientation_weight``);
    Loc3R-VLM uses weight 0.075 and orientation_weight 3.5.

    Args:
        weight: weight of the whole situation loss.
        orientation_weight: factor on the orientation term inside it.
        num_bins: yaw bins.
        sigma_bins: standard deviation of the soft target, in bins.
        pseudo_situation: text used when a sample has no situation.
        pseudo_situation_at_eval: also put ``"{pseudo_situation} <Pos><Ori>\n"`` before the
            questions without a situation that are only answered (test, predict); False keeps
            a benchmark's official prompt (VSI-Bench's) and predicts no situation for them.
    """

    def __init__(
        self,
        weight: float = 1.0,
        orientation_weight: float = 3.5,
        num_bins: int = 36,
        sigma_bins: float = 2.0,
        pseudo_situation: str = "I am standing in the room.",
        pseudo_situation_at_eval: bool = False,
    ) -> None:
        super().__init__(weight)
        self.terms = {"position": 1.0, "orientation": float(orientation_weight)}
        self.num_bins = num_bins
        self.sigma_bins = sigma_bins
        self.pseudo_situation = pseudo_situation
        self.pseudo_situation_at_eval = bool(pseudo_situation_at_eval)
        self.metrics = nn.ModuleDict({
            "acc_50cm": LocalizationAccuracy("position", 0.5),
            "acc_1m": LocalizationAccuracy("position", 1.0),
            "acc_15deg": LocalizationAccuracy("yaw", 15.0),
            "acc_30deg": LocalizationAccuracy("yaw", 30.0),
        })

    def setup(self, backbone: Any) -> None:
        self.pos_id, self.ori_id = backbone.add_tokens([POS_TOKEN, ORI_TOKEN])
        width = backbone.hidden_size
        self.position_head = _mlp(width, 4)
        self.orientation_head = _mlp(width, self.num_bins)

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        text = (sample.situation.text if sample.situation is not None else self.pseudo_situation).strip()
        question = sample.prompt
        if text and question.startswith(text):  # the dataset put the situation in already: keep it once
            question = question[len(text):].lstrip(" \n")
        return replace(sample, prompt=f"{text} {POS_TOKEN}{ORI_TOKEN}\n{question}")

    def prepare_for_answer(self, sample: SpatialSample) -> SpatialSample:
        """As :meth:`prepare`, except that a sample without a situation keeps its prompt as the
        dataset wrote it (no pseudo situation, no ``<Pos><Ori>``) unless ``pseudo_situation_at_eval``."""
        if sample.situation is None and not self.pseudo_situation_at_eval:
            return sample
        return self.prepare(sample)

    def locates(self, batch: Batch) -> list[bool]:
        """Per sample, whether its prompt holds ``<Pos>`` and ``<Ori>`` (a situation to predict)."""
        ids = batch.inputs["input_ids"]
        return ((ids == self.pos_id).any(-1) & (ids == self.ori_id).any(-1)).tolist()

    def targets(self, sample: SpatialSample) -> Tensor:
        """``[4]``: x, y (metres), yaw (radians), 1 if the sample has a situation else 0."""
        s = sample.situation
        if s is None:
            return torch.zeros(4)
        return torch.tensor([s.position[0], s.position[1], s.yaw, 1.0])

    def states(self, out: BackboneOutput, batch: Batch, rows: list[int] | None = None) -> tuple[Tensor, Tensor]:
        """Hidden states ``([B, D], [B, D])`` at each sample's ``<Pos>`` and ``<Ori>`` token (of the
        samples ``rows`` only, when given)."""
        ids = batch.inputs["input_ids"]
        hidden = out.hidden
        if rows is not None:
            index = torch.tensor(rows, device=ids.device)
            ids, hidden = ids[index], hidden[index]
        hits = torch.stack([ids == self.pos_id, ids == self.ori_id])  # [2, B, L]
        counts = hits.sum(-1)  # [2, B]
        if bool((counts != 1).any()):  # the step's one host read here (the check needs it)
            names = batch.ids if rows is None else [batch.ids[i] for i in rows]
            for (token, name), row in zip(((self.pos_id, POS_TOKEN), (self.ori_id, ORI_TOKEN)), counts.tolist()):
                bad = [i for i, n in enumerate(row) if n != 1]
                if bad:
                    raise ValueError(f"samples {[names[i] for i in bad]} need exactly one {name} token each")
        cols = hits.int().argmax(-1)  # [2, B] the one position per row
        index = torch.arange(len(ids), device=ids.device)
        return hidden[index, cols[0]], hidden[index, cols[1]]

    def predict(self, out: BackboneOutput, batch: Batch, rows: list[int] | None = None) -> dict[str, Tensor]:
        """``xy [B, 2]``, ``log_var [B, 2]``, ``yaw_logits [B, K]`` and ``yaw [B]`` radians (of the
        samples ``rows`` only, when given)."""
        pos, ori = self.states(out, batch, rows)
        raw = self.position_head(into_head(pos, self.position_head)).float()
        logits = self.orientation_head(into_head(ori, self.orientation_head)).float()
        return {"xy": raw[:, :2], "log_var": raw[:, 2:], "yaw_logits": logits,
                "yaw": circular_soft_argmax(logits.softmax(-1))}

    def locate(self, out: BackboneOutput, batch: Batch) -> list[tuple[float, float, float] | None]:
        """Per sample the predicted world ``(x, y, yaw)``: metres and the facing direction in radians;
        ``None`` for a sample answered without ``<Pos><Ori>`` (:meth:`prepare_for_answer`)."""
        asks = self.locates(batch)
        rows = [i for i, a in enumerate(asks) if a]
        if not rows:
            return [None] * len(asks)
        pred = self.predict(out, batch, None if len(rows) == len(asks) else rows)
        located = iter(torch.cat([pred["xy"], pred["yaw"][:, None]], dim=1).detach().cpu().tolist())
        return [tuple(float(v) for v in next(located)) if a else None for a in asks]

    def loss(self, out: BackboneOutput, batch: Batch) -> dict[str, Tensor]:
        target = batch.targets[self.name]
        pred = self.predict(out, batch)
        has = target[:, 3] > 0.5
        # masked over every sample, not indexed by ``has``: a boolean index is a host sync per use
        position = torch.where(has, gaussian_nll(pred["xy"], pred["log_var"], target[:, :2].float()), 0.0).sum()
        soft = wrapped_gaussian(target[:, 2].float(), self.num_bins, self.sigma_bins)
        log_probs = F.log_softmax(pred["yaw_logits"], dim=-1)
        kl = F.kl_div(log_probs, soft, reduction="none").sum(-1)  # [B] KL per sample
        orientation = torch.where(has, kl, 0.0).sum()
        # means over the samples that have a situation, across all ranks
        return {"position": mean_over_ranks(position, has.sum()),
                "orientation": mean_over_ranks(orientation, has.sum())}

    def evaluate(self, out: BackboneOutput, batch: Batch) -> dict[str, Any]:
        """Update and return the localization metrics: acc_50cm, acc_1m, acc_15deg, acc_30deg."""
        target = batch.targets[self.name]
        has = target[:, 3] > 0.5
        if has.any():
            pred = self.predict(out, batch)
            for metric in self.metrics.values():
                metric.update(pred["xy"][has], pred["yaw"][has], target[has, :2], target[has, 2])
        return dict(self.metrics.items())
