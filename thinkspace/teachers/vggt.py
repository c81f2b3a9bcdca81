"""``VGGTTeacher``: VGGT's last aggregator layer as teacher tokens (3DThinker's teacher).

Wraps the upstream ``vggt`` package (imported on first use; ``pip install
'thinkspace[vggt]'``). Weights load lazily on the first encode, from a local directory or
a Hub id, so a config naming VGGT builds without loading it. Tokens per view: 1 camera
+ 4 register + ``rows x cols`` patch tokens, ``2 x embed_dim`` channels (frame and global
attention outputs concatenated: 2048 for VGGT-1B); 1374 tokens for 518 x 518 frames.

Preprocessing follows ``vggt.utils.load_fn.load_and_preprocess_images``: RGBA blended onto
white, RGB in ``[0, 1]``, PIL bicubic resizing, sizes multiples of 14, and

* ``crop`` (VGGT's default, and 3DThinker's): width ``image_size``, height scaled and rounded
  to a multiple of 14, centre-cropped to ``image_size`` when taller;
* ``pad``: the longer side ``image_size``, the other padded with white to a square;
* ``resize``: a plain resize to ``image_size x image_size`` (not in VGGT's loader, nor used by
  3DThinker; kept for square grids from any frame).

3DThinker's features (``preprocessing/feature/extract_vggt_feature.py``) come from frames first
resized with LANCZOS to 480 x 640 (width x height) and saved as JPEG; the data adapters do that
step (``ThinkerCoT(image_size=[480, 640], resave=True)``), so ``crop`` on their frames gives
exactly the official input: ``[S, 3, 518, 518]`` (686 rows scaled, rows 84..601 kept).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from thinkspace.data.images import image_source, to_rgb
from thinkspace.data.schema import SpatialSample
from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures, frame_size_of
from thinkspace.teachers.precision import tf32_allowed
from thinkspace.utils.choices import check_choice

PATCH = 14


CropMode = Literal["crop", "pad", "resize"]  # how frames become image_size squares (module doc)
WeightDtype = Literal["float32", "bfloat16", "float16"]

class VGGTTeacher(GeometryTeacher):
    """VGGT features, run on the model's device (or read from a cache).

    Args:
        path: local checkpoint directory or Hub id (``facebook/VGGT-1B``).
        image_size: VGGT's input size (518).
        mode: ``crop`` (VGGT's default, 3DThinker's), ``pad`` or ``resize`` (see the module docstring).
        layer: aggregator layer whose output is the target (-1: the last).
        channels: expected width (``2 x embed_dim``); checked when the weights load.
        num_register: register tokens per view (4 in VGGT-1B); checked when the weights
            load. Known before loading because the projector is sized from it.
        device: where to run when encoding outside the training step (``cache-teacher``).
        dtype: ``float32``, or ``bfloat16`` / ``float16``: the pixels cast to it and the aggregator
            run under autocast in it, as 3DThinker's feature script on its GPUs (bf16 on Ampere).
        tf32: allow TF32 in the float32 products on a CUDA device (:mod:`thinkspace.teachers.precision`);
            no effect on a CPU. Part of the signature when on, as it changes CUDA features.
        model: an already built ``vggt.models.vggt.VGGT`` (tests, custom builds).
    """

    runs_in_workers = False

    def __init__(self, path: str = "facebook/VGGT-1B", image_size: int = 518,
                 mode: CropMode = "crop", layer: int = -1, channels: int = 2048,
                 num_register: int = 4, device: str | None = None,
                 dtype: WeightDtype = "float32", tf32: bool = False, model: Any = None) -> None:
        check_choice("VGGTTeacher.mode", mode, CropMode)
        if image_size % PATCH:
            raise ValueError(f"VGGTTeacher.image_size must be a multiple of {PATCH}, got {image_size}")
        self.path, self.image_size, self.mode, self.layer = path, image_size, mode, layer
        check_choice("VGGTTeacher.dtype", dtype, WeightDtype)
        self.channels, self.num_register, self.device, self.dtype = channels, num_register, device, dtype
        self.tf32 = tf32
        self._model = model
        if model is not None:
            self._check(model)

    def __getstate__(self) -> dict[str, Any]:  # never ship the weights to data workers
        return dict(self.__dict__, _model=None)

    def signature(self) -> dict[str, Any]:
        signature = {"teacher": "vggt", "path": self.path, "layer": self.layer, "image_size": self.image_size,
                     "mode": self.mode, "channels": self.channels, "num_register": self.num_register}
        if self.dtype != "float32":  # float32 caches stay valid
            signature |= {"dtype": self.dtype}
        return (signature | {"tf32": True}) if self.tf32 else signature

    # -- sizes and preprocessing ------------------------------------------------------

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` in pixels VGGT sees for a frame of this size."""
        s = self.image_size
        if self.mode == "resize":
            return s, s
        if self.mode == "pad":
            return s, s
        return min(s, round(height * s / width / PATCH) * PATCH), s

    def grid(self, height: int, width: int) -> tuple[int, int]:
        h, w = self.input_size(height, width)
        return h // PATCH, w // PATCH

    def sample_grid(self, sample: SpatialSample) -> tuple[int, int]:
        """Views of different sizes are padded to the largest (see :meth:`prepare`)."""
        sizes = [self.input_size(*frame_size_of(frame)) for frame in sample.frames]
        return max(h for h, _ in sizes) // PATCH, max(w for _, w in sizes) // PATCH

    def prepare(self, sample: SpatialSample) -> Tensor:
        """Frames as VGGT's input ``[S, 3, H, W]`` in ``[0, 1]``; views of different sizes are
        padded with white, centred, to the largest height and width, as VGGT's loader does."""
        frames = [self._resize(frame, image_source(frame, sample.id, i)) for i, frame in enumerate(sample.frames)]
        height, width = max(f.shape[1] for f in frames), max(f.shape[2] for f in frames)
        padded = []
        for f in frames:
            top, left = (height - f.shape[1]) // 2, (width - f.shape[2]) // 2
            padded.append(F.pad(f, (left, width - f.shape[2] - left, top, height - f.shape[1] - top), value=1.0))
        return torch.stack(padded)

    def _resize(self, frame: Any, source: str) -> Tensor:
        """One frame (PIL image or ``[H, W, 3]`` uint8 array) as ``[3, h, w]`` in ``[0, 1]``: PIL bicubic
        resizing and RGBA blended onto white, as ``vggt.utils.load_fn.load_and_preprocess_images``
        (``source``: what a bad frame's error names)."""
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame))
        image = to_rgb(image, source)  # RGBA onto white, as VGGT's loader
        w, h = image.size
        s = self.image_size
        if self.mode == "resize":
            nh, nw = s, s
        elif self.mode == "pad" and h > w:
            nh, nw = s, round(w * s / h / PATCH) * PATCH
        else:
            nh, nw = round(h * s / w / PATCH) * PATCH, s
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0
        if self.mode == "pad":
            top, left = (s - nh) // 2, (s - nw) // 2
            return F.pad(pixels, (left, s - nw - left, top, s - nh - top), value=1.0)
        if self.mode == "crop" and nh > s:
            top = (nh - s) // 2
            pixels = pixels[:, top:top + s]
        return pixels

    # -- encoding -----------------------------------------------------------------------

    def model(self, device: torch.device | str | None = None) -> Any:
        """The VGGT module, loaded on first use and moved to ``device``."""
        if self._model is None:
            try:
                from vggt.models.vggt import VGGT
            except ImportError as error:
                raise ImportError("VGGTTeacher needs the vggt package: pip install 'thinkspace[vggt]'") from error
            self._model = VGGT.from_pretrained(self.path).eval()
            self._check(self._model)
        if device is not None:
            self._model.to(device)
        return self._model

    def _check(self, model: Any) -> None:
        width = 2 * model.aggregator.camera_token.shape[-1]
        if width != self.channels:
            raise ValueError(f"VGGTTeacher: {self.path} has {width} channels (2 x embed_dim), "
                             f"the config says channels={self.channels}")
        registers = model.aggregator.register_token.shape[-2]
        if registers != self.num_register:
            raise ValueError(f"VGGTTeacher: {self.path} has {registers} register tokens per view, "
                             f"the config says num_register={self.num_register}")

    @torch.no_grad()
    def aggregate(self, pixels: Tensor) -> tuple[list[Tensor], int]:
        """VGGT's aggregator on ``[S, 3, H, W]``: per-layer tokens ``[1, S, P, C]`` and the patch start index."""
        model = self.model(pixels.device)
        with tf32_allowed(pixels.device, self.tf32):
            if self.dtype == "float32":
                return model.aggregator(pixels[None])
            dtype = getattr(torch, self.dtype)
            with torch.autocast(device_type=pixels.device.type, dtype=dtype):
                return model.aggregator(pixels[None].to(dtype))

    def encode_prepared(self, prepared: Tensor) -> TeacherFeatures:
        tokens, start = self.aggregate(prepared)
        out = tokens[self.layer][0].float()  # [S, P, C]
        rows, cols = prepared.shape[-2] // PATCH, prepared.shape[-1] // PATCH
        return TeacherFeatures(camera=out[:, 0], register=out[:, 1:start], patch=out[:, start:], grid=(rows, cols))

    @torch.no_grad()
    def point_cloud(self, features: TeacherFeatures, sample: SpatialSample,
                    confidence_quantile: float = 0.5) -> tuple[Tensor, Tensor]:
        """Replace the aggregator's last layer by ``features`` and decode with VGGT's camera and
        depth heads; unproject the depth with the predicted cameras; keep pixels above the
        ``confidence_quantile`` of the depth confidence. Points ``[M, 3]``, colours ``[M, 3]``."""
        from vggt.utils.geometry import unproject_depth_map_to_point_map
        from vggt.utils.pose_enc import pose_encoding_to_extri_intri

        pixels = self.prepare(sample).to(self.device or "cpu")
        tokens, start = self.aggregate(pixels)
        tokens = list(tokens)
        if self.layer not in (-1, len(tokens) - 1):
            raise ValueError(f"VGGTTeacher.point_cloud: the features are layer {self.layer}, but VGGT's camera head "
                             "reads only the last layer; decoding points needs layer: -1")
        tokens[self.layer] = features.tokens().to(pixels.device, torch.float32)[None]
        model = self.model()
        # the heads run in float32 with autocast off, as in VGGT's own forward (bf16 depth is too coarse)
        tokens = [t.float() for t in tokens]
        with torch.autocast(device_type=pixels.device.type, enabled=False):
            pose = model.camera_head(tokens)[-1]
            extrinsic, intrinsic = pose_encoding_to_extri_intri(pose, pixels.shape[-2:])
            depth, confidence = model.depth_head(tokens, images=pixels[None].float(), patch_start_idx=start)
        points = torch.as_tensor(unproject_depth_map_to_point_map(depth[0], extrinsic[0], intrinsic[0]))
        keep = confidence[0] >= torch.quantile(confidence[0].float().flatten(), confidence_quantile)
        colours = pixels.permute(0, 2, 3, 1)
        return points[keep.cpu()].float(), colours[keep].float().cpu()

