"""Where a thinkspace GRPO step spends its time, phase by phase (the settings of ``grpo_vs_trl.py``).

    OMP_NUM_THREADS=1 python benchmarks/grpo_phases.py [--steps 25] [--hidden 128] [--layers 3] [--image 56 112]
        [--views 1]

The thinkspace side of ``benchmarks/grpo_vs_trl.py`` (same tiny Qwen2.5-VL, data, rewards, G = 8,
32 tokens, beta 0.04, one thread; AdamW fused as there, or ``--optimizer default``: the module's
default, torch's per-parameter AdamW), one Lightning fit of
``--warmup + --steps`` steps; each phase's median over the measured steps, in ms:

* ``decode``: the rollout's decoding (prefill and tokens; ``SpatialGRPO.decode``, ``_decode`` in older
  checkouts);
* ``reference``: the frozen reference's log-probabilities (``reference_logprobs``);
* ``policy``: the policy's scoring pass (``logprobs``), the graph the backward runs through;
* ``rest of forward``: the training step without those three (rewards, advantages, loss, logging);
* ``backward``, ``optimizer`` (the step and zeroing the gradients) and ``step`` (the end of one step
  to the end of the next: the sum plus data loading and Lightning's loop).

It passes only constructor arguments every version since the shared-prefix rollout takes, so it
measures an older checkout too: ``PYTHONPATH=<checkout> python benchmarks/grpo_phases.py`` (the
before/after table in ``docs/benchmarks.md``). Final line: ``phases (ms): decode X, ...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import lightning as L  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpo_vs_trl import REWARDS, add_setting_arguments, setting  # noqa: E402

from thinkspace.backbones import QwenVL  # noqa: E402
from thinkspace.data.datamodule import SpatialDataModule  # noqa: E402
from thinkspace.rl import SpatialGRPO  # noqa: E402

#: the module's methods timed as phases (each returns when its work is done: the CPU runs synchronously); the
#: first name the module has (the rollout's decode was ``_decode`` before the one ``decode`` of both modules)
TIMED_METHODS = {"decode": ("_decode", "decode"), "reference": ("reference_logprobs",), "policy": ("logprobs",)}


class PhaseTimer(L.Callback):
    """Times the training step, backward, optimizer step and whole step through Lightning's hooks."""

    def __init__(self, times: dict[str, list[float]]) -> None:
        self.times = times
        self.last_end: float | None = None

    def on_train_batch_start(self, *args) -> None:
        self.batch_start = time.perf_counter()

    def on_before_backward(self, *args) -> None:
        self.backward_start = time.perf_counter()
        self.times["forward"].append(self.backward_start - self.batch_start)

    def on_after_backward(self, *args) -> None:
        self.backward_end = time.perf_counter()
        self.times["backward"].append(self.backward_end - self.backward_start)

    def on_train_batch_end(self, *args) -> None:
        end = time.perf_counter()
        self.times["optimizer"].append(end - self.backward_end)
        if self.last_end is not None:
            self.times["step"].append(end - self.last_end)
        self.last_end = end


def timed(module: SpatialGRPO, times: dict[str, list[float]]) -> None:
    """Wrap :data:`TIMED_METHODS` on ``module`` so each call's duration lands in ``times``."""
    for phase, names in TIMED_METHODS.items():
        name = next(n for n in names if hasattr(module, n))
        method = getattr(module, name)

        def wrapper(*args, _method=method, _phase=phase, **kwargs):
            start = time.perf_counter()
            result = _method(*args, **kwargs)
            times[_phase].append(time.perf_counter() - start)
            return result

        setattr(module, name, wrapper)


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    add_setting_arguments(parser)
    parser.add_argument("--optimizer", choices=["fused", "default"], default="fused",
                        help="fused AdamW (as grpo_vs_trl.py) or the module's default")
    args = parser.parse_args()
    torch.set_num_threads(1)
    path, data = setting(args)
    L.seed_everything(0)
    optimizer = {"optimizer": lambda p: torch.optim.AdamW(p, lr=1e-5, fused=True)} if args.optimizer == "fused" else {}
    module = SpatialGRPO(QwenVL(path), rewards={f.__name__: f for f in REWARDS}, group_size=8, max_new_tokens=32,
                         stop_at_eos=False, temperature=1.0, beta=0.04, epsilon=0.2, **optimizer)
    times: dict[str, list[float]] = defaultdict(list)
    timed(module, times)
    trainer = L.Trainer(max_steps=args.warmup + args.steps, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[PhaseTimer(times)], use_distributed_sampler=False, num_sanity_val_steps=0)
    print(f"model: hidden {args.hidden}, {args.layers} layers; 2 prompts ({args.views} x {args.image[0]}x"
          f"{args.image[1]} px) x G 8 x 32 tokens; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    trainer.fit(module, SpatialDataModule(train=data, batch_size=2))
    median = {phase: statistics.median(values[args.warmup:]) * 1000 for phase, values in times.items()}
    timed_sum = sum(median[phase] for phase in TIMED_METHODS)
    median["rest of forward"] = median.pop("forward") - timed_sum
    order = [*TIMED_METHODS, "rest of forward", "backward", "optimizer", "step"]
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    print("phases (ms): " + ", ".join(f"{phase} {median[phase]:.1f}" for phase in order))
    return median


if __name__ == "__main__":
    main()
