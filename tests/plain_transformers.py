"""Run an exported model through transformers alone, in a fresh interpreter that never imports
thinkspace: what a user without thinkspace gets from the directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import Tensor


def plain_transformers_logits(out: Path, inputs: dict[str, Tensor], tmp_path: Path, report: str) -> tuple[Tensor, str]:
    """The logits ``AutoModelForImageTextToText`` gives for ``inputs``, and the line ``report`` (a Python
    expression over ``model``, ``processor`` and ``sys``) prints, followed by whether thinkspace was imported."""
    torch.save(inputs, tmp_path / "inputs.pt")
    script = (
        "import sys, torch\n"
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        f"model = AutoModelForImageTextToText.from_pretrained({str(out)!r}).eval()\n"
        f"processor = AutoProcessor.from_pretrained({str(out)!r})\n"
        f"inputs = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
        "with torch.no_grad():\n"
        f"    torch.save(model(**inputs).logits, {str(tmp_path / 'logits.pt')!r})\n"
        f"print({report}, 'thinkspace' in sys.modules)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH="")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp_path / "logits.pt"), proc.stdout.split("\n")[-2]
