"""The checks a CPU cannot run, on a machine with a GPU: one line per check, under 10 minutes.

    python benchmarks/gpu_smoke.py [--decode-layers 4] [--memory-layers 2] [--pairs 3] [--steps 48]

Nothing is downloaded: every model is random-initialised from a config (tiny ones through
thinkspace's offline builder, wide ones from their published dimensions), on the device.

1. ``fsdp2_nccl``: ``thinkspace fit`` of ``configs/3dthinker/stage1_tiny.yaml`` with the shipped FSDP
   fragment (``configs/3dthinker/scale/fsdp_8gpu.yaml``) on 2 GPUs (1 if there is one): NCCL, a bf16
   backbone with float32 masters, clipping, and validation that generates, 4 optimizer steps.
2. ``decode_speed``: the lean decode step against transformers' (Hugging Face) step, same prefill and
   inputs, at Qwen2.5-VL-3B's width (hidden 2048, 16 heads, 2 KV heads, MLP 11008) and
   ``--decode-layers`` layers, bf16, 16 rows; pairs alternate as in ``benchmarks/decoder_step.py``.
   The ratio is what ``decode_step: auto`` waits for (``thinkspace/generation/model_step.py``).
3. ``peak_memory[...]``: ``torch.cuda.max_memory_allocated`` over the first 3 training steps of each
   paper config's decoder at its width and sequence length but ``--memory-layers`` layers (float32
   masters under bf16 autocast, gradient checkpointing, AdamW with its fused step, logits at 64
   supervised positions), against ``benchmarks/memory_estimate.py``'s arithmetic for the same sizes
   (16 bytes per trainable parameter, its activation rule with autocast's weight copies, the supervised
   positions' logits; CUDA context not counted).
4. ``host_syncs``: synchronising CUDA calls per training step of the tiny stage-1 module on one GPU,
   counted with ``torch.cuda.set_sync_debug_mode("warn")`` (median over steps 2-4).

Without CUDA every check does what needs no GPU (the fit command is parsed through the config reader,
the wide configs are built on the meta device and their estimates computed), then prints
``<check>: skipped (...)``. Exit code 0 when no check failed (skips included), 1 when one failed.
Last line: ``gpu_smoke: P passed, S skipped, F failed``.

``--rehearse-on-cpu`` runs every check's GPU code on the CPU instead, at tiny sizes (2 gloo processes,
hidden 256, no memory or sync figures): it proves the script's own code, not the GPU.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from memory_estimate import GB, linear_weights, logits_bytes, step_activation_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAGE1_TINY = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"
FSDP_FRAGMENT = REPO / "configs" / "3dthinker" / "scale" / "fsdp_8gpu.yaml"
#: the paper configs' decoders: name, text config sizes, tokens per sample (docs/scaling.md)
PAPER_DECODERS = [
    ("3dthinker/stage1.yaml (Qwen2.5-VL-3B)", "qwen2_5_vl",
     {"hidden_size": 2048, "intermediate_size": 11008, "num_attention_heads": 16, "num_key_value_heads": 2,
      "vocab_size": 151936}, 2048),
    ("loc3r/joint.yaml (LLaVA-Video-7B)", "qwen2",
     {"hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28, "num_key_value_heads": 4,
      "vocab_size": 152064}, 6400),
]
QWEN_3B_WIDTH = PAPER_DECODERS[0][2]
#: the rehearsal's sizes (``--rehearse-on-cpu``): the same code, small enough for a CPU
TINY_WIDTH = {"hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
              "vocab_size": 1024}
NO_CUDA = "no CUDA device: torch.cuda.is_available() is False"


class Skipped(Exception):
    """A check that needs CUDA stopped where it needs it; the message says what ran before."""


def fsdp2_nccl(device: str, runs: bool, gpus: int, tmp: Path) -> str:
    """``thinkspace fit`` of the tiny stage-1 config with the FSDP fragment on ``gpus`` GPUs."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    overrides = ["--trainer.accelerator", accelerator, "--trainer.devices", str(gpus), "--trainer.max_steps", "4",
                 "--trainer.val_check_interval", "8", "--model.backbone.init_args.dtype", "bfloat16",
                 r"--model.freeze=['\.visual\.']", "--data.num_workers", "0", "--data.global_batch_size",
                 str(4 * gpus), "--trainer.enable_progress_bar", "false", "--run_dir", str(tmp / "fsdp2")]
    configs = [STAGE1_TINY, FSDP_FRAGMENT]
    if not runs:
        from thinkspace.lightning_cli import resolved_yaml

        resolved = resolved_yaml("fit", configs, overrides)  # the config reader accepts the command
        assert "thinkspace.training.fsdp2.FSDP2" in resolved
        raise Skipped(f"{NO_CUDA}; the command parses (FSDP2, {gpus} GPUs, 4 steps with validation)")
    command = [sys.executable, "-m", "thinkspace.cli", "fit", *(a for c in configs for a in ("--config", str(c))),
               *overrides]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=420, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"thinkspace fit failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    groups = re.search(r"FSDP2: (\d+) sharded groups over (\d+) processes", proc.stderr)
    if not groups or "val/accuracy" not in proc.stdout:
        raise RuntimeError("thinkspace fit ended without the FSDP2 line or a validation accuracy")
    backend = "NCCL" if device == "cuda" else "gloo"
    return (f"ok: {groups.group(2)} processes over {backend}, {groups.group(1)} sharded groups, 4 steps with a "
            f"generating validation, {seconds:.0f} s")


