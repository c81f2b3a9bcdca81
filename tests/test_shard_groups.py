"""FSDP2's groups never mix dtypes: bf16 backbone, float32 heads, camera prior and LoRA adapters."""

import pytest
import torch
from torch import nn

from thinkspace.backbones import QwenVL
from thinkspace.backbones.lora import LoraSettings
from thinkspace.cues import CameraPrior
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LayoutReconstruction, Situation, TextCrossEntropy
from thinkspace.training.strategies import layer_classes
from thinkspace.teachers import OracleGeometryTeacher
from thinkspace.training.shard_groups import shard_groups


def _record(model, units):
    """Run :func:`shard_groups` with a stand-in for ``fully_shard`` that records each group's new parameters."""
    taken: set[int] = set()
    groups: list[tuple[str, bool, set[torch.dtype]]] = []

    def shard(module, name, is_unit):
        new = [p for p in module.parameters() if id(p) not in taken]
        taken.update(id(p) for p in new)
        groups.append((name, is_unit, {p.dtype for p in new}))

    order = shard_groups(model, units, shard)
    assert order == [name for name, _, _ in groups]
    assert taken == {id(p) for p in model.parameters()}  # every parameter in exactly one group
    return groups


def test_a_bf16_backbone_with_fp32_heads_prior_and_lora_splits_into_one_dtype_groups(tiny_cache):
    backbone = QwenVL("tiny:qwen2_5_vl", dtype="bfloat16", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    module = SpatialVLM(backbone, objectives={"text": TextCrossEntropy(), "layout": LayoutReconstruction(),
                                              "situation": Situation()},
                        cues={"camera": CameraPrior(teacher=OracleGeometryTeacher())})
    dtypes = {p.dtype for p in module.parameters()}
    assert dtypes == {torch.bfloat16, torch.float32}  # the mix torch refuses in one group
    groups = _record(module, layer_classes(module))
    assert all(len(d) <= 1 for _, _, d in groups), [g for g in groups if len(g[2]) > 1]
    units = [name for name, is_unit, _ in groups if is_unit]
    assert len(units) == 5 and all(n.endswith(("layers.0", "layers.1", "layers.2", "blocks.0", "blocks.1"))
                                   for n in units)  # 3 decoder layers, 2 vision blocks
    assert groups[-1][:2] == ("", False) and groups[-1][2] == {torch.bfloat16}  # embeddings, tied head, norm
    fp32 = [name for name, is_unit, d in groups if d == {torch.float32}]
    assert any(".lora_A." in n for n in fp32) and any(".lora_B." in n for n in fp32)  # inside the bf16 layers
    assert any(n.startswith("objectives.layout.") for n in fp32)
    assert any(n.startswith("objectives.situation.") for n in fp32)
    assert any(n.startswith("cues.camera.") for n in fp32)
    # a LoRA group is sharded before the layer that holds it (FSDP2 shards bottom-up)
    names = [name for name, _, _ in groups]
    lora = next(n for n in names if ".layers.0." in n and "lora_A" in n)
    assert names.index(lora) < names.index(next(n for n in units if n.endswith("layers.0")))


def test_one_dtype_throughout_is_one_group_per_unit_and_the_root(tiny_cache):
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"))
    groups = _record(module, layer_classes(module))
    assert [is_unit for _, is_unit, _ in groups] == [True] * 5 + [False]
    assert {d for _, _, ds in groups for d in ds} == {torch.float32}


class MixedOwner(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.shift = nn.Parameter(torch.zeros(3, dtype=torch.bfloat16))


def test_a_module_holding_two_dtypes_itself_is_refused_by_name():
    model = nn.Sequential(nn.Linear(3, 3), MixedOwner())
    with pytest.raises(ValueError, match=r"FSDP2: module 1 \(MixedOwner\) holds parameters of dtypes "
                                         r"\['torch.bfloat16', 'torch.float32'\] directly; a sharded group needs one"):
        shard_groups(model, set(), lambda *args: None)


def test_the_root_keeps_the_dtype_of_tied_embeddings_though_most_elements_have_another():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.Embedding(4, 2), nn.Linear(2, 4, bias=False))
    model[:2].to(torch.bfloat16)  # 144 bf16 elements (a frozen vision tower's stem) against 8 tied float32 ones
    model[3].weight = model[2].weight
    groups = _record(model, set())
    assert groups == [("0", False, {torch.bfloat16}), ("1", False, {torch.bfloat16}), ("", False, {torch.float32})]


def test_tied_parameters_of_two_dtypes_in_one_group_are_refused():
    model = nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 4, bias=False), nn.Embedding(4, 2), nn.Linear(2, 4))
    model[2:].to(torch.bfloat16)
    model[1].weight, model[3].weight = model[0].weight, model[2].weight
    with pytest.raises(ValueError, match=r"FSDP2: 2.weight \(torch.bfloat16\) is shared with another module; shared "
                                         r"parameters must have the dtype of the rest \(torch.float32\)"):
        shard_groups(model, set(), lambda *args: None)
