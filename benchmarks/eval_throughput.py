"""Evaluation throughput: questions per second decoded at batch 8 against batch 1, and batch 8 with finished
rows dropped from the running batch against batch 8 with them masked to the end.

    OMP_NUM_THREADS=1 python benchmarks/eval_throughput.py [--pairs 5] [--questions 16] [--new-tokens 64]
        [--hidden 128] [--layers 3] [--lengths fixed|varied] [--stop-every 60] [--latent]

What ``thinkspace test`` / validation run per batch: ``SpatialModule.generate`` (greedy, the lean step), on
``--questions`` synthetic MindCube-style questions of 1-3 views at different image sizes (so the prompts have
different lengths), collated beforehand (collation runs in the data workers), on a tiny random-initialised
Qwen2.5-VL built offline, one thread. Sides: ``b1`` (each question alone), ``b8`` (batches of 8, finished
rows dropped: the default) and ``b8_mask`` (batches of 8, ``drop_finished: false``), interleaved after a
warm-up of each, the order rotated every round; each side's answers are checked to equal batch 1's.
``--lengths fixed``: no stop token, every answer ``--new-tokens`` long (the same work on every side).
``--lengths varied``: the decoder's matrices moved by 0.1 x N(0, 1) so its tokens vary, and every
``--stop-every``-th token id ends a row: answers of different lengths, as a real model's (printed).
``--latent``: a LatentAlignment slot (k = 8, start forced, hidden-state feedback) before the text.
Final lines: ``eval questions/s b8/b1: ratio R (median of N rounds; min..max)`` and the same for
``b8 dropped/masked``.
"""

from __future__ import annotations

import argparse
import os
import sys
import statistics
import time
import warnings
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from thinkspace.backbones import QwenVL  # noqa: E402
from thinkspace.backbones.tiny import tiny_model_dir  # noqa: E402
from thinkspace.data.datasets.synthetic import SyntheticSpatial  # noqa: E402
from thinkspace.modules.spatial_vlm import SpatialVLM  # noqa: E402
from thinkspace.objectives import LatentAlignment, TextCrossEntropy  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_line  # noqa: E402

SIZES = [(56, 56), (84, 56), (112, 84), (56, 112), (140, 112), (84, 84), (112, 56), (56, 84)]
BATCH = 8


def build(args: argparse.Namespace) -> tuple[SpatialVLM, list]:
    path = str(tiny_model_dir("qwen2_5_vl", hidden_size=args.hidden, num_layers=args.layers))
    torch.manual_seed(0)
    objectives = {"latent": LatentAlignment(k=8, projector_width=16)} if args.latent else {"text": TextCrossEntropy()}
    stops = [] if args.lengths == "fixed" else list(range(0, 10_000, args.stop_every))
    generation = {"max_new_tokens": args.new_tokens, "do_sample": False, "eos_token_id": stops}
    if args.latent:
        generation |= {"force_start": True}
    module = SpatialVLM(QwenVL(path), objectives=objectives, generation=generation).eval()
    if args.lengths == "varied":
        generator = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for param in module.backbone.language_model().parameters():
                if param.ndim == 2:
                    param.add_(0.1 * torch.randn(param.shape, generator=generator))
    data = SyntheticSpatial(args.questions, image_size=56, num_views=(1, 3), settings=["leftmost"],
                            num_objects=(3, 4), shuffle_options=False, seed=3)
    questions = [replace(data[i], response=None, frames=[f.resize(SIZES[i % len(SIZES)]) for f in data[i].frames])
                 for i in range(args.questions)]
    collate = module.backbone.collator({}, None, with_response=False)  # prompts only: no targets
    return module, [collate(questions[i:i + 1]) for i in range(len(questions))] + [
        collate(questions[i:i + BATCH]) for i in range(0, len(questions), BATCH)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="rounds of the three sides")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--lengths", choices=["fixed", "varied"], default="fixed")
    parser.add_argument("--stop-every", type=int, default=60, help="varied: every n-th token id ends a row")
    parser.add_argument("--latent", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.questions % BATCH:
        parser.error(f"--questions must be a multiple of {BATCH}")
    torch.set_num_threads(args.threads)
    print(machine_line(args.threads), flush=True)
    module, batches = build(args)
    singles, eights = batches[:args.questions], batches[args.questions:]

    def run(side: str) -> tuple[float, list[list[int]]]:
        start = time.perf_counter()
        if side == "b1":
            outs = [module.decode(b) for b in singles]
        else:
            outs = [module.decode(b, drop_finished=side == "b8") for b in eights]
        took = time.perf_counter() - start
        tokens = [row[mask].tolist() for out in outs for row, mask in zip(out.tokens, out.completion_mask)]
        return took, tokens

    sides = ["b1", "b8", "b8_mask"]
    with torch.no_grad():
        warm = {side: run(side)[1] for side in sides}
        lengths = [len(t) for t in warm["b1"]]
        print(f"model: hidden {args.hidden}, {args.layers} layers{', latent slot k 8' if args.latent else ''}; "
              f"{args.questions} questions, answer lengths {lengths}; same answers at batch 8 as at batch 1: "
              f"{warm['b8'] == warm['b1']}, masked: {warm['b8_mask'] == warm['b1']}", flush=True)
        times: dict[str, list[float]] = {side: [] for side in sides}
        for round_ in range(args.pairs):
            order = sides[round_ % 3:] + sides[:round_ % 3]
            for side in order:
                times[side].append(run(side)[0])
            print(f"round {round_}: " + ", ".join(f"{s} {times[s][-1]:.3f} s" for s in sides), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    for side in sides:
        print(f"{side}: {args.questions / statistics.median(times[side]):.1f} questions/s (median)")
    for name, slow, fast in (("b8/b1", "b1", "b8"), ("b8 dropped/masked", "b8_mask", "b8")):
        ratios = [s / f for s, f in zip(times[slow], times[fast])]
        print(f"eval questions/s {name}: ratio {statistics.median(ratios):.2f} (median of {len(ratios)} rounds; "
              f"{min(ratios):.2f}..{max(ratios):.2f})")


if __name__ == "__main__":
    main()