def qwen_text_model(sizes: dict, layers: int, device: str, dtype: torch.dtype) -> nn.Module:
    """Qwen2.5-VL's decoder stack (3D RoPE) at ``sizes`` with ``layers`` layers, random weights on ``device``."""
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (
        Qwen2_5_VLTextConfig,
    )
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLTextModel

    head_dim = sizes["hidden_size"] // sizes["num_attention_heads"]
    unit = head_dim // 16  # mrope sections summing to head_dim / 2, as the real [16, 24, 24] at 128
    config = Qwen2_5_VLTextConfig(**sizes, num_hidden_layers=layers, rms_norm_eps=1e-6, attention_dropout=0.0,
                                  rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                   "mrope_section": [2 * unit, 3 * unit, 3 * unit]})
    with torch.device(device):
        return Qwen2_5_VLTextModel(config).to(dtype).eval()


def decode_speed(device: str, runs: bool, layers: int, pairs: int, steps: int, rows: int = 16,
                 prompt: int = 256) -> str:
    """Per-token time of the Hugging Face step over the lean step's, interleaved pairs after a warm-up."""
    sizes = QWEN_3B_WIDTH if device == "cuda" else TINY_WIDTH
    if not runs:
        meta = qwen_text_model(QWEN_3B_WIDTH, layers, "meta", torch.bfloat16)
        count = sum(p.numel() for p in meta.layers.parameters()) / 1e6
        raise Skipped(f"{NO_CUDA}; prepared: Qwen2.5-VL-3B width, {layers} layers ({count:.0f} M decoder "
                      f"parameters, built on the meta device), {rows} rows, {steps} steps per run")
    return time_decode_steps(qwen_text_model(sizes, layers, device, torch.bfloat16), device, pairs, steps, rows,
                             prompt)


