"""Bad input fails with a message that names the file, key or sample."""

import numpy as np
import pytest

from thinkspace.data.images import load_image
from thinkspace.data.schema import Geometry, SpatialSample
from thinkspace.modules.base import freeze_parameters


def test_sample_with_zero_frames_names_the_sample():
    with pytest.raises(ValueError, match=r"sample 'q7' \(mindcube\) has zero frames; expected at least one image"):
        SpatialSample(id="q7", source="mindcube", task="among", frames=[], prompt="?")


def test_timestamps_must_match_frames():
    import torch

    with pytest.raises(ValueError, match="sample 'v1': 2 timestamps for 3 frames"):
        SpatialSample(id="v1", source="vsi", task="count", frames=np.zeros((3, 8, 8, 3), np.uint8), prompt="?",
                      timestamps=torch.tensor([0.0, 1.0]))


def test_geometry_shapes_are_checked():
    import torch

    with pytest.raises(ValueError, match=r"cam_from_world must be \[S, 4, 4\] with S=2, got \(3, 4, 4\)"):
        Geometry(intrinsics=torch.eye(3).repeat(2, 1, 1), cam_from_world=torch.eye(4).repeat(3, 1, 1))


def test_missing_image_file_names_file_and_sample(tmp_path):
    missing = tmp_path / "views" / "0.png"
    with pytest.raises(FileNotFoundError, match=rf"image file {missing} not found \(sample 'q3'\)"):
        load_image(missing, sample_id="q3")


def test_undecodable_image_names_the_file(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=rf"image file {broken} \(sample 'q4'\) cannot be decoded as an image"):
        load_image(broken, sample_id="q4")


def test_image_loads_as_rgb(tmp_path):
    from PIL import Image

    path = tmp_path / "grey.png"
    Image.new("L", (5, 4), 7).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (5, 4) and image.getpixel((0, 0)) == (7, 7, 7)


def test_freeze_pattern_matching_nothing_is_an_error():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"model.freeze: pattern\(s\) \['visual'\] match no parameter name"):
        freeze_parameters(model, ["visual"])
    assert freeze_parameters(model, [r"^0\.bias$"]) == 1
    assert not model[0].bias.requires_grad and model[0].weight.requires_grad
