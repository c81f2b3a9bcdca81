"""``thinkspace synth``: write a synthetic spatial dataset to disk.

    thinkspace synth --out DIR --scenes N --seed S [--kind views|video|all|ego] [--size 224]

The tree and file formats are described in :mod:`thinkspace.synth.writer`. The same
arguments give byte-identical files; rerunning into the same ``--out`` skips the scenes
already written (an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from thinkspace.errors import ToolParser


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="thinkspace synth",
        description="Generate rooms of primitives with exact 3D ground truth: image sets (MindCube-style), "
        "video walks (VSI-Bench-style), situations (SQA3D-style) and camera rigs (Ego3D-Bench-style).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    parser.add_argument("--scenes", required=True, type=int, help="number of scenes to write (>= 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--kind", default="all",
                        help="views, video, all (both) or ego (a camera rig, Ego3D-Bench-style) (default all)")
    parser.add_argument("--size", type=int, default=224, help="image width = height in pixels, even (default 224)")
    parser.add_argument("--frames", type=int, default=32, help="frames per video walk (default 32)")
    parser.add_argument("--fps", type=float, default=4.0, help="video frame rate (default 4)")
    parser.add_argument(
        "--workers", type=int, default=1,
        help="processes (default 1; each extra one costs seconds to start, worth it for hundreds of scenes)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.scenes < 1:
        parser.error(f"--scenes: expected a positive number of scenes, got {args.scenes}")
    if args.kind not in ("views", "video", "all", "ego"):
        parser.error(f"--kind: expected one of views, video, all, ego; got {args.kind!r}")
    if not (32 <= args.size <= 2048 and args.size % 2 == 0):
        parser.error(
            f"--size: expected an even number of pixels in [32, 2048] (the video encoder needs even sizes), "
            f"got {args.size}"
        )
    if args.frames < 2:
        parser.error(f"--frames: expected at least 2 frames per walk, got {args.frames}")
    if not args.fps > 0:
        parser.error(f"--fps: expected a positive frame rate, got {args.fps}")
    if args.workers < 1:
        parser.error(f"--workers: expected at least 1 process, got {args.workers}")
    if args.seed < 0:
        parser.error(f"--seed: expected a non-negative integer, got {args.seed}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {out} is a file; expected a directory")
    try:
        (out / "scenes").mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out / "scenes", prefix=".probe-"):
            pass
    except OSError as err:
        parser.error(f"--out: cannot write to {out} ({err.strerror or err}); expected a writable directory")


def main(argv: list[str] | None = None) -> int:
    """Run ``thinkspace synth``; bad arguments raise ``ValueError`` (``thinkspace.cli`` reports them:
    one line, exit code 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)

    from thinkspace.synth.writer import (
        SynthConfig,
        check_config,
        clean_partials,
        scene_split,
        write_index,
        write_scene,
    )

    config = SynthConfig(seed=args.seed, size=args.size, kind=args.kind, frames=args.frames, fps=args.fps)
    check_config(args.out, config)
    clean_partials(args.out)
    start = time.perf_counter()
    written = 0
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    workers = min(args.workers, args.scenes)
    with Progress(*columns, disable=args.quiet) as progress:
        task = progress.add_task("scenes", total=args.scenes)
        if workers == 1:
            for index in range(args.scenes):
                written += write_scene(args.out, index, config)
                progress.advance(task)
        else:
            # spawn: open3d's thread pools do not survive fork; one ray-casting thread per process
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                jobs = [pool.submit(write_scene, args.out, index, config, 1) for index in range(args.scenes)]
                for job in as_completed(jobs):
                    written += job.result()
                    progress.advance(task)
    counts = write_index(args.out, args.scenes, config)
    seconds = time.perf_counter() - start
    per_split = ", ".join(f"{counts[s]} {s}" for s in counts if counts[s])
    scenes = {s: sum(scene_split(i) == s for i in range(args.scenes)) for s in ("train", "val", "test")}
    print(
        f"thinkspace synth: {args.scenes} scenes ({scenes['train']} train, {scenes['val']} val, {scenes['test']} test; "
        f"{written} new) and {sum(counts.values())} questions ({per_split}) in {os.fspath(args.out)} "
        f"[{seconds:.1f} s]"
    )
    return 0


if __name__ == "__main__":
    from thinkspace.cli import main as thinkspace

    sys.exit(thinkspace(["synth", *sys.argv[1:]]))
