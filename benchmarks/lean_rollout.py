"""A GRPO group rollout with the lean decode step against the same rollout with the Hugging Face step.

    OMP_NUM_THREADS=1 python benchmarks/lean_rollout.py [--pairs 15] [--hidden 128] [--layers 3] [--new-tokens 32]
        [--latent]

What the lean step buys where GRPO spends its time: ``decode`` on 2 ColouredSquares
prompts x G = 8 (one prefill, 16 decoded rows), exactly ``--new-tokens`` sampled tokens per row
(no stop tokens), the same per-prompt generators on both sides, a tiny random-initialised
Qwen2.5-VL built offline, one thread. ``--latent`` opens a latent slot at the start (feedback
mode, ``--new-tokens - 2`` latent steps). Sides alternate ``decode_step="hugging_face"`` and
``"lean"`` (the order flips every pair) after a warm-up of each; the rollouts are checked to give
the same tokens. Each pair's ratio is the Hugging Face rollout's time over the lean one's (prefill,
sampling and bookkeeping included on both). The one-minute load average is printed at start and
end. Final line: ``rollout hf/lean: ratio R (median of N pairs; min..max); hf X ms, lean Y ms``.
"""

from __future__ import annotations

import argparse
import os
import sys
import statistics
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from thinkspace.backbones import QwenVL  # noqa: E402
from thinkspace.backbones.tiny import tiny_model_dir  # noqa: E402
from thinkspace.data.datasets.squares import ColouredSquares  # noqa: E402
from thinkspace.generation.decode import decode  # noqa: E402
from thinkspace.modules.spatial_vlm import SpatialVLM  # noqa: E402
from thinkspace.objectives import LatentAlignment  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_line  # noqa: E402

GROUP, PROMPTS = 8, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--latent", action="store_true", help="a latent slot (feedback) at the start of each row")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line(args.threads), flush=True)
    path = str(tiny_model_dir("qwen2_5_vl", hidden_size=args.hidden, num_layers=args.layers))
    torch.manual_seed(0)
    module = SpatialVLM(QwenVL(path), objectives={"latent": LatentAlignment(k=args.new_tokens - 2,
                                                                            projector_width=16)}).eval()
    slot = module.objectives["latent"].slot if args.latent else None
    samples = [ColouredSquares(PROMPTS, seed=1)[i] for i in range(PROMPTS)]
    batch = module.backbone.collator({}, None, with_response=False)(samples)  # prompts only: no targets

    def rollout(step: str):
        generators = [torch.Generator().manual_seed(11 + i) for i in range(PROMPTS)]
        start = time.perf_counter()
        gen = decode(module.backbone, batch, slot, mode="feedback", max_new_tokens=args.new_tokens,
                     do_sample=True, group=GROUP, generator=generators, eos_token_id=[],
                     decode_step=step)
        return time.perf_counter() - start, gen

    sides = {"hf": "hugging_face", "lean": "lean"}
    with torch.no_grad():
        warm = {name: rollout(step)[1] for name, step in sides.items()}
        assert warm["lean"].decoder_step == "lean", warm["lean"].decoder_step
        same = torch.equal(warm["hf"].tokens, warm["lean"].tokens)
        print(f"model: hidden {args.hidden}, {args.layers} layers; {PROMPTS} prompts x G {GROUP}, "
              f"{warm['hf'].tokens.shape[1]} tokens per row{', latent slot' if args.latent else ''}; "
              f"same tokens on both sides: {same}", flush=True)
        times: dict[str, list[float]] = {name: [] for name in sides}
        for pair in range(args.pairs):
            for name in (sides if pair % 2 == 0 else list(reversed(sides))):
                times[name].append(rollout(sides[name])[0])
            print(f"pair {pair}: hf {times['hf'][-1] * 1e3:.1f} ms, lean {times['lean'][-1] * 1e3:.1f} ms; "
                  f"hf/lean {times['hf'][-1] / times['lean'][-1]:.2f}", flush=True)
    ratios = [h / lean for h, lean in zip(times["hf"], times["lean"])]
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    print(f"rollout hf/lean: ratio {statistics.median(ratios):.2f} (median of {len(ratios)} pairs; "
          f"{min(ratios):.2f}..{max(ratios):.2f}); hf {statistics.median(times['hf']) * 1e3:.1f} ms, "
          f"lean {statistics.median(times['lean']) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
