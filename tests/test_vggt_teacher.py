"""VGGTTeacher against a tiny VGGT composed from the upstream modules (needs the vggt package)."""

import numpy as np
import pytest
import torch
from PIL import Image

from thinkspace.data.schema import SpatialSample
from thinkspace.teachers import VGGTTeacher
from thinkspace.teachers.base import check_features

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
    prepared = teacher.prepare(s)
    assert prepared.shape == (views, 3, grid[0] * 14, grid[1] * 14)
    layers, start = teacher.model().aggregator(prepared[None])
    assert start == 1 + 4 and torch.equal(features.tokens(), layers[-1][0])


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("size", [(100, 150), (150, 100), (700, 1100)])
def test_preprocessing_matches_vggt_load_fn(tmp_path, mode, size):
    from vggt.utils.load_fn import load_and_preprocess_images  # its target size is fixed at 518

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8))
    image.save(tmp_path / "frame.png")
    expected = load_and_preprocess_images([str(tmp_path / "frame.png")], mode=mode)
    teacher = VGGTTeacher(image_size=518, mode=mode)
    prepared = teacher.prepare(SpatialSample(id="v", source="test", task="t", frames=[image], prompt="?"))
    assert prepared.shape == expected.shape
    assert prepared.shape[-2:] == teacher.input_size(*size)
    torch.testing.assert_close(prepared, expected, rtol=0, atol=1e-6)


def test_wrong_channels_are_refused():
    with pytest.raises(ValueError, match="has 64 channels .* the config says channels=2048"):
        VGGTTeacher(image_size=56, model=tiny_vggt())


def test_a_bad_frame_is_named_by_sample_id_and_index():
    teacher = VGGTTeacher(image_size=56, model=tiny_vggt(), channels=64)
    s = sample(2)
    s.frames[1] = Image.new("F", (84, 42), 0.5)
    with pytest.raises(ValueError, match=r"^frame 1 of sample 'v' \(an in-memory image\): 32-bit float image"):
        teacher.prepare(s)


def test_views_of_different_sizes_are_padded_with_white_to_the_largest():
    teacher = VGGTTeacher(image_size=56, mode="crop", channels=64, model=tiny_vggt())
    wide, square = sample(1, (28, 84)).frames[0], sample(1, (56, 56)).frames[0]
    mixed = SpatialSample(id="mixed", source="test", task="t", frames=[wide, square], prompt="?")
    prepared = teacher.prepare(mixed)
    assert prepared.shape == (2, 3, 56, 56)  # crop: 56 x 14 and 56 x 56, padded to 56 x 56
    assert torch.all(prepared[0, :, :21] == 1.0) and torch.all(prepared[0, :, 35:] == 1.0)  # centred, white
    torch.testing.assert_close(prepared[0, :, 21:35], teacher.prepare(sample(1, (28, 84)))[0])
    features = check_features(teacher.encode(mixed), teacher, mixed)
    assert teacher.sample_grid(mixed) == features.grid == (4, 4) and features.patch.shape == (2, 16, 64)


def test_points_need_the_last_layer():
    teacher = VGGTTeacher(image_size=56, mode="resize", channels=64, layer=0, model=tiny_vggt())
    features = teacher.encode(sample())
    with pytest.raises(ValueError, match="the features are layer 0, but VGGT's camera head reads only the last layer"):
        teacher.point_cloud(features, sample())


def test_wrong_register_count_is_refused():
    with pytest.raises(ValueError, match="has 4 register tokens per view, the config says num_register=2"):
        VGGTTeacher(image_size=56, channels=64, num_register=2, model=tiny_vggt())


def test_point_cloud_from_its_own_tokens():
    teacher = VGGTTeacher(image_size=56, mode="resize", channels=64, model=tiny_vggt())
    s = sample(2)
    features = teacher.encode(s)
    points, colours = teacher.point_cloud(features, s)
    assert points.shape[1] == 3 and colours.shape == points.shape and points.shape[0] >= 2 * 56 * 56 // 2
    assert torch.isfinite(points).all()

    # VGGT's own path (VGGT.forward's heads, then unprojection with the predicted cameras)
    from vggt.utils.geometry import unproject_depth_map_to_point_map
    from vggt.utils.pose_enc import pose_encoding_to_extri_intri

    with torch.no_grad():
        model, images = teacher.model(), teacher.prepare(s)[None]
        layers, start = model.aggregator(images)
        extrinsic, intrinsic = pose_encoding_to_extri_intri(model.camera_head(layers)[-1], images.shape[-2:])
        depth, confidence = model.depth_head(layers, images=images, patch_start_idx=start)
    assert depth.shape == (1, 2, 56, 56, 1) and confidence.shape == (1, 2, 56, 56)
    world = torch.as_tensor(unproject_depth_map_to_point_map(depth[0], extrinsic[0], intrinsic[0]))
    keep = confidence[0] >= confidence[0].flatten().quantile(0.5)
    torch.testing.assert_close(points, world[keep].float())
    torch.testing.assert_close(colours, images[0].permute(0, 2, 3, 1)[keep])

    # the decoded points follow the features handed in, not VGGT's own last layer
    shifted = type(features)(features.camera + 1, features.register, features.patch + 1, features.grid)
    moved, _ = teacher.point_cloud(shifted, s)
    assert moved.shape != points.shape or not torch.allclose(moved, points)
