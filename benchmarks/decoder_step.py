"""The per-token decode step: the Hugging Face step against the lean one, on the same cache and inputs.

    OMP_NUM_THREADS=1 python benchmarks/decoder_step.py [--pairs 15] [--steps 48] [--hidden 128] [--layers 3]
        [--rows 16] [--compile] [--packing]

A tiny random-initialised Qwen2.5-VL (built offline) prefills ``--rows / 8`` prompts (one
ColouredSquares image each), repeated 8 times as a GRPO group does. Each side then decodes
``--steps`` tokens from that prefill, fed the same pre-drawn token embeddings and 3D positions
the decode loop uses:

* ``hf``: ``language_model(inputs_embeds, attention_mask, position_ids, past_key_values)`` per
  token with the mask prepared once (``DecodeMask``), the decode loop's step today; the
  ``DynamicCache`` is cropped back to the prompt after each run;
* ``lean``: :class:`~thinkspace.generation.decoder_step.LeanDecoder`, its per-rollout build
  (weights fused, cache copied into the static buffers, rotary tables) counted in its time.

Runs alternate hf, lean, lean, hf, hf, lean, ... (the order flips every pair, so a drift in the
machine's load does not favour one side) after one warm-up run of each; each pair's ratio is hf's
time over lean's. ``--compile`` adds ``lean-compiled`` (``torch.compile`` of the lean step; the
compile happens in the warm-up and is reported) and its ratio to ``lean``. ``--packing`` adds
``lean-packed`` and ``lean-unpacked`` (the projections packed for oneDNN or not, whatever the
default for the model: :mod:`thinkspace.generation.packed_linear`; packing counted in the build)
and the ratio unpacked / packed. The one-minute load
average is printed at start and end: the machine is shared. Final line:
``decode step hf/lean: ratio R (median of N pairs; min..max); hf X ms/token, lean Y ms/token``.
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
from thinkspace.generation.decode_state import DecodeMask  # noqa: E402
from thinkspace.generation.decoder_step import LeanDecoder  # noqa: E402
from thinkspace.generation.prefill import prefill  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_line  # noqa: E402

GROUP = 8


def hf_run(language_model, pre, embeds, positions) -> float:
    """Seconds to decode every step with the Hugging Face step (cache cropped back afterwards)."""
    steps = embeds.shape[0]
    start = time.perf_counter()
    mask = DecodeMask(pre.mask, steps)
    live = torch.ones(embeds.shape[1], dtype=torch.bool)
    for t in range(steps):
        language_model(inputs_embeds=embeds[t][:, None], attention_mask=mask.step(t, live),
                       position_ids=positions[..., t:t + 1], past_key_values=pre.cache, use_cache=True)
    elapsed = time.perf_counter() - start
    pre.cache.crop(-steps)  # back to the prompt
    return elapsed


def lean_run(language_model, pre, embeds, positions, compile: bool = False, pack: bool | None = None) -> float:
    """Seconds to build a lean decoder from the prefill and decode every step with it."""
    steps = embeds.shape[0]
    start = time.perf_counter()
    lean = LeanDecoder(language_model, pre.cache, pre.mask, positions, compile=compile, pack=pack)
    live = torch.ones(embeds.shape[1], dtype=torch.bool)
    for t in range(steps):
        lean.step(embeds[t], t, live)
    return time.perf_counter() - start


def build_seconds(language_model, pre, positions, repeats: int = 5) -> float:
    """Median seconds of one lean build alone (context for the per-rollout cost)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        LeanDecoder(language_model, pre.cache, pre.mask, positions)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def summary(name: str, ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f} (median of {len(ratios)} pairs; {min(ratios):.2f}..{max(ratios):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--rows", type=int, default=16, help="decoded rows (a multiple of the group, 8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the lean step")
    parser.add_argument("--packing", action="store_true", help="also time the lean step with and without packing")
    args = parser.parse_args()
    if args.rows % GROUP:
        parser.error(f"--rows {args.rows}: expected a multiple of the group size {GROUP}")
    torch.set_num_threads(args.threads)
    print(machine_line(args.threads), flush=True)

    path = str(tiny_model_dir("qwen2_5_vl", hidden_size=args.hidden, num_layers=args.layers))
    backbone = QwenVL(path)
    backbone.hf.eval()
    language_model = backbone.hf.model.language_model
    samples = [ColouredSquares(args.rows // GROUP, seed=1)[i] for i in range(args.rows // GROUP)]
    batch = backbone.collator({}, None, with_response=False)(samples).prompts(backbone.tokenizer.pad_token_id)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pre = prefill(backbone, batch).repeat(GROUP)
        positions = pre.positions(args.steps)
        tokens = torch.randint(0, backbone.hf.config.text_config.vocab_size, (args.steps, args.rows),
                               generator=generator)
        embeds = backbone.hf.get_input_embeddings()(tokens)  # [T, N, D]
        print(f"model: hidden {args.hidden}, {args.layers} layers; {args.rows} rows, prompt length "
              f"{pre.mask.shape[1]}, {args.steps} steps per run", flush=True)
        sides = {"hf": lambda: hf_run(language_model, pre, embeds, positions),
                 "lean": lambda: lean_run(language_model, pre, embeds, positions)}
        if args.compile:
            start = time.perf_counter()
            lean_run(language_model, pre, embeds, positions, compile=True)
            print(f"lean-compiled: first run (compiles) {time.perf_counter() - start:.1f} s", flush=True)
            sides["lean-compiled"] = lambda: lean_run(language_model, pre, embeds, positions, compile=True)
        if args.packing:
            sides["lean-packed"] = lambda: lean_run(language_model, pre, embeds, positions, pack=True)
            sides["lean-unpacked"] = lambda: lean_run(language_model, pre, embeds, positions, pack=False)
        for run in sides.values():  # warm-up
            run()
        print(f"lean build alone: {build_seconds(language_model, pre, positions) * 1e3:.2f} ms per rollout")
        times: dict[str, list[float]] = {name: [] for name in sides}
        for pair in range(args.pairs):
            order = list(sides) if pair % 2 == 0 else list(reversed(sides))  # cancels drift within a pair
            for name in order:
                times[name].append(sides[name]())
            line = ", ".join(f"{name} {times[name][-1] / args.steps * 1e3:.3f} ms/token" for name in sides)
            print(f"pair {pair}: {line}; hf/lean {times['hf'][-1] / times['lean'][-1]:.2f}", flush=True)
    ratios = [h / lean for h, lean in zip(times["hf"], times["lean"])]
    per_token = {name: statistics.median(values) / args.steps * 1e3 for name, values in times.items()}
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    if args.compile:
        compiled = [lean / c for lean, c in zip(times["lean"], times["lean-compiled"])]
        print(f"decode step lean/lean-compiled: ratio {summary('compiled', compiled)}; "
              f"lean-compiled {per_token['lean-compiled']:.3f} ms/token")
    if args.packing:
        packing = [u / p for u, p in zip(times["lean-unpacked"], times["lean-packed"])]
        print(f"decode step lean-unpacked/lean-packed: ratio {summary('packing', packing)}; unpacked "
              f"{per_token['lean-unpacked']:.3f} ms/token, packed {per_token['lean-packed']:.3f} ms/token")
    print(f"decode step hf/lean: ratio {summary('lean', ratios)}; hf {per_token['hf']:.3f} ms/token, "
          f"lean {per_token['lean']:.3f} ms/token")


if __name__ == "__main__":
    main()
