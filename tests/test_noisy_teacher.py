"""NoisyGeometryTeacher: errors of the size asked for, the first camera exact, the same noise
for the same sample every time, and nothing changed at zero noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from thinkspace.data.schema import Geometry, SpatialSample
from thinkspace.teachers import NoisyGeometryTeacher, OracleGeometryTeacher
from thinkspace.synth.cameras import look_at


def _sample(i: int, views: int = 3, size: int = 28) -> SpatialSample:
    """Cameras on a circle of 2.5 m about the origin, all looking at it; depth 1.5-3.5 m."""
    cams = [look_at(np.array([2.5 * math.cos(a), 2.5 * math.sin(a), 1.4]), np.zeros(3))
            for a in np.linspace(0, math.pi, views) + 0.1 * i]
    depth = torch.linspace(1.5, 3.5, size * size).reshape(1, size, size).repeat(views, 1, 1)
    depth[:, 0, 0] = 0.0  # one invalid pixel per view
    k = torch.tensor([[24.0, 0, 13.5], [0, 24.0, 13.5], [0, 0, 1]]).repeat(views, 1, 1)
    geometry = Geometry(k, torch.as_tensor(np.stack(cams), dtype=torch.float32), depth)
    return SpatialSample(id=f"s{i}", source="test", task="t", frames=np.zeros((views, size, size, 3), np.uint8),
                         prompt="?", geometry=geometry)


def _errors(teacher: NoisyGeometryTeacher, samples: list[SpatialSample]) -> tuple[float, float, float, float]:
    """Mean relative depth error, rotation error (degrees), relative centre error, and the first camera's error."""
    depth, rotation, centre, first = [], [], [], []
    for sample in samples:
        noisy = teacher.perturb(sample).geometry
        true = sample.geometry
        ok = true.depth > 0
        assert (noisy.depth[~ok] == 0).all()
        depth.append(((noisy.depth[ok] - true.depth[ok]).abs() / true.depth[ok]).mean().item())
        r_true, r_noisy = true.cam_from_world[:, :3, :3].double(), noisy.cam_from_world[:, :3, :3].double()
        c_true = -(r_true.transpose(1, 2) @ true.cam_from_world[:, :3, 3:].double())[..., 0]
        c_noisy = -(r_noisy.transpose(1, 2) @ noisy.cam_from_world[:, :3, 3:].double())[..., 0]
        first.append((noisy.cam_from_world[0] - true.cam_from_world[0]).abs().max().item())
        for k in range(1, len(r_true)):
            cos = ((torch.trace(r_true[k].T @ r_noisy[k]) - 1) / 2).clamp(-1, 1)
            rotation.append(math.degrees(math.acos(cos.item())))
            centre.append(((c_noisy[k] - c_true[k]).norm() / (c_true[k] - c_true[0]).norm()).item())
    return float(np.mean(depth)), float(np.mean(rotation)), float(np.mean(centre)), max(first)


def test_errors_have_the_sizes_asked_for():
    teacher = NoisyGeometryTeacher(OracleGeometryTeacher(patch_size=14), depth_rel_error=0.05, rotation_deg=4.5,
                                   translation_rel=0.08)
    depth, rotation, centre, first = _errors(teacher, [_sample(i) for i in range(300)])
    assert depth == pytest.approx(0.05, rel=0.15)
    assert rotation == pytest.approx(4.5, rel=0.1)
    assert centre == pytest.approx(0.08, rel=0.1)
    assert first < 1e-6  # the reference camera is the world frame's: exact


def test_same_sample_same_noise_and_the_seed_changes_it():
    oracle = OracleGeometryTeacher(patch_size=14)
    sample = _sample(0)
    a = NoisyGeometryTeacher(oracle).encode(sample)
    b = NoisyGeometryTeacher(oracle).encode(sample)
    c = NoisyGeometryTeacher(oracle, seed=1).encode(sample)
    truth = oracle.encode(sample)
    assert torch.equal(a.patch, b.patch) and torch.equal(a.camera, b.camera)
    assert not torch.equal(a.patch, c.patch)
    assert not torch.equal(a.camera[1:], truth.camera[1:]) and torch.allclose(a.camera[0], truth.camera[0])
    assert a.patch.shape == truth.patch.shape and a.grid == truth.grid
    zero = NoisyGeometryTeacher(oracle, depth_rel_error=0, rotation_deg=0, translation_rel=0).encode(sample)
    assert torch.allclose(zero.patch, truth.patch, atol=1e-5) and torch.allclose(zero.camera, truth.camera, atol=1e-5)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"NoisyGeometryTeacher.rotation_deg must be a finite number >= 0, got -1"):
        NoisyGeometryTeacher(OracleGeometryTeacher(), rotation_deg=-1)
    sample = _sample(0)
    sample.geometry = None
    with pytest.raises(ValueError, match="sample 's0' \\(test\\): NoisyGeometryTeacher needs geometry"):
        NoisyGeometryTeacher(OracleGeometryTeacher()).encode(sample)


def test_cues_take_the_noisy_teacher():
    from thinkspace.cues import CameraPrior, PointMapCue

    sample = _sample(1)
    oracle = OracleGeometryTeacher(patch_size=14)
    noisy = NoisyGeometryTeacher(oracle)
    grids = [(1, 1)] * 3  # one token per view
    gt, valid = PointMapCue(teacher=oracle).grid_targets(sample, grids)
    est, valid_est = PointMapCue(teacher=noisy).grid_targets(sample, grids)
    assert gt.shape == est.shape == (3, oracle.channels) and valid.all() and valid_est.all()
    assert not torch.allclose(gt[1:], est[1:])
    assert CameraPrior(teacher=noisy).teacher.channels == oracle.channels
