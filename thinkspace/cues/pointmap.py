"""Point-map / depth cue: each visual token's 3D position (or depth), encoded and added
to its input embedding, as additive-fusion methods feed geometry to a VLM."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thinkspace.cues.base import Cue
from thinkspace.data.batch import Batch
from thinkspace.data.schema import SpatialSample
from thinkspace.data.token_geometry import token_geometry
from thinkspace.heads.precision import into_head
from thinkspace.teachers.base import GeometryTeacher
from thinkspace.teachers.cache import FeatureCache
from thinkspace.teachers.fourier import fourier_encode
from thinkspace.utils.choices import check_choice

Quantity = Literal["points", "depth"]  # world points or depth per visual token


class PointMapCue(Cue):
    """Adds ``MLP(encoding of the token's geometry)`` to every visual token's embedding.

    From ground truth (no ``teacher``): the token's mean world point ``(x, y, z)``
    (``quantity="points"``) or its mean depth (``"depth"``), in metres, Fourier-encoded
    (``bands`` bands over ``[-extent, extent)``); tokens with no valid depth are left
    unchanged. From a ``teacher``: its patch tokens of the group's first frame, resampled
    (area average) to the backbone's token grid; every token gets one. Text tokens are
    never touched.

    Args:
        quantity: ``"points"`` (world x, y, z) or ``"depth"`` (distance along the camera z axis).
        teacher: where the geometry comes from instead of ground truth (e.g. the oracle,
            or VGGT through ``cache``).
        cache: the teacher's feature cache directory (``thinkspace cache-teacher``).
        bands: Fourier bands per coordinate (ground truth only).
        extent: coordinates must lie in ``[-extent, extent)`` metres (ground truth only).
    """

    def __init__(
        self,
        quantity: Quantity = "points",
        teacher: GeometryTeacher | None = None,
        cache: str | None = None,
        bands: int = 6,
        extent: float = 16.0,
    ) -> None:
        super().__init__()
        check_choice("PointMapCue.quantity", quantity, Quantity)
        if teacher is None and cache is not None:
            raise ValueError("PointMapCue: a cache needs the teacher that wrote it (init_args.teacher)")
        if teacher is not None and cache is None and not getattr(teacher, "runs_in_workers", True):
            raise ValueError(f"PointMapCue: teacher {type(teacher).__name__} cannot run in the data workers; give "
                             "its feature cache (cue init_args.cache, written by `thinkspace cache-teacher`)")
        if bands < 1 or extent <= 0:
            raise ValueError(f"PointMapCue: bands must be >= 1 and extent > 0, got {bands}, {extent}")
        self.quantity = quantity
        self.teacher = teacher
        self.cache_dir = cache
        self.bands = bands
        self.extent = float(extent)
        self._cache: FeatureCache | None = None

    @property
    def in_channels(self) -> int:
        """Width of the encoding fed to the MLP."""
        if self.teacher is not None:
            return self.teacher.channels
        return (3 if self.quantity == "points" else 1) * 2 * self.bands

    def setup(self, backbone: Any) -> None:
        width = backbone.hidden_size
        self.mlp = nn.Sequential(nn.Linear(self.in_channels, width), nn.GELU(), nn.Linear(width, width))

    def grid_targets(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """``(features [N, in_channels], valid [N] bool)`` for the sample's N visual tokens."""
        if self.teacher is not None:
            return self._teacher_tokens(sample, grids)
        points, depth, valid = token_geometry(
            sample, grids, "the point-map cue from ground truth needs geometry.depth (or give the cue a teacher)")
        value = points if self.quantity == "points" else depth[:, None]
        features = fourier_encode(value, self.extent, self.bands).flatten(1)
        return features * valid[:, None], valid

    def _teacher_tokens(self, sample: SpatialSample, grids: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        if self.cache_dir is None:
            features = self.teacher.encode(sample)
        else:
            if self._cache is None:
                self._cache = FeatureCache(self.cache_dir, self.teacher.signature())
            features = self._cache.load(sample)
        if features.patch.shape[1] == 0:
            raise ValueError(f"PointMapCue: the teacher features of sample {sample.id!r} hold no patch tokens (a "
                             "camera-only cache?); fill the cache with patch tokens (cache-teacher without --parts "
                             "camera)")
        rows_t, cols_t = features.grid
        patch = features.patch.float().reshape(-1, rows_t, cols_t, features.patch.shape[-1])
        per_group = math.ceil(sample.num_frames / len(grids))
        out = []
        for group, (rows, cols) in enumerate(grids):
            grid = patch[group * per_group].permute(2, 0, 1)[None]  # [1, C, rows_t, cols_t]
            out.append(F.adaptive_avg_pool2d(grid, (rows, cols))[0].flatten(1).T)  # [rows * cols, C]
        tokens = torch.cat(out)
        return tokens, torch.ones(tokens.shape[0], dtype=torch.bool)

    def collate(self, targets: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        return {"features": torch.cat([t[0] for t in targets]), "valid": torch.cat([t[1] for t in targets])}

    def edit_embeds(self, embeds: Tensor, batch: Batch) -> Tensor:
        target = batch.targets[self.name]
        visual = batch.visual
        if target["features"].shape[0] != len(visual):
            raise ValueError(f"PointMapCue: {target['features'].shape[0]} token encodings for {len(visual)} visual "
                             f"tokens (samples {batch.ids})")
        added = self.mlp(into_head(target["features"], self.mlp)) * target["valid"][:, None]
        added = added.to(embeds.dtype)
        embeds = embeds.clone()
        embeds[visual.sample, visual.position] = embeds[visual.sample, visual.position] + added
        return embeds
