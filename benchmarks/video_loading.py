"""Video loading: decord seeking to N of M frames against decoding every frame, and
data-loader throughput on synthetic walks with 0 and 2 workers, interleaved in one run.

    python benchmarks/video_loading.py [--pairs 5] [--frames 300] [--sample 32]

Prints per-pair ratios and final lines ``<what>: ratio <A/B> (median of N pairs; min..max)``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.data.video import read_video


def write_walk(path: Path, frames: int, size: int = 224) -> None:
    """A textured moving pattern, so the codec has real work to do."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size * 2, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.height, stream.width, stream.pix_fmt = size, size, "yuv420p"
        for i in range(frames):
            image = np.ascontiguousarray(base[:, i % size: i % size + size])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_all(path: Path, num: int) -> np.ndarray:
    """Decode every frame with PyAV, then keep ``num`` uniformly spaced ones."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    keep = np.linspace(0, len(frames) - 1, num).round().astype(int)
    return np.stack([frames[i] for i in keep])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def loader_seconds(workers: int, samples: int) -> float:
    data = SyntheticSpatial(num_samples=samples, kind="video", settings=["object_counting"], image_size=112,
                            num_frames=8, seed=0)
    loader = DataLoader(data, batch_size=4, num_workers=workers, collate_fn=lambda s: s)
    return timed(lambda: sum(len(b) for b in loader))


def report(name: str, ratios: list[float]) -> None:
    print(f"{name}: ratio {statistics.median(ratios):.3f} (median of {len(ratios)} pairs; "
          f"{min(ratios):.3f}..{max(ratios):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=300, help="M, frames in the video")
    parser.add_argument("--sample", type=int, default=32, help="N, frames sampled")
    parser.add_argument("--samples", type=int, default=32, help="synthetic walks per loader pass")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "walk.mp4"
        write_walk(path, args.frames)
        read_video(path, args.sample), decode_all(path, args.sample)  # warm-up
        ratios = []
        for pair in range(args.pairs):
            seek = timed(lambda: read_video(path, args.sample))
            full = timed(lambda: decode_all(path, args.sample))
            ratios.append(seek / full)
            print(f"pair {pair}: decord {args.sample} of {args.frames}: {seek * 1e3:.0f} ms, "
                  f"decode all: {full * 1e3:.0f} ms, ratio {seek / full:.3f}")
    loader_ratios = []
    loader_seconds(0, 4), loader_seconds(2, 4)  # warm-up
    for pair in range(args.pairs):
        two = loader_seconds(2, args.samples)
        zero = loader_seconds(0, args.samples)
        loader_ratios.append(two / zero)
        print(f"pair {pair}: 2 workers {args.samples / two:.1f} samples/s, "
              f"0 workers {args.samples / zero:.1f} samples/s, ratio {two / zero:.3f}")
    report(f"decord {args.sample} of {args.frames} / decode all", ratios)
    report("loader time 2 workers / 0 workers", loader_ratios)


if __name__ == "__main__":
    main()
