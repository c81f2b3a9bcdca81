"""Layout reconstruction and situation objectives: hand-computed targets and losses."""

import math
from dataclasses import replace

import pytest
import torch

from thinkspace.accuracy import LocalizationAccuracy
from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.schema import Geometry, Situation
from thinkspace.geometry import circular_soft_argmax, gaussian_nll, wrap_angle, wrapped_gaussian
from thinkspace.objectives import TextCrossEntropy
from thinkspace.objectives.layout import LayoutReconstruction, bev_targets
from thinkspace.objectives.situation import Situation as SituationObjective

# camera at (1, 2, 1.5) looking along world +x, z up: cam x = -world y, cam y = -world z, cam z = world x
R = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
C = torch.tensor([1.0, 2.0, 1.5])


def pose() -> torch.Tensor:
    cam_from_world = torch.eye(4)
    cam_from_world[:3, :3] = R
    cam_from_world[:3, 3] = -R @ C
    return cam_from_world


def test_bev_targets_from_a_hand_made_depth_map():
    depth = torch.full((4, 6), 2.0)
    depth[2:, 3:] = 0.0  # the bottom-right token sees nothing
    K = torch.tensor([[2.0, 0.0, 3.0], [0.0, 2.0, 2.0], [0.0, 0.0, 1.0]])
    sample = replace(ColouredSquares(1)[0], geometry=Geometry(K[None], pose()[None], depth[None]))
    xy, valid = bev_targets(sample, [(2, 2)])
    assert xy.shape == (4, 2) and valid.tolist() == [True, True, True, False]
    # token (0, 0): pixel columns 0..2 (u = 0, 1, 2: integer pixel centres); cam x = (u - 3) / 2 * 2
    # world y = C_y - cam x, world x = C_x + depth (cam z)
    mean_cam_x = sum(u - 3.0 for u in (0.0, 1.0, 2.0)) / 3
    assert xy[0].tolist() == pytest.approx([1.0 + 2.0, 2.0 - mean_cam_x])
    mean_cam_x_right = sum(u - 3.0 for u in (3.0, 4.0, 5.0)) / 3
    assert xy[1].tolist() == pytest.approx([3.0, 2.0 - mean_cam_x_right])


def test_bev_targets_reject_bad_depth():
    K = torch.eye(3)
    bad = torch.full((1, 4, 4), float("nan"))
    sample = replace(ColouredSquares(1)[0], geometry=Geometry(K[None], pose()[None], bad))
    with pytest.raises(ValueError, match="sample 'squares-0-0' .*NaN, infinite or negative"):
        bev_targets(sample, [(2, 2)])
    with pytest.raises(ValueError, match="has no depth"):
        bev_targets(ColouredSquares(1)[0], [(2, 2)])


def test_gaussian_nll_by_hand():
    pred, log_var, target = torch.zeros(1, 2), torch.tensor([[0.0, math.log(4.0)]]), torch.tensor([[1.0, 2.0]])
    # 0.5 * [(1 / 1 + 0) + (4 / 4 + log 4)]
    assert gaussian_nll(pred, log_var, target).item() == pytest.approx(0.5 * (1 + 1 + math.log(4.0)))


def test_wrapped_gaussian_is_continuous_across_plus_minus_180_degrees():
    at_pi = wrapped_gaussian(torch.tensor([math.pi]), 36, 2.0)[0]
    at_minus_pi = wrapped_gaussian(torch.tensor([-math.pi]), 36, 2.0)[0]
    torch.testing.assert_close(at_pi, at_minus_pi)
    assert at_pi[0].item() == pytest.approx(at_pi[35].item())  # the boundary sits between bins 35 and 0
    assert at_pi.sum().item() == pytest.approx(1.0)
    near = wrapped_gaussian(torch.tensor([math.radians(179.0)]), 36, 2.0)[0]
    assert near[35] > near[0] > near[34] * 0.5
    # KL to itself is zero; to a shifted target it is positive
    from torch.nn.functional import kl_div

    assert kl_div(at_pi.log()[None], at_pi[None], reduction="batchmean").item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("degrees", [0.0, 37.0, 179.0, -179.0, -90.0, 180.0])
