"""One GRPO step: thinkspace's ``SpatialGRPO`` against TRL's ``GRPOTrainer``, side by side.

    pip install -e ".[bench]"      # TRL, for this benchmark only
    OMP_NUM_THREADS=1 python benchmarks/grpo_vs_trl.py [--pairs 3] [--steps 40] [--hidden 128] [--layers 3] [--views 1]
        [--decode-step lean|compiled|hugging_face]
    OMP_NUM_THREADS=1 python benchmarks/grpo_vs_trl.py --latent [--pairs 3] [--steps 10]   # latent slot vs plain

Equal work on both sides: the same tiny random-initialised Qwen2.5-VL (built offline),
the same prompts and images (ColouredSquares), G completions per prompt, exactly
``--new-tokens`` generated tokens per completion (end-of-sequence suppressed on both:
``stop_at_eos: false`` here, ``min_new_tokens`` there), the same reward functions
(``format_reward`` without the latent slot and ``answer_reward``), full fine-tuning with
fused AdamW at lr 1e-5 (TRL's default ``adamw_torch_fused``; ``fused=True`` given to thinkspace's
module, whose default is torch's per-parameter AdamW), beta 0.04 (a frozen reference copy on
both), clip 0.2, one optimisation step per rollout, token-mean loss, no gradient checkpointing,
one torch thread, float32 on both sides.

TRL is configured as fast as it goes for this task: ``bf16=False`` (GRPOConfig's default
``bf16=True`` autocasts every pass to bfloat16 on the CPU, which is several times slower
on CPUs without native bfloat16 and not the dtype thinkspace runs in), activation
checkpointing off (on by default in GRPOConfig), no logging, no saving, no evaluation, no
data-loader workers. The settings TRL actually ran with are checked after it is built, and
the versions and CPU capability the figures depend on are printed.

A step is measured from the end of one optimizer step to the end of the next (data,
generation, rewards, reference and policy passes, backward, AdamW). Runs alternate:
thinkspace chunk, TRL chunk, ..., each chunk ``--steps`` steps after a warm-up, and each
pair's ratio is TRL's median step time over thinkspace's. Final line:
``grpo step trl/thinkspace: ratio R (median of N pairs; min..max); TRL X ms/step``.

Fourth setting (``--latent``, thinkspace only; TRL has no latent decoding): a group rollout
with the latent slot (feedback mode: the start token forced, ``--new-tokens - 2`` latent steps
each feeding the last hidden state back, the end forced) against plain sampling of the same
number of tokens, same model, prompts and seeds; each pair's ratio is latent over plain
(median decode time of ``--steps`` rollouts each). Final line:
``latent/plain decoding: ratio R (median of N pairs; min..max)``.

Memory (skip with ``--no-memory``): after the timing pairs, each side runs ``--steps`` steps
again in a fresh subprocess; its peak is the highest resident set size (``/proc/self/statm``,
sampled every 2 ms by a thread while training runs) minus the resident set size just before
training starts (model, data and processor built), i.e. what the steps add at their peak.
(``getrusage``'s lifetime maximum would also count peaks from building the data set.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import lightning as L  # noqa: E402
import torch  # noqa: E402

from thinkspace.backbones import QwenVL  # noqa: E402
from thinkspace.backbones.tiny import tiny_model_dir  # noqa: E402
from thinkspace.data.datamodule import SpatialDataModule  # noqa: E402
from thinkspace.data.datasets.squares import ColouredSquares  # noqa: E402
from thinkspace.rl import SpatialGRPO  # noqa: E402
from thinkspace.rl.rewards import answer_reward, format_reward  # noqa: E402


def texts(completions: list) -> list[str]:
    """Completions as strings (TRL hands conversational ones over as message lists)."""
    out = []
    for c in completions:
        if isinstance(c, list):
            content = c[-1]["content"]
            c = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
        out.append(c)
    return out


def think_answer_format(prompts, completions, **fields):
    """The format reward without a latent slot (no latent objective in this comparison)."""
    return format_reward(prompts, texts(completions), latent=False)


def answer(prompts, completions, answer, answer_type, **fields):
    return answer_reward(prompts, texts(completions), answer=answer, answer_type=answer_type)


REWARDS = [think_answer_format, answer]


class StepTimer(L.Callback):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_end(self, *args) -> None:
        self.stamps.append(time.perf_counter())


def median_step(stamps: list[float], warmup: int) -> float:
    return statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:]))


def thinkspace_chunk(module: SpatialGRPO, data: SpatialDataModule, steps: int, warmup: int) -> float:
    timer = StepTimer()
    trainer = L.Trainer(max_steps=warmup + steps + 1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], use_distributed_sampler=False, num_sanity_val_steps=0)
    trainer.fit(module, data)
    return median_step(timer.stamps, warmup)


def build_trl(path: str, samples: list, args: argparse.Namespace, out: str):
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor, PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    class Stamps(TrainerCallback):
        def __init__(self) -> None:
            self.stamps: list[float] = []

        def on_step_end(self, *a, **k) -> None:
            self.stamps.append(time.perf_counter())

    import trl

    rows = [{"prompt": [{"role": "user", "content": s.prompt}], "images": list(s.frames), "answer": s.answer,
             "answer_type": s.answer_type} for s in samples]
    config = GRPOConfig(
        output_dir=out, per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
        max_completion_length=args.new_tokens, generation_kwargs={"min_new_tokens": args.new_tokens},
        temperature=1.0, beta=0.04, epsilon=0.2, num_iterations=1, learning_rate=1e-5, use_cpu=True,
        bf16=False, fp16=False, report_to="none", disable_tqdm=True, save_strategy="no", eval_strategy="no",
        logging_steps=10_000, max_steps=args.warmup + args.steps + 1, shuffle_dataset=False, dataloader_num_workers=0,
        seed=0, **{checkpointing_key(): False})
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=REWARDS, args=config, train_dataset=Dataset.from_list(rows),
                          processing_class=AutoProcessor.from_pretrained(path))
    trainer.remove_callback(PrinterCallback)  # its end-of-training summary, not a step's work
    check_trl(trainer, trl.__version__)
    stamps = Stamps()
    trainer.add_callback(stamps)
    return trainer, stamps


def checkpointing_key() -> str:
    """transformers 5 renamed ``gradient_checkpointing`` to ``activation_checkpointing``."""
    from transformers import TrainingArguments

    return "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"


def check_trl(trainer, version: str) -> None:
    """Stop when TRL would not run the configuration the comparison claims (float32, no checkpointing, CPU)."""
    args = trainer.args
    wrong = {k: v for k, v in {"bf16": args.bf16, "fp16": args.fp16, checkpointing_key(): getattr(args,
             checkpointing_key()), "mixed_precision": trainer.accelerator.mixed_precision != "no",
             "device": trainer.model.device.type != "cpu",
             "dtype": next(trainer.model.parameters()).dtype != torch.float32}.items() if v}
    if wrong:
        raise RuntimeError(f"TRL {version} is not configured as compared (float32, no checkpointing, CPU): {wrong}")


def versions() -> str:
    import accelerate
    import datasets
    import transformers
    import trl

    return (f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, accelerate "
            f"{accelerate.__version__}, datasets {datasets.__version__}, Python {platform.python_version()}; "
            f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch thread(s)")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The highest resident set size (MiB) seen while the ``with`` block runs, sampled every 2 ms."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = rss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def trl_chunk(trainer, stamps, warmup: int) -> float:
    stamps.stamps.clear()
    trainer.train()
    return median_step(stamps.stamps, warmup)


def build_thinkspace(path: str, data: ColouredSquares, args: argparse.Namespace):
    L.seed_everything(0)
    module = SpatialGRPO(QwenVL(path), rewards={f.__name__: f for f in REWARDS}, group_size=args.group,
                         max_new_tokens=args.new_tokens, stop_at_eos=False, temperature=1.0, beta=0.04, epsilon=0.2,
                         optimizer=lambda p: torch.optim.AdamW(p, lr=1e-5, fused=True),  # as TRL's default
                         decode_step=args.decode_step)
    return module, SpatialDataModule(train=data, batch_size=args.prompts)


def memory_of(side: str, argv: list[str]) -> float:
    """Peak MiB the steps of one side add, measured in a fresh subprocess (see the module docstring)."""
    out = subprocess.run([sys.executable, __file__, *argv, "--measure-memory-of", side], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def measure_memory(side: str, path: str, data: ColouredSquares, samples: list, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as out:
        if side == "thinkspace":
            module, loader = build_thinkspace(path, data, args)
            with PeakRss() as rss:
                before = rss.peak
                thinkspace_chunk(module, loader, args.steps, args.warmup)
        else:
            trainer, stamps = build_trl(path, samples, args, out)
            with PeakRss() as rss:
                before = rss.peak
                trl_chunk(trainer, stamps, args.warmup)
        print(json.dumps({"peak_mib": rss.peak - before}))


def latent_vs_plain(path: str, data: ColouredSquares, args: argparse.Namespace) -> float:
    """Decode time with the latent slot over plain decoding of the same number of tokens."""
    from thinkspace.generation.decode import decode as decode_prompts
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.objectives import LatentAlignment

    torch.manual_seed(0)
    steps = args.new_tokens - 2  # start, latent steps, end: as many tokens as the plain decode
    module = SpatialVLM(QwenVL(path), objectives={"latent": LatentAlignment(k=steps, projector_width=16)}).eval()
    slot = module.objectives["latent"].slot
    batch = module.collator(with_response=False)([replace(data[i], response=None) for i in range(args.prompts)])

    def timed(with_slot: bool) -> float:
        seeds = [torch.Generator().manual_seed(i) for i in range(args.prompts)]
        start = time.perf_counter()
        gen = decode_prompts(module.backbone, batch, slot if with_slot else None, mode="feedback",
                             max_new_tokens=args.new_tokens, force_start=True, do_sample=True,
                             eos_token_id=[], group=args.group, generator=seeds)
        elapsed = time.perf_counter() - start
        assert gen.tokens.shape[1] == args.new_tokens and (not with_slot or bool(gen.has_latents.all()))
        return elapsed

    def chunk(with_slot: bool) -> float:
        return statistics.median(timed(with_slot) for _ in range(args.steps))

    chunk(True), chunk(False)  # warm-up
    ratios = []
    for pair in range(args.pairs):
        plain, latent = chunk(False), chunk(True)
        ratios.append(latent / plain)
        print(f"pair {pair}: plain {plain * 1000:.1f} ms, latent slot {latent * 1000:.1f} ms per rollout "
              f"({args.prompts} prompts x G {args.group} x {args.new_tokens} tokens), ratio {ratios[-1]:.3f}",
              flush=True)
    ratio = statistics.median(ratios)
    print(f"latent/plain decoding: ratio {ratio:.3f} (median of {len(ratios)} pairs; "
          f"{min(ratios):.3f}..{max(ratios):.3f})")
    return ratio


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and images a setting uses (shared with ``grpo_phases.py``)."""
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--image", type=int, nargs=2, default=[56, 112], help="height width")
    parser.add_argument("--views", type=int, default=1, help="images per prompt")


