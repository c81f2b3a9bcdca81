"""The quickstart's training step at thinkspace's CPU thread policy against torch's default, on an
idle machine and with a competing busy process, interleaved in one run.

    python benchmarks/cpu_threads.py [--pairs 3] [--steps 40] [--warmup 3]

Builds the quickstart's model and data module from ``configs/quickstart.yaml`` (batch 32, one
data worker) and times ``Trainer.fit`` steps (validation off; each side's first ``--warmup``
steps untimed) with ``torch.set_num_threads(policy)`` (half the usable cores,
:func:`thinkspace.training.cpu_threads.default_cpu_threads`) and with torch's default (one per core).
"busy" runs a second process spinning on one core throughout (started and stopped here).
Prints per-pair steps/s and, per condition, a final line
``<condition>: ratio <policy/default steps per second> (median of N pairs; min..max)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import lightning.pytorch as L  # noqa: E402
import torch  # noqa: E402

from thinkspace.training.cpu_threads import default_cpu_threads, usable_cores  # noqa: E402
from thinkspace.inference.build import cli_from_config  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


class StepTimer(L.Callback):
    """Wall time of every training step, batch end to batch end."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_end(self, *args: object) -> None:
        self.stamps.append(time.perf_counter())


def steps_per_second(module: L.LightningModule, datamodule: L.LightningDataModule, threads: int, steps: int,
                     warmup: int) -> float:
    """Median steps/s of a quickstart ``Trainer.fit`` (its data workers included) with ``threads`` threads."""
    torch.set_num_threads(threads)
    timer = StepTimer()
    trainer = L.Trainer(max_steps=warmup + steps + 1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[timer], use_distributed_sampler=False, gradient_clip_val=1.0)
    trainer.fit(module, datamodule=datamodule)
    return 1.0 / statistics.median(b - a for a, b in zip(timer.stamps[warmup:], timer.stamps[warmup + 1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    default = torch.get_num_threads()  # torch's own choice, before anything sets it
    policy = default_cpu_threads(usable_cores())
    cli = cli_from_config([QUICKSTART])
    module, datamodule = cli.model, cli.datamodule
    print(f"quickstart: {sum(p.numel() for p in module.parameters()) / 1e6:.1f}M parameters, batch "
          f"{datamodule.batch_size}, {datamodule.num_workers} data worker(s); {usable_cores()} usable cores, "
          f"policy {policy} threads vs default {default}; torch {torch.__version__}")
    summary = []
    for condition in ("idle", "busy"):
        spinner = None
        if condition == "busy":  # a neighbour holding one core for the whole condition
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            print(f"{condition}: load average {os.getloadavg()[0]:.2f} at start", flush=True)
            ratios = []
            for pair in range(args.pairs):
                sides = [("policy", policy), ("default", default)]
                rates = {name: steps_per_second(module, datamodule, threads, args.steps, args.warmup)
                         for name, threads in (sides if pair % 2 == 0 else sides[::-1])}
                ratios.append(rates["policy"] / rates["default"])
                print(f"{condition} pair {pair}: policy ({policy} threads) {rates['policy']:.2f} steps/s, default "
                      f"({default} threads) {rates['default']:.2f} steps/s, ratio {ratios[-1]:.2f}", flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        summary.append(f"{condition}: ratio {statistics.median(ratios):.2f} (median of {len(ratios)} pairs; "
                       f"{min(ratios):.2f}..{max(ratios):.2f})")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
