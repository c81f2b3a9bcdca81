"""Input-cue baselines: the point-map / depth cue and the camera text cue change the input
embeddings exactly where they should and nowhere else."""

from dataclasses import replace

import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.cues import CameraText, PointMapCue
from thinkspace.data.token_geometry import token_geometry
from thinkspace.cues.text_cue import camera_text
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.schema import Geometry
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import TextCrossEntropy
from thinkspace.teachers.fourier import fourier_encode
from thinkspace.teachers.oracle import OracleGeometryTeacher


def with_geometry(sample, seed, hole=False):
    g = torch.Generator().manual_seed(seed)
    s, (h, w) = sample.num_frames, (56, 56)
    K = torch.tensor([[40.0, 0.0, 28.0], [0.0, 40.0, 28.0], [0.0, 0.0, 1.0]]).repeat(s, 1, 1)
    poses = torch.eye(4).repeat(s, 1, 1)
    poses[:, :3, 3] = torch.randn(s, 3, generator=g)
    depth = 1.0 + torch.rand(s, h, w, generator=g)
    if hole:
        depth[:, :28, :28] = 0.0  # the top-left quarter of every view has no valid depth
    return replace(sample, geometry=Geometry(K, poses, depth))


def samples():
    views = ColouredSquares(4, image_size=(56, 56), num_views=(1, 3), seed=3)
    video = ColouredSquares(2, image_size=(56, 56), num_views=4, video=True, seed=4)
    return [with_geometry(views[0], 0, hole=True), with_geometry(video[0], 1), with_geometry(views[1], 2)]


def embeds_before_after(model, batch):
    seen = {}

    def spy(embeds, b):
        seen["before"] = embeds.detach().clone()
        hook = model.embeds_hook()
        seen["after"] = (hook(embeds, b) if hook else embeds).detach()
        return seen["after"]

    with torch.no_grad():
        model.backbone(batch, spy)
    return seen["before"], seen["after"]


def test_token_geometry_on_a_hand_case():
    # one 4x4 frame at depth 2 m, identity pose, fx = fy = 2, centre (1.5, 1.5), 2x2 tokens
    K = torch.tensor([[[2.0, 0.0, 1.5], [0.0, 2.0, 1.5], [0.0, 0.0, 1.0]]])
    depth = torch.full((1, 4, 4), 2.0)
    depth[0, 2:, 2:] = 0.0  # token (1, 1) has no valid pixel
    base = ColouredSquares(1, image_size=(56, 56), num_views=1, seed=0)[0]
    sample = replace(base, geometry=Geometry(K, torch.eye(4)[None], depth))
    points, d, valid = token_geometry(sample, [(2, 2)], "a test")
    # x = (u - 1.5) / 2 * 2 = u - 1.5: mean over u in {0, 1} is -1, over {2, 3} is +1
    expected = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [-1.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(points, expected)
    torch.testing.assert_close(d, torch.tensor([2.0, 2.0, 2.0, 0.0]))
    assert valid.tolist() == [True, True, True, False]
    # a shifted camera moves the world points: cam_from_world translates by -t
    pose = torch.eye(4)
    pose[:3, 3] = torch.tensor([-1.0, 0.0, 0.0])  # camera centre at x = +1 in the world
    moved = replace(sample, geometry=Geometry(K, pose[None], depth))
    torch.testing.assert_close(token_geometry(moved, [(2, 2)], "a test")[0][:3], expected[:3] + torch.tensor([1.0, 0, 0]))


@pytest.mark.parametrize("quantity", ["points", "depth"])
def test_pointmap_cue_adds_exactly_at_valid_visual_tokens(tiny_cache, quantity):
    torch.manual_seed(0)
    model = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy()},
                       cues={"points": PointMapCue(quantity=quantity)})
    batch = model.collator()(samples())
    before, after = embeds_before_after(model, batch)
    visual, target = batch.visual, batch.targets["points"]
    assert target["features"].shape == (len(visual), (3 if quantity == "points" else 1) * 12)
    # the hole: a 56 px frame is 2x2 merged tokens of 28 px; token (0, 0) of the first sample's views has no depth
    first = (visual.sample == 0) & (visual.frame == 0)
    hole = (visual.sample == 0) & (visual.row == 0) & (visual.col == 0)
    assert int(first.sum()) == 4 and int(hole.sum()) == samples()[0].num_frames and not target["valid"][hole].any() and target["valid"][~hole].all()
    changed = (after != before).any(-1)
    expected = torch.zeros_like(changed)
    expected[visual.sample[~hole], visual.position[~hole]] = True
    assert torch.equal(changed, expected)  # every valid visual token, and nothing else
    # the amount added is the MLP of the Fourier encoding of the token's geometry
    points, depth, _ = token_geometry(samples()[0], [(2, 2)] * samples()[0].num_frames, "a test")
    value = points if quantity == "points" else depth[:, None]
    code = fourier_encode(value, 16.0, 6).flatten(1)
    delta = after[visual.sample, visual.position] - before[visual.sample, visual.position]
    torch.testing.assert_close(delta[first][1:], model.cues["points"].mlp(code[1:4]), atol=1e-5, rtol=1e-5)


