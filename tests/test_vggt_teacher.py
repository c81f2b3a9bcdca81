"""VGGTTeacher against a tiny VGGT composed from the upstream modules (needs the vggt package)."""

import numpy as np
import pytest
import torch
from PIL import Image

from thinkspace.data.schema import SpatialSample
from thinkspace.teachers import VGGTTeacher

vggt = pytest.importorskip("vggt")


def tiny_vggt(embed_dim=32):
    from vggt.heads.camera_head import CameraHead
    from vggt.heads.dpt_head import DPTHead
    from vggt.models.aggregator import Aggregator

    torch.manual_seed(0)
    model = torch.nn.Module()
    model.aggregator = Aggregator(img_size=56, patch_size=14, embed_dim=embed_dim, depth=2, num_heads=2,
                                  patch_embed="conv")
    model.camera_head = CameraHead(dim_in=2 * embed_dim, trunk_depth=1, num_heads=2)
    model.depth_head = DPTHead(dim_in=2 * embed_dim, output_dim=2, activation="exp", conf_activation="expp1",
                               features=16, out_channels=[8, 16, 32, 32], intermediate_layer_idx=[0, 1, 1, 1])
    return model.eval()


def sample(views=2, size=(42, 84)):
    frames = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (*size, 3), dtype=np.uint8))
              for i in range(views)]
    return SpatialSample(id="v", source="test", task="t", frames=frames, prompt="?")


@pytest.mark.parametrize("mode,views,grid", [("crop", 2, (2, 4)), ("pad", 1, (4, 4)), ("resize", 3, (4, 4))])
def test_tokens_layout_and_grid(mode, views, grid):
    teacher = VGGTTeacher(image_size=56, mode=mode, channels=64, model=tiny_vggt())
    s = sample(views)
    assert teacher.grid(42, 84) == grid
    features = teacher.encode(s)
    assert features.grid == grid
    assert features.tokens().shape == (views, 1 + 4 + grid[0] * grid[1], 64)
    assert teacher.prepare(s).shape == (views, 3, grid[0] * 14, grid[1] * 14)


def test_wrong_channels_are_refused():
    with pytest.raises(ValueError, match="has 64 channels .* the config says channels=2048"):
        VGGTTeacher(image_size=56, model=tiny_vggt())


def test_point_cloud_from_its_own_tokens():
    teacher = VGGTTeacher(image_size=56, mode="resize", channels=64, model=tiny_vggt())
    s = sample(2)
    points, colours = teacher.point_cloud(teacher.encode(s), s)
    assert points.shape[1] == 3 and colours.shape == points.shape and points.shape[0] > 0
    assert torch.isfinite(points).all()
