"""Measured CPU peak of a decoder's forward + backward against memory_estimate.py's activation formula.

    python benchmarks/activation_memory.py [--hidden 256] [--layers 36] [--tokens 2048] [--threads 2]

The real Qwen2 decoder (transformers' ``Qwen2Model``: the text decoder of Qwen2.5-VL and of
LLaVA-Video-7B-Qwen2) at the real depth and a realistic token count, with only the width reduced:
``--hidden`` wide, Qwen2.5-VL-3B's proportions kept (intermediate 5.375 x hidden, heads of 128
channels, 8 query heads per key/value head, at least one). One sequence of ``--tokens`` runs
forward and backward (loss: the mean square of the last hidden state) in four settings, each in a
fresh subprocess:

* ``autocast``: float32 weights under bf16 autocast (Lightning's ``bf16-mixed``, as DDP trains);
* ``bf16``: bf16 weights, no autocast (what FSDP2's ``param_dtype: bfloat16`` and DeepSpeed's bf16
  mode compute with);

each with gradient checkpointing off and on (transformers' non-reentrant checkpoint per layer, as
``gradient_checkpointing: true`` enables). A warm-up step on 64 tokens first (kernels, thread
pools, the gradients' buffers), then the peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the step) minus the resident set at that moment is the step's
peak. The children run with glibc's mmap threshold fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``):
with the default, growing threshold, freed large blocks stayed resident and the peak read 300 MiB
more than the tensors held (36 layers, hidden 256). It is compared with :func:`memory_estimate.step_activation_bytes` at the same width. Final line:
``activation memory: ratio <measured/predicted> (median of 4 settings; min..max)``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_estimate import step_activation_bytes  # noqa: E402

MIB = 1024**2
SETTINGS = [("autocast", False), ("autocast", True), ("bf16", False), ("bf16", True)]


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # "<compute>,<0|1>"
    return parser.parse_args(argv)


def decoder_config(hidden: int, layers: int, tokens: int):
    """Qwen2.5-VL-3B's decoder proportions at width ``hidden``."""
    from transformers import Qwen2Config

    heads = max(1, hidden // 128)
    return Qwen2Config(hidden_size=hidden, intermediate_size=round(hidden * 11008 / 2048), num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=max(1, heads // 8), vocab_size=16,
                       max_position_embeddings=tokens)


def resident_and_peak() -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of this process in bytes."""
    with open("/proc/self/status") as f:
        status = f.read()
    return tuple(int(re.search(rf"{k}:\s+(\d+)", status).group(1)) * 1024 for k in ("VmRSS", "VmHWM"))


def step(model, x: torch.Tensor, autocast: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        hidden = model(inputs_embeds=x).last_hidden_state
    hidden.float().square().mean().backward()


def child(args: argparse.Namespace) -> None:
    from transformers import Qwen2Model

    compute, checkpointing = args.child.split(",")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if compute == "bf16" else torch.float32
    model = Qwen2Model(decoder_config(args.hidden, args.layers, args.tokens)).to(dtype).train()
    if checkpointing == "1":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    step(model, torch.randn(1, 64, args.hidden, dtype=dtype), compute == "autocast")  # warm-up; allocates .grad
    x = torch.randn(1, args.tokens, args.hidden, dtype=dtype)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    baseline, _ = resident_and_peak()
    step(model, x, compute == "autocast")
    _, peak = resident_and_peak()
    trainable = sum(p.numel() for p in model.parameters())
    print(json.dumps({"peak": peak - baseline, "trainable": trainable}))


def main() -> None:
    args = arguments()
    if args.child is not None:
        return child(args)
    config = decoder_config(args.hidden, args.layers, args.tokens)
    print(f"Qwen2 decoder: hidden {config.hidden_size}, intermediate {config.intermediate_size}, "
          f"{config.num_attention_heads} heads / {config.num_key_value_heads} key-value heads, {args.layers} layers, "
          f"{args.tokens} tokens, {args.threads} threads, torch {torch.__version__}")
    print("| compute | checkpointing | measured MiB | predicted MiB | measured / predicted |")
    print("| --- | --- | --- | --- | --- |")
    ratios = []
    for compute, checkpointing in SETTINGS:
        command = [sys.executable, os.path.abspath(__file__), "--child", f"{compute},{int(checkpointing)}"]
        for name in ("hidden", "layers", "tokens", "threads"):
            command += [f"--{name}", str(getattr(args, name))]
        # a fixed mmap threshold: glibc's default one grows with the blocks freed, keeping later large
        # blocks in the heap, where freed memory stays resident and no tensor holds it
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        predicted = step_activation_bytes(config, args.tokens, compute, checkpointing,
                                          autocast_copies=measured["trainable"] if compute == "autocast" else 0)
        ratios.append(measured["peak"] / predicted)
        print(f"| {compute} | {'on' if checkpointing else 'off'} | {measured['peak'] / MIB:.0f} | "
              f"{predicted / MIB:.0f} | {ratios[-1]:.2f} |", flush=True)
    print(f"activation memory: ratio {statistics.median(ratios):.2f} (median of {len(ratios)} settings; "
          f"{min(ratios):.2f}..{max(ratios):.2f})")


if __name__ == "__main__":
    main()
