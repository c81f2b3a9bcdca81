"""The composed VLM's frames go through its encoder's own timm transform: the data config's
interpolation (any mode, not only bilinear/bicubic), mean and std, the whole frame resized."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from thinkspace.backbones.composed.processor import ComposedProcessor


def processor_with(composed, interpolation: str) -> ComposedProcessor:
    base = composed.processor
    return ComposedProcessor(base.tokenizer, replace(base.geometry, interpolation=interpolation), base.token_grid)


def normalised(composed, image: Image.Image) -> torch.Tensor:
    """``image`` (already at the encoder's size) as ``[3, H, W]`` normalised with the encoder's mean and std."""
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    geometry = composed.processor.geometry
    return (x - torch.tensor(geometry.mean).view(3, 1, 1)) / torch.tensor(geometry.std).view(3, 1, 1)


@pytest.mark.parametrize("mode,pil", [("nearest", Image.NEAREST), ("bicubic", Image.BICUBIC),
                                      ("bilinear", Image.BILINEAR)])
def test_the_data_configs_interpolation_is_the_one_used(composed, mode, pil):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    height, width = composed.processor.geometry.image_size
    expected = normalised(composed, Image.fromarray(frame).resize((width, height), pil))
    torch.testing.assert_close(processor_with(composed, mode).preprocess(frame), expected, atol=1e-5, rtol=0)


def test_nearest_is_not_turned_into_bilinear(composed):
    """Nearest neighbours only copy pixels: every output value is one of the input's."""
    frame = np.random.default_rng(1).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    nearest = processor_with(composed, "nearest").preprocess(frame)
    bilinear = processor_with(composed, "bilinear").preprocess(frame)
    geometry = composed.processor.geometry
    pixels = (nearest * torch.tensor(geometry.std).view(3, 1, 1) + torch.tensor(geometry.mean).view(3, 1, 1)) * 255
    assert set(pixels.round().to(torch.int64).flatten().tolist()) <= set(frame.flatten().tolist())
    assert not torch.allclose(nearest, bilinear)


def test_the_whole_frame_is_kept(composed):
    """A wide frame, black in its left tenth and white elsewhere: the black survives (a centre crop
    of the wide frame would cut it off)."""
    frame = np.full((40, 160, 3), 255, dtype=np.uint8)
    frame[:, :16] = 0
    x = processor_with(composed, "nearest").preprocess(frame)
    assert x[0, :, 0].max() < x[0, :, -1].min()


def test_the_backbone_reads_its_encoders_timm_data_config(composed):
    from timm.data import resolve_model_data_config

    data = resolve_model_data_config(composed.hf.model.vision_tower)
    geometry = composed.processor.geometry
    assert geometry.interpolation == data["interpolation"]
    assert tuple(geometry.mean) == tuple(data["mean"]) and tuple(geometry.std) == tuple(data["std"])
