"""Training samples per second: the tiny composed backbone against the tiny Qwen2.5-VL.

    python benchmarks/composed_speed.py [--pairs 5] [--steps 20] [--batch 4] [--size 112]

Both backbones are built offline at about the same parameter count (printed): the composed
one (timm ViT of 4 blocks, 14 px patches, 2x2 average pooling, Qwen2 LM) and Qwen2.5-VL (2
vision blocks and its larger patch merger, 14 px patches, 2x2 merge), with the same text model
sizes, so a 112 px frame is 16 visual tokens for both.
A step = collate + forward + backward + AdamW with the text objective, on the same
pre-sampled synthetic batches (``leftmost``, 1-3 views); the two alternate in interleaved
pairs after a warm-up of each, in one process.

Last line: ``composed / qwen2.5-vl samples per second: ratio R (median of N pairs; min..max)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from thinkspace.backbones import ComposedVLM, QwenVL  # noqa: E402
from thinkspace.backbones.tiny import tiny_model_dir  # noqa: E402
from thinkspace.data.datasets.synthetic import SyntheticSpatial  # noqa: E402
from thinkspace.modules.spatial_vlm import SpatialVLM  # noqa: E402
from thinkspace.objectives import TextCrossEntropy  # noqa: E402


def build(backbone) -> tuple[SpatialVLM, torch.optim.Optimizer]:
    torch.manual_seed(0)
    module = SpatialVLM(backbone, objectives={"text": TextCrossEntropy()})
    return module, torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=3e-4)


def samples_per_second(module: SpatialVLM, optimizer: torch.optim.Optimizer, samples: list, steps: int,
                       batch: int) -> float:
    collate = module.collator()
    start = time.perf_counter()
    for step in range(steps):
        first = (step * batch) % (len(samples) - batch + 1)
        loss = module.losses(collate(samples[first:first + batch]))[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = SyntheticSpatial(32, image_size=args.size, num_views=(1, 3), settings=["leftmost"], num_objects=(3, 4))
    samples = [data[i] for i in range(len(data))]
    composed = ComposedVLM(str(tiny_model_dir("composed", vision_depth=4)))  # about Qwen2.5-VL's size
    sides = {"composed": build(composed), "qwen2.5-vl": build(QwenVL("tiny:qwen2_5_vl"))}
    for name, (module, _) in sides.items():
        params = sum(p.numel() for p in module.backbone.parameters())
        visual = module.collator()(samples[:1]).visual
        print(f"{name}: {params / 1e6:.3f}M parameters, {len(visual) // len(visual.grid)} visual tokens per "
              f"{args.size} px frame")
    for module, optimizer in sides.values():  # warm-up
        samples_per_second(module, optimizer, samples, 3, args.batch)
    ratios = []
    for pair in range(args.pairs):
        rate = {name: samples_per_second(*side, samples, args.steps, args.batch) for name, side in sides.items()}
        ratios.append(rate["composed"] / rate["qwen2.5-vl"])
        print(f"pair {pair}: composed {rate['composed']:.1f} samples/s, qwen2.5-vl {rate['qwen2.5-vl']:.1f} "
              f"samples/s, ratio {ratios[-1]:.3f}")
    print(f"composed / qwen2.5-vl samples per second: ratio {statistics.median(ratios):.3f} "
          f"(median of {len(ratios)} pairs; {min(ratios):.3f}..{max(ratios):.3f})")


if __name__ == "__main__":
    main()
