"""Host reads (device-to-host syncs on a GPU) in the objectives' losses and the decode loop, counted on
the CPU.

Each ``.item()``, ``.tolist()``, ``bool(tensor)``, ``nonzero`` or boolean-mask index makes the host wait
for the device. The losses keep only the reads they need (docs/scaling.md, "Host syncs in the step"):
text cross-entropy one (the supervised positions' count decides the logits' shape), the situation
objective one (its token check), layout none. The decode loop reads its rows' done flags once per stop
test (every 8 tokens), which decides both whether to stop and which rows run on, and once at the end
(how many steps hold a token).
"""

import pytest
import torch
from test_batched_decoding import DroppedRows, samples, varied
from test_layout_situation import joint_stack, situated_samples
from torch import Tensor
from torch.overrides import TorchFunctionMode

import thinkspace.generation.decode as decode_module
from thinkspace.backbones import LlavaOneVision, QwenVL
from thinkspace.generation.decode import decode
from thinkspace.generation.decode_loop import decode_loop

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


@pytest.mark.usefixtures("one_thread")
def test_the_decode_loop_reads_the_device_once_per_stop_test(tiny_cache, monkeypatch):
    backbone = varied(LlavaOneVision("tiny:llava_onevision"))
    backbone.hf.eval()
    reads = []

    def counted(*args, **kwargs):
        with HostReads() as mode:
            out = decode_loop(*args, **kwargs)
        reads.extend(mode.reads)
        return out

    monkeypatch.setattr(decode_module, "decode_loop", counted)
    dropped = DroppedRows(monkeypatch)
    out = decode(backbone, backbone.collator(with_response=False)(samples()), max_new_tokens=24,
                 eos_token_id=list(range(0, 1024, 9)))  # rows end at different steps
    assert dropped.sizes and dropped.sizes[0] < 8  # finished rows were dropped: the test chose rows too
    tests = min(3, (out.tokens.shape[1] - 1) // 8 + 1)  # at steps 7, 15, 23 until the last row stopped
    assert tests >= 2
    assert reads == ["tolist"] * tests + ["int"]  # and the trim at the end: steps holding a live token