def test_pointmap_cue_from_a_teacher_reaches_every_visual_token(tiny_cache):
    torch.manual_seed(0)
    teacher = OracleGeometryTeacher(patch_size=28)
    model = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy()},
                       cues={"points": PointMapCue(teacher=teacher)})
    data = samples()
    batch = model.collator()(data)
    before, after = embeds_before_after(model, batch)
    visual = batch.visual
    changed = (after != before).any(-1)
    assert int(changed.sum()) == len(visual) and changed[visual.sample, visual.position].all()
    # 56 px frames: the teacher's 2x2 grid of 28 px patches is the backbone's token grid: features = patch tokens
    patch = teacher.encode(data[0]).patch[0]
    first = (visual.sample == 0) & (visual.frame == 0)
    torch.testing.assert_close(batch.targets["points"]["features"][first], patch.float())


def test_pointmap_cue_needs_depth_or_a_teacher():
    sample = ColouredSquares(1, image_size=(56, 56), num_views=1, seed=0)[0]
    with pytest.raises(ValueError, match=r"sample '.*' \(.*\) has no depth; the point-map cue"):
        PointMapCue().grid_targets(sample, [(4, 4)])
    with pytest.raises(ValueError, match="quantity must be 'points' or 'depth'"):
        PointMapCue(quantity="normals")
    with pytest.raises(ValueError, match="a cache needs the teacher"):
        PointMapCue(cache="somewhere")


def test_camera_text_on_a_hand_case():
    base = ColouredSquares(1, image_size=(56, 56), num_views=2, seed=0)[0]
    poses = torch.eye(4).repeat(2, 1, 1)
    # view 2: camera centre at (1, 2, 1.5), looking along world +y (camera z axis = world +y)
    world_from_cam = torch.eye(4)
    world_from_cam[:3, :3] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    world_from_cam[:3, 3] = torch.tensor([1.0, 2.0, 1.5])
    poses[1] = torch.linalg.inv(world_from_cam)
    poses[0, :3, :3] = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # looking along +x
    sample = replace(base, geometry=Geometry(torch.eye(3).repeat(2, 1, 1), poses, None))
    assert camera_text(sample) == ("Cameras (x, y, z in metres; heading in degrees): view 1 at (0.0, 0.0, 0.0) "
                                   "heading 0; view 2 at (1.0, 2.0, 1.5) heading 90.")
    edited = CameraText(where="after").prepare(sample)
    assert edited.prompt == sample.prompt + "\n" + camera_text(sample)
    with pytest.raises(ValueError, match="has no camera poses; the camera text cue"):
        CameraText().prepare(replace(sample, geometry=None))


def test_camera_text_changes_only_the_prompt_text(tiny_cache):
    torch.manual_seed(0)
    backbone = QwenVL("tiny:qwen2_5_vl")
    plain = SpatialVLM(backbone, objectives={"text": TextCrossEntropy()})
    cued = SpatialVLM(backbone, objectives={"text": TextCrossEntropy()}, cues={"cameras": CameraText()})
    data = samples()[:1]
    a, b = plain.collator()(data), cued.collator()(data)
    ids_a, ids_b = a.inputs["input_ids"][0], b.inputs["input_ids"][0]
    inserted = len(backbone.tokenizer(camera_text(data[0]) + "\n", add_special_tokens=False)["input_ids"])
    assert ids_b.numel() == ids_a.numel() + inserted
    # identical up to the question, then the inserted line, then the same question and answer
    start = int(a.visual.position.max()) + 1
    while ids_a[start] == ids_b[start]:
        start += 1
    assert torch.equal(ids_a[:start], ids_b[:start]) and torch.equal(ids_a[start:], ids_b[start + inserted:])
    assert backbone.tokenizer.decode(ids_b[start:start + inserted]).strip().startswith("Cameras (x, y, z")
    _, after_a = embeds_before_after(plain, a)
    before_b, after_b = embeds_before_after(cued, b)
    assert torch.equal(before_b, after_b)  # no embedding edit: the cue is the text itself
    torch.testing.assert_close(after_b[0, :start], after_a[0, :start])  # visual tokens untouched
    torch.testing.assert_close(after_b[0, start + inserted:], after_a[0, start:])


def test_pointmap_cue_refuses_a_camera_only_cache(tmp_path):
    from thinkspace.teachers.cache import CacheWriter

    teacher = OracleGeometryTeacher(patch_size=28)
    sample = samples()[2]
    writer = CacheWriter(tmp_path, teacher.signature(), parts=("camera",))
    writer.add(sample, teacher.encode(sample), index=0, split="train")
    writer.flush()
    with pytest.raises(ValueError, match=r"hold no patch tokens \(a camera-only cache\?\)"):
        PointMapCue(teacher=teacher, cache=str(tmp_path)).grid_targets(sample, [(2, 2)] * sample.num_frames)


def test_pointmap_cue_from_a_full_cache_equals_the_teacher(tmp_path):
    from thinkspace.teachers.cache import CacheWriter

    teacher = OracleGeometryTeacher(patch_size=28)
    sample = samples()[2]
    writer = CacheWriter(tmp_path, teacher.signature())
    writer.add(sample, teacher.encode(sample))
    writer.flush()
    grids = [(2, 2)] * sample.num_frames
    cached, valid = PointMapCue(teacher=teacher, cache=str(tmp_path)).grid_targets(sample, grids)
    online, _ = PointMapCue(teacher=teacher).grid_targets(sample, grids)
    torch.testing.assert_close(cached, online, atol=2e-3, rtol=2e-3)  # fp16 on disk
    assert cached.shape == (4 * sample.num_frames, teacher.channels) and valid.all()
