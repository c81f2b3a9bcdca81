"""Geometry teachers: the oracle's encoding inverts, the feature cache, cache-teacher, points."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.data.schema import Geometry, SpatialSample
from thinkspace.geometry import backproject
from thinkspace.teachers import OracleGeometryTeacher
from thinkspace.teachers.base import check_features
from thinkspace.teachers.cache import CacheWriter, FeatureCache, frames_hash
from thinkspace.teachers.command import main as cache_teacher
from thinkspace.teachers.fourier import fourier_decode, fourier_encode

from cli_helpers import REPO

TINY = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic(n=3, seed=0, size=56):
    data = SyntheticSpatial(n, image_size=size, num_views=(2, 3), settings=["leftmost"], num_objects=(3, 4), seed=seed)
    return [data[i] for i in range(n)]


def plane_sample(depth=3.0, size=(42, 56)):
    """One view of a fronto-parallel wall at ``depth`` metres, camera rotated and moved."""
    h, w = size
    k = torch.tensor([[40.0, 0, w / 2], [0, 40.0, h / 2], [0, 0, 1]])
    angle = 0.3
    rot = torch.tensor([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]).float()
    cam_from_world = torch.eye(4)
    cam_from_world[:3, :3], cam_from_world[:3, 3] = rot, torch.tensor([0.5, -1.0, 2.0])
    geometry = Geometry(k[None], cam_from_world[None], torch.full((1, h, w), depth))
    return SpatialSample(id="wall", source="test", task="t", frames=np.zeros((1, h, w, 3), np.uint8), prompt="?",
                         geometry=geometry)


def test_fourier_code_inverts_to_micrometres():
    x = torch.linspace(-15.9, 15.9, 101)
    assert (fourier_decode(fourier_encode(x, 16.0, 6), 16.0, 6) - x).abs().max() < 1e-4


def test_oracle_decodes_a_wall_exactly():
    sample = plane_sample()
    teacher = OracleGeometryTeacher(patch_size=14)
    features = teacher.encode(sample)
    assert features.grid == (3, 4) and features.tokens().shape == (1, 1 + 12, teacher.channels)
    points, valid = teacher.decode_points(features, 42, 56)
    assert valid.all()
    # expected: patch centres (u, v) = ((c + .5) * 14 - .5, (r + .5) * 14 - .5) (integer pixel
    # coordinates are pixel centres) on the plane z_cam = 3
    u = (torch.arange(4) + 0.5) * 14 - 0.5
    v = (torch.arange(3) + 0.5) * 14 - 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    cam = torch.stack([(uu - 28) / 40 * 3, (vv - 21) / 40 * 3, torch.full_like(uu, 3.0)], -1).reshape(-1, 3)
    world_from_cam = torch.linalg.inv(sample.geometry.cam_from_world[0])
    expected = cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]
    assert (points[0] - expected).abs().max() < 1e-3
    # normals of a wall facing the camera: minus the camera's z axis, in the world frame
    normal = features.patch[0, :, 4 * 12 + 0 : 4 * 12 + 3]
    torch.testing.assert_close(normal, (-world_from_cam[:3, 2]).expand_as(normal), atol=1e-4, rtol=0)


def test_oracle_recovers_synthetic_points_within_tolerance():
    sample = synthetic(1, seed=4)[0]
    teacher = OracleGeometryTeacher(patch_size=14)
    points, valid = teacher.decode_points(teacher.encode(sample), 56, 56)
    g = sample.geometry
    for s in range(sample.num_frames):  # ground truth: the depth map's pixel at each patch centre
        world = backproject(g.depth[s], g.intrinsics[s], g.cam_from_world[s])
        truth = world[7::14, 7::14].reshape(-1, 3)
        error = (points[s] - truth).norm(dim=-1)[valid[s]]
        assert error.median() < 0.15, error


def test_features_that_do_not_fit_the_frames_name_the_sample():
    sample = synthetic(1)[0]
    teacher = OracleGeometryTeacher(patch_size=14)
    features = teacher.encode(sample)
    wrong = replace(features, patch=features.patch[:, :8], grid=(2, 4))
    with pytest.raises(ValueError, match=r"sample 'synthetic-\w+-train-0-0' \(synthetic\): teacher features do not "
                                         r"match: grid \(2, 4\) but the frames \(\(56, 56\)\) give \(4, 4\)"):
        check_features(wrong, teacher, sample)
    no_depth = replace(sample, geometry=None)
    with pytest.raises(ValueError, match=r"sample 'synthetic-\w+-train-0-0' .* needs geometry with depth"):
        teacher.encode(no_depth)


# -- cache --------------------------------------------------------------------------

def test_cache_round_trip_in_fp16(tmp_path):
    teacher = OracleGeometryTeacher()
    samples = synthetic(3)
    writer = CacheWriter(tmp_path, teacher.signature(), shard_size=2)
    for i, s in enumerate(samples):
        writer.add(s, teacher.encode(s), index=i, split="train")
    writer.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00000.safetensors", "shard-00001.safetensors",
                                                         "signature.json"]
    cache = FeatureCache(tmp_path, teacher.signature())
    assert len(cache) == 3
    for s in samples:
        a, b = cache.load(s), teacher.encode(s)
        assert a.grid == b.grid and a.patch.dtype == torch.float32
        torch.testing.assert_close(a.tokens(), b.tokens(), atol=1e-2, rtol=1e-3)


def test_cache_refuses_another_teacher_and_changed_frames(tmp_path):
    teacher = OracleGeometryTeacher(patch_size=14)
    sample = synthetic(1)[0]
    writer = CacheWriter(tmp_path, teacher.signature())
    writer.add(sample, teacher.encode(sample))
    writer.flush()
    with pytest.raises(ValueError, match=r"signature.json: this cache was written by another teacher setting .*"
                                         r"patch_size: cache has 14, teacher has 7"):
        FeatureCache(tmp_path, OracleGeometryTeacher(patch_size=7).signature())
    changed = replace(sample, frames=[np.zeros((56, 56, 3), np.uint8)] * sample.num_frames)
    with pytest.raises(ValueError, match=r"sample 'synthetic-\w+-train-0-0' \(synthetic\): its frames \(hash [0-9a-f]+\) "
                                         r"differ from the ones cached"):
        FeatureCache(tmp_path, teacher.signature()).load(changed)
    with pytest.raises(KeyError, match="sample 'other' .* is not in the teacher cache"):
        FeatureCache(tmp_path, teacher.signature()).load(replace(sample, id="other"))
    assert frames_hash(sample) == frames_hash(replace(sample))


def test_cache_teacher_command_resumes_after_interruption(tmp_path, monkeypatch):
    out = tmp_path / "cache"
    args = ["--config", str(TINY), "--out", str(out), "--split", "train", "--limit", "6", "--shard-size", "2"]
    calls = {"n": 0}
    original = OracleGeometryTeacher.encode

    def crash_on_fifth(self, sample):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, sample)

    monkeypatch.setattr(OracleGeometryTeacher, "encode", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        cache_teacher(args)
    assert len(list(out.glob("shard-*.safetensors"))) == 2 and not list(out.glob("*.tmp"))
    monkeypatch.setattr(OracleGeometryTeacher, "encode", original)
    seen = []
    monkeypatch.setattr(SyntheticSpatial, "__getitem__",
                        lambda self, i, get=SyntheticSpatial.__getitem__: seen.append(i) or get(self, i))
    assert cache_teacher(args) == 0
    assert seen == [4, 5]  # the four samples on disk are not even loaded
    entries = FeatureCache(out, OracleGeometryTeacher().signature()).entries
    assert sorted(e["index"] for e in entries.values()) == list(range(6))
    assert json.loads((out / "signature.json").read_text())["teacher"] == "oracle"


def test_cache_teacher_reads_the_latent_objective_of_a_grpo_config(tmp_path):
    grpo = REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"
    out = tmp_path / "cache"
    assert cache_teacher(["--config", str(grpo), "--out", str(out), "--split", "train", "--limit", "2"]) == 0
    entries = FeatureCache(out, OracleGeometryTeacher(patch_size=14).signature()).entries
    assert sorted(e["index"] for e in entries.values()) == [0, 1]


@pytest.mark.slow
def test_two_processes_fill_one_cache_completely_without_collisions(tmp_path):
    out = tmp_path / "cache"
    args = ["-m", "thinkspace.cli", "cache-teacher", "--config", str(TINY), "--out", str(out), "--split", "train",
            "--limit", "9", "--shard-size", "2"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", WORLD_SIZE="2")
    procs = [subprocess.Popen([sys.executable, *args], env=dict(env, RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    # image sets: every sample its own key
    assert "5 questions, 5 distinct keys (scan, frames, size), 5 written (rank 0 of 2)" in outputs[0][0]
    assert "4 questions, 4 distinct keys (scan, frames, size), 4 written (rank 1 of 2)" in outputs[1][0]
    # rank 0 numbers its shards 0, 2, 4 (2 + 2 + 1 samples), rank 1 odd numbers (2 + 2)
    shards = sorted(p.name for p in out.glob("shard-*"))
    assert len(shards) == 5 and all(name.endswith(".safetensors") for name in shards)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("shard-")) == ["signature.json"]
    teacher = OracleGeometryTeacher()
    cache = FeatureCache(out, teacher.signature())
    assert sorted(e["index"] for e in cache.entries.values()) == list(range(9))
    dataset = SyntheticSpatial(**yaml.safe_load(TINY.read_text())["data"]["train"]["init_args"])
    sample = dataset[7]
    torch.testing.assert_close(cache.load(sample).patch, teacher.encode(sample).patch, atol=1e-2, rtol=1e-2)
    # a later run with another process count finds everything done and numbers above every shard
    writer = CacheWriter(out, teacher.signature(), rank=1, world_size=3)
    assert writer.next_shard == 7 and len(writer.done) == 9


# -- the objective reads the cache; points ----------------------------------------------

def test_objective_reads_the_cache_and_refuses_a_mismatched_one(tmp_path):
    from thinkspace.objectives import LatentAlignment

    samples = synthetic(2)
    teacher = OracleGeometryTeacher()
    writer = CacheWriter(tmp_path, teacher.signature())
    for s in samples:
        writer.add(s, teacher.encode(s))
    writer.flush()
    cached = LatentAlignment(k=2, cache=str(tmp_path))
    live = LatentAlignment(k=2)
    for s in samples:
        a, b = cached.targets(s)["features"], live.targets(s)["features"]
        torch.testing.assert_close(a.tokens(), b.tokens(), atol=1e-2, rtol=1e-3)
    other = LatentAlignment(k=2, cache=str(tmp_path), teacher=OracleGeometryTeacher(bands=4))
    with pytest.raises(ValueError, match="bands: cache has 6, teacher has 4"):
        other.targets(samples[0])


def test_points_command_writes_a_ply_open3d_reads(tmp_path, monkeypatch):
    import open3d as o3d

    from thinkspace.lightning_cli import build_cli
    from thinkspace.objectives import LatentAlignment
    from thinkspace.inference.points import main as points

    cli = build_cli(None, [TINY])
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": cli.model.state_dict()}, ckpt)
    out = tmp_path / "scene.ply"
    sample = cli.datamodule.datasets["val"][1]
    args = ["--ckpt", str(ckpt), "--config", str(TINY), "--sample", sample.id, "--out", str(out)]
    teacher = OracleGeometryTeacher(patch_size=14)
    truth = teacher.encode(sample)
    try:  # an untrained projector: every patch decodes as invalid, said clearly
        points(args)
    except RuntimeError as error:
        assert f"sample '{sample.id}': the projected latents decode to no valid point" in str(error)
    # a perfect projector: the .ply holds exactly the teacher's decoded ground truth
    monkeypatch.setattr(LatentAlignment, "project", lambda self, *a, **k: [truth.tokens()])
    assert points(args) == 0
    cloud = o3d.io.read_point_cloud(str(out))
    expected, valid = teacher.decode_points(truth, 112, 112)
    assert len(cloud.points) == int(valid.sum()) > 0
    np.testing.assert_allclose(np.asarray(cloud.points), expected[valid].numpy(), atol=1e-5)
    assert np.asarray(cloud.colors).shape == (len(cloud.points), 3)


def test_vggt_teacher_sizes_without_loading_weights():
    from thinkspace.teachers import VGGTTeacher

    crop, square = VGGTTeacher(mode="crop"), VGGTTeacher(mode="resize")
    assert crop.grid(480, 640) == (28, 37) and crop.grid(1000, 500) == (37, 37)
    assert square.grid(480, 640) == (37, 37)  # 1 + 4 + 37 * 37 = 1374 tokens, as 3DThinker's cache
    assert VGGTTeacher(mode="pad", image_size=56).grid(28, 56) == (4, 4)
    frames = np.zeros((2, 480, 640, 3), np.uint8)
    prepared = crop.prepare(SpatialSample(id="x", source="t", task="t", frames=frames, prompt="?"))
    assert prepared.shape == (2, 3, 392, 518) and crop._model is None
    assert crop.signature()["layer"] == -1 and crop.signature() != VGGTTeacher(layer=-2).signature()


@pytest.mark.parametrize("autocast", [False, True])
def test_point_cloud_logger_adds_a_mesh_at_validation_end(monkeypatch, tiny_cache, autocast):
    """Also under the steps' bf16 autocast (bf16-mixed), which the callback decodes in; the teacher's
    geometry stays float32 (CPU linear algebra has no bf16 inverse)."""
    from contextlib import nullcontext
    from functools import partial
    from types import SimpleNamespace

    from thinkspace.backbones import QwenVL
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.objectives import LatentAlignment
    from thinkspace.points import PointCloudLogger

    val = SyntheticSpatial(2, image_size=56, num_views=2, settings=["leftmost"], num_objects=(3, 4), split="val")
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"latent": LatentAlignment(k=2, projector_width=16)})
    truth = OracleGeometryTeacher().encode(val[0])
    monkeypatch.setattr(LatentAlignment, "project", lambda self, *a, **k: [truth.tokens()])
    meshes = []
    logger = SimpleNamespace(experiment=SimpleNamespace(add_mesh=lambda tag, **kw: meshes.append((tag, kw))))
    trainer = SimpleNamespace(datamodule=SimpleNamespace(datasets={"val": val}), logger=logger,
                              sanity_checking=False, global_step=7,
                              precision_plugin=SimpleNamespace(forward_context=partial(
                                  torch.autocast, "cpu", dtype=torch.bfloat16) if autocast else nullcontext))
    PointCloudLogger(index=0).on_validation_epoch_end(trainer, module)
    (tag, kw), = meshes
    assert tag == "val/latent_points" and kw["global_step"] == 7
    assert kw["vertices"].shape == kw["colors"].shape and kw["vertices"].shape[0] == 1
    assert kw["colors"].dtype == torch.uint8 and kw["vertices"].shape[1] > 0
