"""``benchmarks/gpu_smoke.py`` on this CPU-only machine: every check runs up to where it needs CUDA (the fit
command parsed, the wide models built on the meta device, their memory estimates, the tiny module built),
then says it is skipped and why; exit code 0. Run in this process (its imports are loaded already)."""

import importlib.util
import re
import sys

import pytest
import torch
from cli_helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_smoke.py"


@pytest.fixture
def gpu_smoke(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its `from memory_estimate import ...`
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU behaviour: on a GPU the checks run")
def test_gpu_smoke_on_a_cpu_prepares_every_check_skips_it_naming_why_and_exits_0(gpu_smoke, monkeypatch, capsys,
                                                                                 tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gpu_smoke.py"])
    assert gpu_smoke.main() == 0
    # the script's lines (a library imported on the way may print its own, bracketed: DeepSpeed's log)
    lines = [line for line in capsys.readouterr().out.strip().splitlines() if not line.startswith("[")]
    assert lines[0].startswith(f"gpu_smoke: torch {torch.__version__}, no GPU, 0 CUDA device(s)")
    checks = [line.split(": ", 1)[0] for line in lines[1:-1]]
    assert checks == ["fsdp2_nccl", "decode_speed", "peak_memory[3dthinker/stage1.yaml (Qwen2.5-VL-3B)]",
                      "peak_memory[loc3r/joint.yaml (LLaVA-Video-7B)]", "host_syncs"]
    no_cuda = "skipped (no CUDA device: torch.cuda.is_available() is False; "
    assert all(line.split(": ", 1)[1].startswith(no_cuda) for line in lines[1:-1]), lines
    assert "the command parses (FSDP2, 2 GPUs, 4 steps with validation)" in lines[1]
    # Qwen2.5-VL-3B's decoder layer: 4 x 2048^2 x (1 + 1/8 + 1/8 + 1) attention-ish + 3 x 2048 x 11008 MLP
    assert re.search(r"Qwen2.5-VL-3B width, 4 layers \(308 M decoder parameters", lines[2])
    estimates = [float(re.search(r"estimate ([\d.]+) GiB", line).group(1)) for line in lines[3:5]]
    # 16 bytes per parameter + memory_estimate.step_activation_bytes (autocast, checkpointing, weight copies)
    # + 64 supervised positions' logits, 2 layers
    assert estimates == [8.43, 27.85]
    assert lines[-1] == "gpu_smoke: 0 passed, 5 skipped, 0 failed"


def test_gpu_smoke_counts_a_failed_check_and_exits_1(gpu_smoke, monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("NCCL error: unhandled system error\nsecond line")

    monkeypatch.setattr(gpu_smoke, "fsdp2_nccl", broken)
    for name in ("decode_speed", "peak_memory", "host_syncs"):
        monkeypatch.setattr(gpu_smoke, name, lambda *args: "ok")
    monkeypatch.setattr(sys, "argv", ["gpu_smoke.py"])
    assert gpu_smoke.main() == 1
    out = capsys.readouterr().out
    assert re.search(r"^fsdp2_nccl: FAILED: RuntimeError: NCCL error: unhandled system error \[", out, re.MULTILINE)
    assert out.strip().splitlines()[-1] == "gpu_smoke: 4 passed, 0 skipped, 1 failed"
