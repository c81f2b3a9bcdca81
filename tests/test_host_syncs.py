"""Host reads (device-to-host syncs on a GPU) in the objectives' losses, counted on the CPU.

Each ``.item()``, ``.tolist()``, ``bool(tensor)``, ``nonzero`` or boolean-mask index makes the host wait
for the device. The losses keep only the reads they need (docs/scaling.md, "Host syncs in the step"):
text cross-entropy one (the supervised positions' count decides the logits' shape), the situation
objective one (its token check), layout none.
"""

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from test_layout_situation import joint_stack, situated_samples
from thinkspace.backbones import QwenVL

READS = {Tensor.item: "item", Tensor.tolist: "tolist", Tensor.__bool__: "bool", Tensor.__int__: "int",
         Tensor.__float__: "float", Tensor.__index__: "index", Tensor.nonzero: "nonzero", torch.nonzero: "nonzero",
         torch.equal: "equal", Tensor.any: None}


class HostReads(TorchFunctionMode):
    """Records every tensor operation that reads a value back to the host."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = READS.get(func)
        if name:
            self.reads.append(name)
        elif func is Tensor.__getitem__:
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            if any(isinstance(i, Tensor) and i.dtype == torch.bool for i in index):
                self.reads.append("boolean index")
        return func(*args, **(kwargs or {}))


def test_losses_read_back_only_what_they_need(tiny_cache):
    torch.manual_seed(0)
    backbone = QwenVL("tiny:qwen2_5_vl")
    objectives = joint_stack(backbone)
    batch = backbone.collator(objectives)(situated_samples())
    out = backbone(batch)
    reads = {}
    for name, objective in objectives.items():
        with HostReads() as mode:
            terms = objective.loss(out, batch)
            sum(terms.values()).backward(retain_graph=True)
        reads[name] = mode.reads
    assert reads == {"text": ["nonzero"], "layout": [], "situation": ["bool"]}
    # the counter sees each kind of read
    with HostReads() as mode:
        assert bool(torch.ones(1)) and torch.ones(2)[torch.tensor([True, False])].tolist() == [1.0]
    assert mode.reads == ["bool", "boolean index", "tolist"]