def setting(args: argparse.Namespace) -> tuple[str, ColouredSquares]:
    """The tiny model's directory (built offline) and the prompts of the setting ``args`` name."""
    path = str(tiny_model_dir("qwen2_5_vl", hidden_size=args.hidden, num_layers=args.layers))
    return path, ColouredSquares(512, image_size=tuple(args.image), num_views=args.views, shuffle_options=False)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    add_setting_arguments(parser)
    parser.add_argument("--decode-step", default="lean", choices=["lean", "compiled", "hugging_face"],
                        help="thinkspace's per-token decode step (model.decode_step)")
    parser.add_argument("--latent", action="store_true", help="latent slot against plain decoding (thinkspace)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory subprocesses")
    parser.add_argument("--measure-memory-of", choices=["thinkspace", "trl"], help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    path, data = setting(args)
    samples = [data[i] for i in range(len(data))]
    if args.latent:
        print(versions(), flush=True)
        return latent_vs_plain(path, data, args)
    if args.measure_memory_of:
        measure_memory(args.measure_memory_of, path, data, samples, args)
        return 0.0
    module, loader = build_thinkspace(path, data, args)
    params = sum(p.numel() for p in module.backbone.parameters())
    print(f"model: hidden {args.hidden}, {args.layers} layers, {params / 1e6:.2f}M parameters; {args.prompts} "
          f"prompts ({args.views} x {args.image[0]}x{args.image[1]} px) x G {args.group} x {args.new_tokens} new "
          f"tokens per step; thinkspace decode step {args.decode_step}; load average {os.getloadavg()[0]:.2f}")
    print(versions(), flush=True)
    ratios, trl_times = [], []
    with tempfile.TemporaryDirectory() as out:
        trainer, stamps = build_trl(path, samples, args, out)
        for pair in range(args.pairs):
            ours = thinkspace_chunk(module, loader, args.steps, args.warmup)
            theirs = trl_chunk(trainer, stamps, args.warmup)
            ratios.append(theirs / ours)
            trl_times.append(theirs)
            print(f"pair {pair}: thinkspace {ours * 1000:.1f} ms/step, TRL {theirs * 1000:.1f} ms/step, "
                  f"ratio {ratios[-1]:.2f}", flush=True)
    if args.memory:
        ours, theirs = memory_of("thinkspace", argv), memory_of("trl", argv)
        print(f"peak memory added by the steps (peak RSS - RSS before training, fresh process each): thinkspace "
              f"{ours:.0f} MiB, TRL {theirs:.0f} MiB")
    ratio = statistics.median(ratios)
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    print(f"grpo step trl/thinkspace: ratio {ratio:.2f} (median of {len(ratios)} pairs; "
          f"{min(ratios):.2f}..{max(ratios):.2f}); TRL {statistics.median(trl_times) * 1000:.0f} ms/step")
    return ratio


if __name__ == "__main__":
    main()