def time_decode_steps(lm: nn.Module, device: str, pairs: int, steps: int, rows: int, prompt: int) -> str:
    """``rows`` random prompts of ``prompt`` positions prefilled once; each side decodes ``steps`` tokens
    from that cache with the same inputs (the Hugging Face side crops the cache back after each run)."""
    from thinkspace.generation.decode_state import DecodeMask
    from thinkspace.generation.decoder_step import LeanDecoder

    hidden = lm.config.hidden_size
    generator = torch.Generator(device).manual_seed(0)
    mask = torch.ones(rows, prompt, dtype=torch.long, device=device)
    positions = torch.arange(prompt + steps, device=device).expand(3, rows, -1)
    embeds = torch.randn(steps, rows, hidden, device=device, dtype=torch.bfloat16, generator=generator)
    live = torch.ones(rows, dtype=torch.bool, device=device)
    with torch.no_grad():
        cache = lm(inputs_embeds=torch.randn(rows, prompt, hidden, device=device, dtype=torch.bfloat16,
                                             generator=generator), attention_mask=mask,
                   position_ids=positions[..., :prompt], use_cache=True).past_key_values
        later = positions[..., prompt:]

        def hf() -> float:
            sync(device)
            start = time.perf_counter()
            step_mask = DecodeMask(mask, steps)
            for t in range(steps):
                lm(inputs_embeds=embeds[t][:, None], attention_mask=step_mask.step(t, live),
                   position_ids=later[..., t:t + 1], past_key_values=cache, use_cache=True)
            sync(device)
            elapsed = time.perf_counter() - start
            cache.crop(-steps)  # back to the prompt
            return elapsed

        def lean() -> float:
            sync(device)
            start = time.perf_counter()
            decoder = LeanDecoder(lm, cache, mask, later)
            for t in range(steps):
                decoder.step(embeds[t], t, live)
            sync(device)
            return time.perf_counter() - start

        hf(), lean()  # warm-up (kernels, allocator)
        times: dict[str, list[float]] = {"hf": [], "lean": []}
        for pair in range(pairs):
            for name in ("hf", "lean") if pair % 2 == 0 else ("lean", "hf"):
                times[name].append({"hf": hf, "lean": lean}[name]())
    ratios = [h / le for h, le in zip(times["hf"], times["lean"], strict=True)]
    per_token = {k: statistics.median(v) / steps * 1e3 for k, v in times.items()}
    return (f"hf/lean ratio {statistics.median(ratios):.2f} (median of {pairs} pairs; {min(ratios):.2f}.."
            f"{max(ratios):.2f}); hf {per_token['hf']:.2f} ms/token, lean {per_token['lean']:.2f} ms/token "
            f"(hidden {hidden}, {len(lm.layers)} layers, {rows} rows, bf16)")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_memory(device: str, runs: bool, family: str, sizes: dict, tokens: int, layers: int,
                supervised: int = 64) -> str:
    """Measured peak of 3 training steps of one paper decoder at ``layers`` layers against the estimate."""
    if device != "cuda":
        sizes, tokens = (TINY_WIDTH, 128) if runs else (sizes, tokens)
    model = causal_decoder(family, sizes, layers, "meta")
    trainable = sum(p.numel() for p in model.parameters())
    # float32 masters under autocast with checkpointing: activations, autocast's bf16 weight copies, the logits
    estimate = (16 * trainable + step_activation_bytes(model.config, tokens, "autocast", checkpointing=True,
                                                       autocast_copies=linear_weights(model))
                + logits_bytes(sizes["vocab_size"], supervised)) / GB
    prepared = f"estimate {estimate:.2f} GiB ({trainable / 1e9:.2f} B parameters, {tokens} tokens, {layers} layers)"
    if not runs:
        raise Skipped(f"{NO_CUDA}; {prepared}")
    from thinkspace.training.adamw import AdamW

    model = causal_decoder(family, sizes, layers, device)  # float32 masters, bf16 compute under autocast
    model.gradient_checkpointing_enable()
    model.train()
    optimizer = AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(0, sizes["vocab_size"], (1, tokens), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        with torch.autocast(device, dtype=torch.bfloat16):
            hidden = model.model(input_ids=ids).last_hidden_state[:, -supervised - 1:-1]  # logits where supervised
            logits = model.lm_head(hidden).float()
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), ids[0, -supervised:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    step = optimizer.implementation
    if device != "cuda":
        return f"rehearsed: 3 steps, loss {loss.item():.3f}, {prepared}; AdamW {step} step"
    peak = torch.cuda.max_memory_allocated() / GB
    del model, optimizer
    torch.cuda.empty_cache()
    return f"measured {peak:.2f} GiB, {prepared}, measured/estimate {peak / estimate:.2f}; AdamW {step} step"


def causal_decoder(family: str, sizes: dict, layers: int, device: str) -> nn.Module:
    """A causal LM with the paper decoder's sizes and ``layers`` layers, float32, random weights on ``device``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**sizes, num_hidden_layers=layers, tie_word_embeddings=family == "qwen2_5_vl",
                         use_cache=False)
    with torch.device(device):
        return Qwen2ForCausalLM(config)


def host_syncs(device: str, runs: bool, tmp: Path) -> str:
    """Synchronising CUDA calls per training step of the tiny stage-1 module on one GPU."""
    from thinkspace.lightning_cli import build_cli

    cli = build_cli(None, [STAGE1_TINY], ["--data.num_workers", "0", "--data.val", "null",
                                          "--trainer.enable_progress_bar", "false"], until="built")
    if not runs:
        raise Skipped(f"{NO_CUDA}; the tiny stage-1 module and its data built")
    import lightning.pytorch as pl

    counter = SyncCounter(device == "cuda")
    trainer = pl.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=4, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0,
                         precision="bf16-mixed", gradient_clip_val=1.0, callbacks=[counter],
                         default_root_dir=str(tmp / "syncs"), use_distributed_sampler=False)
    trainer.fit(cli.model, cli.datamodule)
    later = counter.counts[1:] or counter.counts
    where = counter.first or "none"
    if device != "cuda":
        return f"rehearsed: {len(counter.counts)} steps counted (no CUDA calls to count on a CPU)"
    return (f"{statistics.median(later):.0f} synchronising calls per step (steps: {counter.counts}); "
            f"first: {where}")


class SyncCounter(Callback):
    """Counts ``torch.cuda.set_sync_debug_mode("warn")`` warnings per training step (``cuda``: else only steps)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda, self.counts, self.first = cuda, [], None
        self._catch: warnings.catch_warnings | None = None
        self._records: list = []

    def on_train_batch_start(self, *args: object) -> None:
        self._catch = warnings.catch_warnings(record=True)
        self._records = self._catch.__enter__()
        warnings.simplefilter("always")
        if self.cuda:
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, *args: object) -> None:
        if self.cuda:
            torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(None, None, None)
        syncs = [r for r in self._records if "synchroniz" in str(r.message)]
        if syncs and self.first is None:
            self.first = f"{Path(syncs[0].filename).name}:{syncs[0].lineno}"
        self.counts.append(len(syncs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decode-layers", type=int, default=4)
    parser.add_argument("--memory-layers", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--rehearse-on-cpu", action="store_true",
                        help="run the checks' GPU code on the CPU at tiny sizes (tests the script, not a GPU)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = device == "cuda" or args.rehearse_on_cpu
    gpus = min(2, torch.cuda.device_count()) if device == "cuda" else 2
    name = torch.cuda.get_device_name(0) if device == "cuda" else "no GPU"
    print(f"gpu_smoke: torch {torch.__version__}, {name}, {torch.cuda.device_count()} CUDA device(s)", flush=True)
    outcome = {"passed": 0, "skipped": 0, "failed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        checks = [("fsdp2_nccl", lambda: fsdp2_nccl(device, runs, gpus, Path(tmp))),
                  ("decode_speed", lambda: decode_speed(device, runs, args.decode_layers, args.pairs, args.steps))]
        checks += [(f"peak_memory[{label}]", lambda f=family, s=sizes, t=tokens: peak_memory(
            device, runs, f, s, t, args.memory_layers)) for label, family, sizes, tokens in PAPER_DECODERS]
        checks.append(("host_syncs", lambda: host_syncs(device, runs, Path(tmp))))
        for check, run in checks:
            start = time.perf_counter()
            try:
                line, kind = run(), "passed"
            except Skipped as skip:
                line, kind = f"skipped ({skip})", "skipped"
            except Exception as error:  # noqa: BLE001 (one line per check, whatever failed; the others still run)
                line, kind = f"FAILED: {type(error).__name__}: {str(error).strip().splitlines()[0][:300]}", "failed"
            outcome[kind] += 1
            print(f"{check}: {line} [{time.perf_counter() - start:.1f} s]", flush=True)
    print(f"gpu_smoke: {outcome['passed']} passed, {outcome['skipped']} skipped, {outcome['failed']} failed")
    return 1 if outcome["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
