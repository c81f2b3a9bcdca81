"""Decoding under FSDP2 on two CPU processes, rows stopping at different steps on different ranks.

Run by ``tests/test_sharded.py`` as ``torchrun --standalone --nproc_per_node 2 sharded_decode_probe.py OUT``.
Every rank first decodes both prompts unsharded, each alone, and picks as the stop token one that prompt
0's greedy continuation emits as its second or third token and prompt 1's never does (the weights spread by seeded noise, so that prompts continue differently); it decodes its own
prompt unsharded with that stop token (the reference: one process). Then the tiny Qwen2.5-VL is sharded as the FSDP2 strategy shards it (decoder layers and
vision blocks as units, the rest in a root that holds the embeddings and the output head, its
``generate`` registered as an FSDP forward as the strategy registers ``validation_step``), and rank
``r`` decodes prompt ``r`` alone: rank 0's row stops after a few tokens, rank 1's runs to the last one.
Each rank saves ``OUT/rank{r}.pt``: the reference and sharded results, for thinkspace's decoding and
for ``sampler: transformers``, and how many times its decoder ran. Last, every rank decodes both prompts
as one sharded batch: prompt 0's row stops and is dropped from the running batch (the cache's rows of a
sharded decoder), prompt 1's runs on; both are compared with each prompt decoded alone, unsharded.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

STEPS = 24  # three of the loop's 8-token stop tests: rank 0 is done at the first, rank 1 at none


class Decoding(nn.Module):
    """The FSDP2 root around the backbone; ``generate`` runs the model (an FSDP forward)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def generate(self, batch, **settings):
        from thinkspace.generation.decode import decode

        return decode(self.backbone, batch, **settings)


def prompts(backbone) -> list:
    """Two one-prompt batches (prompt 0 for rank 0, prompt 1 for rank 1), then both prompts in one batch."""
    from thinkspace.data.datasets.synthetic import SyntheticSpatial

    data = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(2, 3),
                            shuffle_options=False, seed=5)
    collate = backbone.collator(with_response=False)
    samples = [replace(data[i], response=None) for i in range(2)]
    return [collate([sample]) for sample in samples] + [collate(samples)]


def spread(backbone: nn.Module, scale: float = 0.2) -> None:
    """Add seeded noise to every weight: the tiny random model's greedy continuations repeat one token
    (the same for every prompt); with the noise, two prompts continue differently."""
    generator = torch.Generator().manual_seed(0)  # the same weights on every rank
    with torch.no_grad():
        for param in backbone.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)


def stop_token(first: list[int], second: list[int]) -> int:
    """A token among ``first``'s second and third (so the stop is a decoded step, not the first token)
    that ``second`` never emits."""
    for token in first[1:3]:
        if token not in second:
            return token
    raise AssertionError(f"no token of {first[:3]} is absent from {second}")


def kept(decoded) -> list[list[int]]:
    """Each row's completion tokens (up to and including its stop token)."""
    return [row[mask].tolist() for row, mask in zip(decoded.tokens, decoded.completion_mask)]


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    from thinkspace.backbones import QwenVL
    from thinkspace.training.shard_groups import shard_groups
    from thinkspace.training.strategies import layer_classes

    backbone = QwenVL("tiny:qwen2_5_vl").eval()
    spread(backbone)
    *batches, both = prompts(backbone)
    model = Decoding(backbone)
    free = [model.generate(b, max_new_tokens=STEPS, eos_token_id=[]).tokens[0].tolist() for b in batches]
    eos = stop_token(*free)
    mine = batches[rank]
    reference = model.generate(mine, max_new_tokens=STEPS, eos_token_id=eos)  # one process, unsharded
    alone = [kept(model.generate(b, max_new_tokens=STEPS, eos_token_id=eos))[0] for b in batches]
    reference_hf = model.generate(mine, sampler="transformers", max_new_tokens=STEPS, eos_token_id=eos,
                                  do_sample=False)

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    shard_groups(model, layer_classes(backbone.hf), lambda module, name, unit: fully_shard(module, mesh=mesh))
    register_fsdp_forward_method(model, "generate")
    calls = []
    backbone.language_model().register_forward_pre_hook(lambda *args: calls.append(1))
    sharded = model.generate(mine, max_new_tokens=STEPS, eos_token_id=eos)
    decoder_calls = len(calls)
    sharded_hf = model.generate(mine, sampler="transformers", max_new_tokens=STEPS, eos_token_id=eos, do_sample=False)
    together = model.generate(both, max_new_tokens=STEPS, eos_token_id=eos)  # row 0 dropped at token 8
    from thinkspace.generation.rank_agreement import any_rank_needs

    # validation's choice: only rank 1 needs texts (both decode), no rank (none), every rank (all)
    needs = [any_rank_needs(rank == 1, model), any_rank_needs(False, model), any_rank_needs(True, model)]
    torch.save({"eos": eos, "reference": kept(reference), "reference_hf": reference_hf.tokens.tolist(),
                "sharded": kept(sharded), "sharded_hf": sharded_hf.tokens.tolist(),
                "steps": sharded.tokens.shape[1], "decoder_calls": decoder_calls,
                "decoder_step": sharded.decoder_step, "texts": sharded.texts, "alone": alone,
                "together": kept(together), "needs": needs}, out / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