def test_circular_soft_argmax_recovers_a_known_yaw(degrees):
    yaw = torch.tensor([math.radians(degrees)])
    probs = wrapped_gaussian(yaw, 36, 2.0)
    recovered = circular_soft_argmax(probs)
    assert wrap_angle(recovered - yaw).abs().item() < math.radians(0.5)


def test_localization_accuracy_by_hand():
    xy = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    pred_xy = torch.tensor([[0.3, 0.4], [0.0, 0.5], [0.6, 0.8]])  # distances 0.5 (not < 0.5), 0.5, 1.0
    yaw = torch.tensor([math.radians(179.0), 0.0, 0.0])
    pred_yaw = torch.tensor([math.radians(-179.0), math.radians(15.0), math.radians(29.0)])  # 2, 15, 29 degrees
    results = {}
    for kind, threshold in (("position", 0.5), ("position", 1.0), ("yaw", 15.0), ("yaw", 30.0)):
        metric = LocalizationAccuracy(kind, threshold)
        metric.update(pred_xy, pred_yaw, xy, yaw)
        results[(kind, threshold)] = metric.compute().item()
    assert results == pytest.approx({("position", 0.5): 0.0, ("position", 1.0): 2 / 3,
                                     ("yaw", 15.0): 1 / 3, ("yaw", 30.0): 1.0})


def situated_samples(n=4):
    samples = []
    K = torch.tensor([[40.0, 0.0, 28.0], [0.0, 40.0, 28.0], [0.0, 0.0, 1.0]])
    for i, sample in enumerate(ColouredSquares(n, image_size=(56, 56), num_views=2, seed=9)):
        depth = torch.linspace(1.0, 3.0, 56)[:, None].expand(56, 56).repeat(2, 1, 1) + i * 0.1
        geometry = Geometry(K.repeat(2, 1, 1), pose().repeat(2, 1, 1), depth)
        situation = None if i == 0 else Situation((0.5 * i, -0.3 * i), -3.0 + 1.5 * i, f"I stand at spot {i}.")
        samples.append(replace(sample, geometry=geometry, situation=situation))
    return samples


def test_situation_tokens_go_between_situation_and_question(tiny_cache):
    backbone = QwenVL("tiny:qwen2_5_vl")
    objective = SituationObjective()
    objective.name = "situation"
    objective.setup(backbone)
    samples = situated_samples()
    assert objective.prepare(samples[1]).prompt.startswith("I stand at spot 1. <Pos><Ori>\nWhich colour")
    assert objective.prepare(samples[0]).prompt.startswith("I am standing in the room. <Pos><Ori>\n")
    batch = backbone.collator({"situation": objective})(samples)
    assert batch.targets["situation"][:, 3].tolist() == [0.0, 1.0, 1.0, 1.0]
    ids = batch.inputs["input_ids"]
    pos = (ids == objective.pos_id).nonzero()[:, 1]
    ori = (ids == objective.ori_id).nonzero()[:, 1]
    assert (ori == pos + 1).all() and (pos < batch.prompt_lengths).all()
    assert all(batch.visual.positions(b).max() < pos[b] for b in range(len(samples)))


def joint_stack(backbone):
    """Loc3R's objective stack (text, layout, situation), named and set up on ``backbone``."""
    objectives = {"text": TextCrossEntropy(), "layout": LayoutReconstruction(), "situation": SituationObjective()}
    for name, objective in objectives.items():
        objective.name = name
        objective.setup(backbone)
    return objectives


def test_joint_stack_each_term_falls_on_a_fixed_batch(tiny_cache):
    torch.manual_seed(0)
    backbone = QwenVL("tiny:qwen2_5_vl")
    objectives = joint_stack(backbone)
    modules = torch.nn.ModuleList([backbone, *objectives.values()])
    batch = backbone.collator(objectives)(situated_samples())
    optimizer = torch.optim.AdamW(modules.parameters(), lr=2e-3)
    history = []
    for _ in range(25):
        out = backbone(batch)
        terms = {f"{n}.{k}": v for n, o in objectives.items() for k, v in o.loss(out, batch).items()}
        history.append({k: v.item() for k, v in terms.items()})
        optimizer.zero_grad()
        sum(terms.values()).backward()
        optimizer.step()
    for term in history[0]:
        assert history[-1][term] < 0.7 * history[0][term] or history[-1][term] < history[0][term] - 1.0, term
