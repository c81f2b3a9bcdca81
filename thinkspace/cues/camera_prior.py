"""Camera-pose prior: one teacher camera token per frame, as one input embedding."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from thinkspace.cues.base import Cue
from thinkspace.data.batch import Batch
from thinkspace.data.schema import FRAME_PREFIX, SpatialSample
from thinkspace.heads.precision import into_head
from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures
from thinkspace.teachers.cache import FeatureCache

CAMERA_TOKEN = "<|camera|>"


class CameraPrior(Cue):
    """Loc3R-VLM's camera prior: teacher camera token -> 2-layer MLP -> one embedding
    placed right before each frame's visual tokens.

    A placeholder token ``<|camera|>`` is written before every frame in the prompt; for a
    LLaVA-OneVision video, before each frame's pooled tokens inside the video block; for a
    Qwen2/2.5-VL video, which must stay one contiguous block for its 3D RoPE, the
    placeholders of all its temporal groups stand together right before the block, in
    group order. Its embedding is replaced by ``MLP(camera token)``. For a temporal
    group of several sampled frames the camera token of the group's first frame is used.

    Args:
        teacher: gives ``[S, C]`` camera tokens per sample (the oracle encodes the
            ground-truth pose; VGGT's camera token is 2048-d, as the paper's CUT3R one is
            swapped for). Without a cache it runs in the data workers, so it must be
            cheap there (``runs_in_workers``).
        cache: directory of the teacher's feature cache (``thinkspace cache-teacher``),
            read in the workers instead of running the teacher; its signature must
            match the teacher's.
    """

    def __init__(self, teacher: GeometryTeacher, cache: str | None = None) -> None:
        super().__init__()
        if cache is None and not getattr(teacher, "runs_in_workers", True):
            raise ValueError(f"CameraPrior: teacher {type(teacher).__name__} cannot run in the data workers; "
                             "give its feature cache (cue init_args.cache, written by `thinkspace cache-teacher`) "
                             "or use the oracle teacher")
        self.teacher = teacher
        self.cache_dir = cache
        self._cache: FeatureCache | None = None  # opened on first use, in each worker

    def setup(self, backbone: Any) -> None:
        (self.token_id,) = backbone.add_tokens([CAMERA_TOKEN])
        width = backbone.hidden_size
        self.mlp = nn.Sequential(nn.Linear(self.teacher.channels, width), nn.GELU(), nn.Linear(width, width))

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        return replace(sample, meta={**sample.meta, FRAME_PREFIX: CAMERA_TOKEN})

    def grid_targets(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> Tensor:
        """``[G, C]``: the camera token of the first frame of each of the G frame groups."""
        camera = self.features(sample).camera.float()
        per_group = math.ceil(sample.num_frames / len(grids))
        return camera[::per_group][: len(grids)]

    def features(self, sample: SpatialSample) -> TeacherFeatures:
        """The teacher's features of ``sample``: from the cache when there is one."""
        if self.cache_dir is None:
            return self.teacher.encode(sample)
        if self._cache is None:
            self._cache = FeatureCache(self.cache_dir, self.teacher.signature())
        return self._cache.load(sample)

    def collate(self, targets: list[Tensor]) -> Tensor:
        return torch.cat(targets)

    def edit_embeds(self, embeds: Tensor, batch: Batch) -> Tensor:
        rows, cols = (batch.inputs["input_ids"] == self.token_id).nonzero(as_tuple=True)
        cameras = batch.targets[self.name]
        if rows.numel() != cameras.shape[0]:
            raise ValueError(
                f"CameraPrior: {rows.numel()} {CAMERA_TOKEN} tokens in the batch but {cameras.shape[0]} camera tokens "
                f"(samples {batch.ids})"
            )
        embeds = embeds.clone()
        embeds[rows, cols] = self.mlp(into_head(cameras, self.mlp)).to(embeds.dtype)
        return embeds
