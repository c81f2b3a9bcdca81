"""How fast is the synthetic world? View-set scenes against video-walk scenes, side by side.

    python benchmarks/synth_speed.py [--pairs 5] [--size 224] [--frames 32]

One *view-set scene* = draw a room, render one 4-view image set (the setting cycles
through around / among / rotation / leftmost), ask its questions and write its files
(color, depth, instance PNGs, poses, intrinsics). One *walk scene* = draw a room, render
a 32-frame walk, ask the video questions and situations, write the per-frame files and
``video.mp4``. The two alternate (A, B, A, B, ...) after a warm-up of each, on one
thread, so their ratio is fair on a noisy machine. The on-the-fly dataset at the
quickstart's setting (64 px, ``leftmost``) is timed in the same loop.

Last line: ``synth walk/view-set time: ratio R (median of N pairs; min..max)``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.synth.episodes import video_episode, view_episode
from thinkspace.synth.render import Renderer
from thinkspace.synth.scene import generate_scene
from thinkspace.synth.video_questions import VIDEO_TASKS
from thinkspace.synth.views import SETTINGS
from thinkspace.synth.writer import write_mp4, write_sequence


def view_scene(i: int, size: int, out: Path) -> int:
    rng = np.random.default_rng([11, i])
    scene = generate_scene(rng, f"v{i}")
    renderer = Renderer(scene, threads=1)
    episode = view_episode(scene, renderer, SETTINGS[i % 4], rng, 4, size, num_questions=2)
    if episode is not None:
        write_sequence(out / f"v{i}", episode)
    return 0 if episode is None else len(episode.questions)


def walk_scene(i: int, size: int, frames: int, out: Path) -> int:
    rng = np.random.default_rng([12, i])
    scene = generate_scene(rng, f"w{i}")
    renderer = Renderer(scene, threads=1)
    episode = video_episode(scene, renderer, rng, frames, size, VIDEO_TASKS + ("situation",))
    write_sequence(out / f"w{i}", episode)
    write_mp4(out / f"w{i}" / "video.mp4", [f.rgb for f in episode.frames], 4.0)
    return len(episode.questions)


def cli(workers: int, scenes: int, size: int, out: Path) -> None:
    """``thinkspace synth --kind views`` into a fresh directory."""
    from thinkspace.synth.command import main as synth

    target = Path(tempfile.mkdtemp(dir=out))
    args = ["--out", str(target), "--scenes", str(scenes), "--kind", "views", "--size", str(size)]
    assert synth([*args, "--workers", str(workers), "--quiet"]) == 0


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved A/B pairs (>= 3)")
    parser.add_argument("--per-pair", type=int, default=8, help="scenes of each kind per pair")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--cli-scenes", type=int, default=6, help="scenes per CLI run, 1 vs 2 processes (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = SyntheticSpatial(10_000, settings=["leftmost"], image_size=64, num_objects=(3, 4))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        view_scene(10_000, args.size, out), walk_scene(10_000, args.size, args.frames, out), dataset[9_999]  # warm-up
        views, walks, samples, ratios = [], [], [], []
        n = args.per_pair
        for p in range(args.pairs):
            a = sum(timed(view_scene, p * n + k, args.size, out) for k in range(n)) / n
            b = sum(timed(walk_scene, p * n + k, args.size, args.frames, out) for k in range(n)) / n
            c = sum(timed(dataset.__getitem__, p * 4 * n + k) for k in range(4 * n)) / (4 * n)
            views.append(a), walks.append(b), samples.append(c), ratios.append(b / a)
            print(f"pair {p}: view-set scene {a:.3f} s, walk scene {b:.3f} s, "
                  f"dataset sample {1000 * c:.1f} ms, walk/view {b / a:.2f}")
        workers = []
        for p in range(args.pairs if args.cli_scenes else 0):
            one = timed(cli, 1, args.cli_scenes, args.size, out)
            two = timed(cli, 2, args.cli_scenes, args.size, out)
            workers.append(one / two)
            print(f"pair {p}: thinkspace synth --kind views, {args.cli_scenes} scenes: "
                  f"1 process {one:.1f} s, 2 processes {two:.1f} s")
    if workers:
        print(f"synth CLI 1-process/2-process time: ratio {statistics.median(workers):.2f} "
              f"(median of {len(workers)} pairs; {min(workers):.2f}..{max(workers):.2f})")
    view_s, walk_s, sample_s = statistics.median(views), statistics.median(walks), statistics.median(samples)
    print(f"context ({torch.get_num_threads()} thread, torch {torch.__version__}): "
          f"{1 / view_s:.2f} view-set scenes/s (4 views at {args.size}x{args.size}), "
          f"{1 / walk_s:.2f} walk scenes/s ({args.frames} frames), "
          f"{1 / sample_s:.0f} SyntheticSpatial samples/s (leftmost, 64 px)")
    print(f"100 view-set scenes: {100 * view_s:.1f} s on one core (target: under 60 s on 2 cores)")
    print(f"synth walk/view-set time: ratio {statistics.median(ratios):.2f} "
          f"(median of {len(ratios)} pairs; {min(ratios):.2f}..{max(ratios):.2f})")


if __name__ == "__main__":
    main()
