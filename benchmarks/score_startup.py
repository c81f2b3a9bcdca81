"""``thinkspace score`` on a 6-record file, as it runs now (no Lightning or torch imported) against
the same command with ``thinkspace.lightning_cli`` imported first (what ``thinkspace.cli`` imported
at start-up before issue 33), interleaved in one run.

    python benchmarks/score_startup.py [--pairs 5]

Each side is a fresh ``python`` process (wall time of the whole command, start to exit); one
untimed warm-up of each side first (the file system cache). Prints per-pair seconds and a final line
``score start-up: ratio <eager/lazy wall time> (median of N pairs; min..max)``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAZY = "import sys; from thinkspace.cli import main; sys.exit(main(['score', 'mindcube', sys.argv[1]]))"
EAGER = "import thinkspace.lightning_cli; " + LAZY


def records(path: Path) -> Path:
    """Six MindCube predictions (half right)."""
    pairs = ["AB", "BB", "CC", "DA", "AA", "BC"]  # (gold, answer)
    rows = [{"id": f"among_{i}", "gt_answer": g, "answer": a} for i, (g, a) in enumerate(pairs)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def seconds(code: str, file: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(file)], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        file = records(Path(tmp) / "preds.jsonl")
        seconds(LAZY, file), seconds(EAGER, file)  # warm-up
        ratios = []
        for i in range(args.pairs):
            first, second = (LAZY, EAGER) if i % 2 == 0 else (EAGER, LAZY)
            times = {first: seconds(first, file), second: seconds(second, file)}
            ratios.append(times[EAGER] / times[LAZY])
            print(f"pair {i}: lazy {times[LAZY]:.2f} s, eager {times[EAGER]:.2f} s, ratio {ratios[-1]:.1f}")
    print(f"score start-up: ratio {statistics.median(ratios):.1f} (median of {len(ratios)} pairs; "
          f"{min(ratios):.1f}..{max(ratios):.1f})")


if __name__ == "__main__":
    main()
