"""Training-loop overhead: a thinkspace step (Lightning + SpatialVLM + objectives + mixer)
against a bare PyTorch loop (forward with labels, backward, AdamW) on the same model and
the same pre-collated batches, interleaved in one process.

    python benchmarks/loop_overhead.py [--pairs 3] [--steps 40] [--hidden 512] [--layers 4]

Prints per-pair ratios and a final line
``loop overhead: ratio <thinkspace/bare> (median of N pairs; min..max)``. Target: <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import lightning as L  # noqa: E402
import torch  # noqa: E402

from thinkspace.backbones import QwenVL  # noqa: E402
from thinkspace.backbones.tiny import tiny_model_dir  # noqa: E402
from thinkspace.data.datasets.squares import ColouredSquares  # noqa: E402
from thinkspace.modules.spatial_vlm import SpatialVLM  # noqa: E402
from thinkspace.objectives import TextCrossEntropy  # noqa: E402


class StepTimer(L.Callback):
    """Wall time of every training step, batch end to batch end."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_end(self, *args) -> None:
        self.stamps.append(time.perf_counter())


def thinkspace_seconds(module: SpatialVLM, batches: list, warmup: int) -> float:
    """Median seconds per step of Lightning fit over ``batches`` (after ``warmup`` steps)."""
    timer = StepTimer()
    trainer = L.Trainer(
        max_steps=len(batches), accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], use_distributed_sampler=False,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    steps = [b - a for a, b in zip(timer.stamps[warmup:], timer.stamps[warmup + 1:])]
    return statistics.median(steps)


def bare_seconds(model: torch.nn.Module, batches: list, warmup: int) -> float:
    """Median seconds per step of forward(labels) + backward + AdamW."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    stamps = []
    for batch in batches:
        loss = model(**batch.inputs, labels=batch.labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        stamps.append(time.perf_counter())
    steps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]
    return statistics.median(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    path = tiny_model_dir("qwen2_5_vl", hidden_size=args.hidden, num_layers=args.layers, num_heads=8,
                          num_kv_heads=4, vision_hidden_size=128)
    module = SpatialVLM(QwenVL(str(path)), objectives={"text": TextCrossEntropy()},
                        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-4))
    collate = module.collator()
    data = ColouredSquares(args.batch_size * (args.steps + args.warmup + 1), image_size=(56, 112), num_views=1)
    batches = [collate([data[i * args.batch_size + j] for j in range(args.batch_size)])
               for i in range(args.steps + args.warmup + 1)]
    params = sum(p.numel() for p in module.parameters())
    print(f"model: {params / 1e6:.1f}M parameters, batch {args.batch_size}, "
          f"{batches[0].inputs['input_ids'].shape[1]} tokens, torch {torch.__version__}, {args.threads} threads")

    ratios = []
    for pair in range(args.pairs):
        # alternate which side runs first so drift in machine load cancels
        if pair % 2 == 0:
            ours = thinkspace_seconds(module, batches, args.warmup)
            bare = bare_seconds(module.backbone.hf, batches, args.warmup)
        else:
            bare = bare_seconds(module.backbone.hf, batches, args.warmup)
            ours = thinkspace_seconds(module, batches, args.warmup)
        ratios.append(ours / bare)
        print(f"pair {pair}: thinkspace {ours * 1e3:.1f} ms/step, bare {bare * 1e3:.1f} ms/step, "
              f"ratio {ours / bare:.3f}")
    print(f"loop overhead: ratio {statistics.median(ratios):.3f} "
          f"(median of {len(ratios)} pairs; {min(ratios):.3f}..{max(ratios):.3f})")


if __name__ == "__main__":
    main()
