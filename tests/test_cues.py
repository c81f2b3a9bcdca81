"""Camera-pose prior: placeholders right before each frame, embeddings from the teacher."""

from dataclasses import replace

import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.cues import CameraPrior
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.schema import Geometry
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import TextCrossEntropy
from thinkspace.teachers.oracle import OracleGeometryTeacher


def with_geometry(sample, seed):
    g = torch.Generator().manual_seed(seed)
    s, (h, w) = sample.num_frames, (56, 56)
    K = torch.tensor([[40.0, 0.0, 28.0], [0.0, 40.0, 28.0], [0.0, 0.0, 1.0]]).repeat(s, 1, 1)
    poses = torch.eye(4).repeat(s, 1, 1)
    poses[:, :3, 3] = torch.randn(s, 3, generator=g)
    depth = 1.0 + torch.rand(s, h, w, generator=g)
    return replace(sample, geometry=Geometry(K, poses, depth))


def samples():
    views = ColouredSquares(4, image_size=(56, 56), num_views=(1, 3), seed=3)
    video = ColouredSquares(2, image_size=(56, 56), num_views=5, video=True, seed=4)
    return [with_geometry(views[0], 0), with_geometry(video[0], 1), with_geometry(views[1], 2)]


@pytest.fixture(scope="module")
def model(tiny_cache):
    torch.manual_seed(0)
    return SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy()},
                      cues={"camera": CameraPrior(OracleGeometryTeacher())})


def test_placeholders_stand_right_before_each_frame(model):
    batch = model.collator()(samples())
    cue = model.cues["camera"]
    tok = model.backbone.tokenizer
    start = tok.convert_tokens_to_ids("<|vision_start|>")
    ids = batch.inputs["input_ids"]
    for b, sample in enumerate(samples()):
        cams = (ids[b] == cue.token_id).nonzero().flatten()
        starts = (ids[b] == start).nonzero().flatten()
        if sample.is_video:  # 5 frames -> 3 temporal groups, placeholders together before the block
            assert cams.tolist() == [starts[0] - 3, starts[0] - 2, starts[0] - 1]
        else:
            assert len(cams) == sample.num_frames and (starts - cams == 1).all()
    groups = sum(-(-s.num_frames // 2) if s.is_video else s.num_frames for s in samples())
    assert batch.targets["camera"].shape == (groups, OracleGeometryTeacher().channels)
    assert int((ids == cue.token_id).sum()) == groups == batch.visual.grid.shape[0]


def test_camera_embeddings_replace_the_placeholders(model):
    batch = model.collator()(samples())
    cue = model.cues["camera"]
    seen = {}

    def spy(embeds, b):
        seen["embeds"] = model.embeds_hook()(embeds, b)
        return seen["embeds"]

    model.backbone(batch, spy)
    rows, cols = (batch.inputs["input_ids"] == cue.token_id).nonzero(as_tuple=True)
    expected = cue.mlp(batch.targets["camera"])
    torch.testing.assert_close(seen["embeds"][rows, cols], expected)
    # the first camera token of the video is that of its group's first frame (frame 0)
    video_camera = OracleGeometryTeacher().encode(samples()[1]).camera
    first_video_row = samples()[0].num_frames
    torch.testing.assert_close(batch.targets["camera"][first_video_row], video_camera[0].float())


def test_cue_and_objective_names_must_differ(tiny_cache):
    with pytest.raises(ValueError, match=r"share the name\(s\) \['text'\]"):
        SpatialVLM(QwenVL("tiny:qwen2_5_vl"), cues={"text": CameraPrior(OracleGeometryTeacher())})


def test_camera_prior_trains_and_generates(model):
    batch = model.collator()(samples())
    total, terms = model.losses(batch)
    total.backward()
    assert model.cues["camera"].mlp[0].weight.grad.abs().sum() > 0
    texts = model.generate(batch)
    assert len(texts) == 3


def test_camera_tokens_from_a_feature_cache_equal_the_teachers(tmp_path):
    from thinkspace.teachers.cache import CacheWriter

    teacher = OracleGeometryTeacher()
    data = samples()
    writer = CacheWriter(tmp_path, teacher.signature())
    for sample in data:
        writer.add(sample, teacher.encode(sample))
    writer.flush()
    online, cached = CameraPrior(teacher), CameraPrior(teacher, cache=str(tmp_path))
    grids = [(4, 4)] * 5
    for sample in data:
        expected = online.grid_targets(sample, grids[: sample.num_frames])
        torch.testing.assert_close(cached.grid_targets(sample, grids[: sample.num_frames]), expected,
                                   atol=2e-3, rtol=2e-3)  # fp16 on disk
    with pytest.raises(KeyError, match="sample 'other' .* is not in the teacher cache"):
        cached.features(replace(data[0], id="other"))


def test_a_teacher_too_heavy_for_the_workers_needs_a_cache():
    from thinkspace.teachers import VGGTTeacher

    with pytest.raises(ValueError, match=r"teacher VGGTTeacher cannot run in the data workers; give its feature "
                                         r"cache \(cue init_args.cache"):
        CameraPrior(VGGTTeacher())
    assert CameraPrior(VGGTTeacher(), cache="data/vggt_cache").cache_dir == "data/vggt_cache"


def test_a_camera_only_cache_feeds_the_prior(tmp_path):
    from thinkspace.teachers.cache import CacheWriter

    teacher = OracleGeometryTeacher()
    data = samples()
    writer = CacheWriter(tmp_path, teacher.signature(), parts=("camera",))
    for sample in data:
        writer.add(sample, teacher.encode(sample), index=0, split="train")
    writer.flush()
    cached = CameraPrior(teacher, cache=str(tmp_path))
    features = cached.features(data[1])
    assert features.register.shape == (5, 0, teacher.channels) and features.patch.shape == (5, 0, teacher.channels)
    torch.testing.assert_close(features.camera, teacher.encode(data[1]).camera, atol=2e-3, rtol=2e-3)
    assert CacheWriter(tmp_path, teacher.signature()).done_indices("train") == set()  # a full run redoes them
