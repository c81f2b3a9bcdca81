"""Peak memory and time of one GRPO step's scoring: chosen-token log-probabilities in chunks vs materialised.

    python benchmarks/grpo_memory.py [--completions 8] [--tokens 1024] [--vocab 151936] [--hidden 64]
        [--layers 2] [--chunk 1024] [--pairs 3] [--steps 5] [--threads 2]

One step, as ``SpatialGRPO.training_step`` scores a rollout (``thinkspace/rl/rollout.py``): a narrow
Qwen2 decoder (``--hidden`` wide, untied ``--vocab``-token LM head, all weights trained) runs a
16-token prompt + ``--tokens`` completion tokens for ``--completions`` rows; the reference pass
(the same weights without gradients), the policy pass, GRPO's clipped loss with the k3 KL
(beta 0.04, random advantages), backward and an AdamW step. Both sides compute the log-probabilities
with :func:`thinkspace.rl.chosen_logprobs.chosen_logprobs`: ``--chunk`` tokens per chunk against
``chunk_tokens=0`` (every position's float32 logits at once, the code before chunking). The rollout's
decoding is not part of it: it computes ``[N, V]`` logits one token at a time on both sides.

Memory: each side runs in a fresh subprocess; its peak resident set (``ru_maxrss`` of the child,
``resource.getrusage``) minus its resident set just before the first step (model and inputs built)
is the step's peak. Sides alternate, materialised then chunked, ``--pairs`` times; each child runs
one warm-up step then ``--steps`` timed ones (median). The children's first-step log-probabilities
are compared (max |difference|). Final line:
``grpo memory: ratio <materialised/chunked peak> (median of N pairs; min..max); time ratio <chunked/materialised> ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402

from thinkspace.rl.chosen_logprobs import chosen_logprobs  # noqa: E402
from thinkspace.rl.loss import clipped_loss  # noqa: E402

GIB = 1024**3
PROMPT = 16


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--completions", type=int, default=8, help="N = B x G completions")
    parser.add_argument("--tokens", type=int, default=1024, help="completion tokens per row")
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=1024, help="tokens per chunk on the chunked side")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per child, after one warm-up step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # chunk size of a child
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(args: argparse.Namespace):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(hidden_size=args.hidden, intermediate_size=4 * args.hidden, num_hidden_layers=args.layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=args.vocab,
                         max_position_embeddings=PROMPT + args.tokens + 8, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(config).train()
    gen = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, args.vocab, (1, PROMPT), generator=gen).expand(args.completions, -1)
    completion = torch.randint(0, args.vocab, (args.completions, args.tokens), generator=gen)
    advantages = torch.randn(args.completions, generator=gen)
    return model, torch.cat([prompt, completion], 1), completion, advantages


def scores(model, ids, completion, chunk: int) -> torch.Tensor:
    """``[N, T]`` log-probabilities of the completion tokens (position ``t`` predicted by the one before)."""
    hidden = model.model(input_ids=ids).last_hidden_state[:, PROMPT - 1:-1]
    flat = chosen_logprobs(model.lm_head, hidden.reshape(-1, hidden.shape[-1]), completion.reshape(-1), 1.0, chunk)
    return flat.view(completion.shape)


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model, ids, completion, advantages = build(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    mask = torch.ones(completion.shape, dtype=torch.bool)
    baseline = resident_bytes()
    times, first = [], None
    for step in range(1 + args.steps):
        start = time.perf_counter()
        with torch.no_grad():
            ref = scores(model, ids, completion, args.child)
        logp = scores(model, ids, completion, args.child)
        loss, _ = clipped_loss(logp, logp.detach(), advantages, mask, beta=0.04, ref_logp=ref)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 0:
            first = {"logp": logp.detach(), "ref": ref, "loss": loss.detach()}
        else:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    torch.save(first, args.out)
    print(json.dumps({"peak": peak - baseline, "baseline": baseline, "step": statistics.median(times)}))


def run_side(args: argparse.Namespace, chunk: int, out: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", str(chunk), "--out", out]
    for name in ("completions", "tokens", "vocab", "hidden", "layers", "steps", "threads"):
        command += [f"--{name}", str(getattr(args, name))]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = arguments()
    if args.child is not None:
        return child(args)
    print(f"N {args.completions} x T {args.tokens} completion tokens, vocab {args.vocab}, hidden {args.hidden}, "
          f"{args.layers} layers, chunk {args.chunk}, {args.threads} threads, torch {torch.__version__}")
    memory, speed, worst = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            whole = run_side(args, 0, f"{tmp}/whole.pt")
            chunked = run_side(args, args.chunk, f"{tmp}/chunked.pt")
            a, b = torch.load(f"{tmp}/whole.pt"), torch.load(f"{tmp}/chunked.pt")
            worst = max(worst, *(float((a[k] - b[k]).abs().max()) for k in a))
            memory.append(whole["peak"] / chunked["peak"])
            speed.append(chunked["step"] / whole["step"])
            print(f"pair {pair}: peak materialised {whole['peak'] / GIB:.2f} GiB, chunked {chunked['peak'] / GIB:.2f} "
                  f"GiB (baselines {whole['baseline'] / GIB:.2f}, {chunked['baseline'] / GIB:.2f}); step "
                  f"materialised {whole['step']:.2f} s, chunked {chunked['step']:.2f} s", flush=True)
    print(f"max |difference| of log-probabilities, reference log-probabilities and loss: {worst:.2e}")
    print(f"grpo memory: ratio {statistics.median(memory):.2f} (median of {len(memory)} pairs; "
          f"{min(memory):.2f}..{max(memory):.2f}); time ratio chunked/materialised {statistics.median(speed):.2f} "
          f"({min(speed):.2f}..{max(speed):.2f})")


if __name__ == "__main__":
    main()
