"""``thinkspace score`` (and ``--help``) import neither torch nor Lightning: scoring 6 records took
6 s of start-up when ``thinkspace.cli`` imported the Lightning CLI eagerly (docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import sys
from thinkspace.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "lightning", "transformers", "jsonargparse") if m in sys.modules)
print(code, heavy)
"""


def run(*args: str, cwd) -> str:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True,
                          cwd=cwd).stdout


def test_score_and_help_import_no_torch_or_lightning(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"id": "among_1", "gt_answer": "A", "answer": "A"}) + "\n")
    out = run("score", "mindcube", str(path), cwd=tmp_path)
    assert out.splitlines()[-1] == "0 []", out
    assert run("--help", cwd=tmp_path).splitlines()[-1] == "0 []"
