"""What SpatialVLM and SpatialGRPO share (modules/base.py) and the objectives' declared hooks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment, Situation, TextCrossEntropy
from thinkspace.objectives.base import Objective, hook_owner
from thinkspace.training.optim import WarmupLinear
from thinkspace.rl import SpatialGRPO
from thinkspace.teachers import OracleGeometryTeacher

pytestmark = pytest.mark.usefixtures("one_thread")


def views(n=2, seed=0):
    data = SyntheticSpatial(n, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=seed)
    return [data[i] for i in range(n)]


class CountingTeacher(OracleGeometryTeacher):
    """The oracle run as a device teacher (in the step, as VGGT without a cache), counting its runs."""

    runs_in_workers = False

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0

    def prepare(self, sample):
        return self.encode(sample)

    def encode_prepared(self, prepared):
        self.runs += 1
        return prepared


class Canned(TextCrossEntropy):
    """Owns decoding: answers every prompt with a fixed text naming the length it was given."""

    def generate(self, backbone, batch, inputs_embeds_hook=None, **generation):
        return [f"canned {generation['max_new_tokens']}"] * len(batch)


# -- hooks --------------------------------------------------------------------------------

def test_an_objective_owns_the_hooks_its_class_overrides():
    assert [LatentAlignment.owns(h) for h in ("evaluate", "generate", "locate")] == [True, True, False]
    assert [Situation.owns(h) for h in ("evaluate", "generate", "locate")] == [True, False, True]
    assert [TextCrossEntropy.owns(h) for h in ("evaluate", "generate", "locate")] == [False, False, False]
    assert Objective().evaluate(None, None) == {} and Objective().locate(None, None) is None


def test_two_objectives_that_own_decoding_are_an_error_naming_both(tiny_cache):
    with pytest.raises(ValueError, match=r"model.objectives: 'a' \(LatentAlignment\), 'b' \(Canned\) each own "
                                         r"decoding \(generate\); keep one of them"):
        SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"a": LatentAlignment(k=2, projector_width=8),
                                                          "b": Canned()})


def test_two_enabled_situation_heads_are_an_error_and_a_switched_off_one_is_not():
    here, there, off = Situation(), Situation(), Situation(weight=0.0)
    with pytest.raises(ValueError, match=r"'here' \(Situation\), 'there' \(Situation\) each own the situation"):
        hook_owner({"here": here, "there": there, "text": TextCrossEntropy()}, "locate")
    assert hook_owner({"off": off, "there": there}, "locate") is there
    assert hook_owner({"off": off}, "locate") is None and hook_owner({"there": there}, "generate") is None


def test_the_objective_that_owns_decoding_generates_with_the_module_settings(tiny_cache):
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": Canned()}, generation={"max_new_tokens": 2})
    rows = module.predict_step(module.collator(with_response=False)(views(2)), 0)
    assert [r["prediction"] for r in rows] == ["canned 2", "canned 2"]


# -- the latent objective's one score --------------------------------------------------------

def test_validation_runs_the_teacher_once_per_batch(tiny_cache):
    torch.manual_seed(0)
    teacher = CountingTeacher()
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={
        "text": TextCrossEntropy(), "latent": LatentAlignment(teacher=teacher, k=2, projector_width=8)}).eval()
    batch = module.collator()(views(3))
    assert teacher.runs == 0  # a device teacher: the workers only prepare its input
    with torch.no_grad(), pytest.warns(UserWarning, match="self.log"):  # no trainer: logs are dropped
        module.validation_step(batch, 0)
    assert teacher.runs == 3  # once per sample of the batch, for the loss and the cosine together
    with torch.no_grad():
        out = module.backbone(batch)
        loss, metrics = module.objectives["latent"].validate(out, batch)
        assert teacher.runs == 6
        assert loss["align"].item() == pytest.approx(module.objectives["latent"].loss(out, batch)["align"].item())
        assert metrics["cosine"].item() == pytest.approx(module.objectives["latent"].evaluate(out, batch)["cosine"])


def test_grpo_finds_the_latent_objective_under_any_name(tiny_cache):
    torch.manual_seed(0)
    latent = LatentAlignment(k=3, projector_width=16)
    latent.name = "imagery"  # as a stage-1 config may name it
    module = SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), latent=latent, group_size=2, max_new_tokens=8, beta=0.0)
    assert dict(module.objectives) == {"imagery": latent}
    batch = module.collator()(views(2))
    assert "imagery" in batch.targets and "latent" not in batch.targets
    rollout = module.roll_out(batch)
    reward = rollout.rewards.values[rollout.rewards.names.index("latent3d")]
    assert reward.shape == (4,) and ((reward > 0) & (reward < 1)).all()  # the teacher was found for every sample


# -- the shared base -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["SpatialVLM", "SpatialGRPO"])
def test_both_modules_give_the_warmup_the_trainers_total_steps_and_skip_frozen_parameters(tiny_cache, kind):
    schedule = lambda optimizer: WarmupLinear(optimizer, warmup_steps=2)  # noqa: E731
    backbone = QwenVL("tiny:qwen2_5_vl")
    if kind == "SpatialVLM":
        module = SpatialVLM(backbone, scheduler=schedule, freeze=[r"\.visual\."])
    else:
        module = SpatialGRPO(backbone, group_size=2, max_new_tokens=4, beta=0.0, scheduler=schedule,
                             freeze=[r"\.visual\."])
    module._trainer = SimpleNamespace(estimated_stepping_batches=37)
    config = module.configure_optimizers()
    assert config["lr_scheduler"]["scheduler"].total_steps == 37
    assert config["lr_scheduler"]["interval"] == "step"
    trained = {id(p) for group in config["optimizer"].param_groups for p in group["params"]}
    expected = {id(p) for n, p in module.named_parameters() if ".visual." not in n}
    assert trained == expected and len(trained) > 0
