"""Stage-1 step time reading teacher features from the cache against computing them online,
and cache bytes per view against 3DThinker's float32 npz.

    python benchmarks/teacher_cache.py [--pairs 3] [--steps 40] [--batch 4] [--size 112] [--vggt]

A step is what a stage-1 step costs after the dataset has produced its samples: collate
(teacher targets included: the oracle's encoding online, or a cache read) + forward +
backward + AdamW, on the tiny model, interleaved cache / online in one process after a
warm-up of each.

Prints ``teacher cache step time: ratio <cache/online> (median of N pairs; min..max)`` and
the bytes per view of a VGGT-sized cache entry (1374 x 2048 fp16 safetensors) against
1374 x 2048 x 4 bytes.

``--vggt`` (needs the ``vggt`` package) times the teacher itself: VGGT-1B's aggregator
architecture (embed 1024, 24 frame + 24 global blocks, DINOv2 ViT-L patch embedding;
random weights, as no checkpoint is downloaded) encoding one sample of ``--vggt-views``
518 x 518 views with ``VGGTTeacher`` against loading the same features from the cache,
printing ``VGGT online / cache read: ratio ...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from thinkspace.backbones import QwenVL  # noqa: E402
from thinkspace.data.datasets.synthetic import SyntheticSpatial  # noqa: E402
from thinkspace.modules.spatial_vlm import SpatialVLM  # noqa: E402
from thinkspace.objectives import LatentAlignment, TextCrossEntropy  # noqa: E402
from thinkspace.teachers import OracleGeometryTeacher, TeacherFeatures  # noqa: E402
from thinkspace.teachers.cache import CacheWriter  # noqa: E402


def build(cache: str | None, seed: int = 0) -> SpatialVLM:
    torch.manual_seed(seed)
    latent = LatentAlignment(k=12, projector_width=64, cache=cache)
    return SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy(), "latent": latent})


def time_steps(module: SpatialVLM, samples: list, steps: int, batch: int) -> float:
    """Seconds per step (collate + forward + backward + AdamW), mean over ``steps``."""
    collate = module.collator()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    start = time.perf_counter()
    for step in range(steps):
        i = (step * batch) % len(samples)
        total, _ = module.losses(collate(samples[i:i + batch]))
        opt.zero_grad()
        total.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def vggt_sized_bytes(directory: Path, views: int = 4) -> float:
    """Bytes per view of fp16 safetensors holding VGGT-1B-sized tokens (1 + 4 + 37 x 37, 2048 channels)."""

    class Sized:
        def signature(self) -> dict:
            return {"teacher": "vggt-sized"}

    sample = SyntheticSpatial(1, image_size=56, num_views=views, settings=["leftmost"])[0]
    features = TeacherFeatures(camera=torch.randn(views, 2048), register=torch.randn(views, 4, 2048),
                               patch=torch.randn(views, 37 * 37, 2048), grid=(37, 37))
    writer = CacheWriter(directory, Sized().signature())
    writer.add(sample, features)
    writer.flush()
    return sum(p.stat().st_size for p in directory.glob("shard-*")) / views


def vggt_online_vs_cache(views: int, repeats: int) -> None:
    """Seconds to encode one sample with a VGGT-1B-shaped teacher against reading it from the cache."""
    from torch import nn
    from vggt.models.aggregator import Aggregator

    from thinkspace.teachers import VGGTTeacher
    from thinkspace.teachers.cache import FeatureCache

    torch.manual_seed(0)
    model = nn.Module()
    model.aggregator = Aggregator(img_size=518, patch_size=14, embed_dim=1024, depth=24, num_heads=16).eval()
    teacher = VGGTTeacher(image_size=518, mode="resize", channels=2048, model=model)
    sample = SyntheticSpatial(1, image_size=112, num_views=views, settings=["leftmost"])[0]
    with tempfile.TemporaryDirectory() as tmp:
        writer = CacheWriter(tmp, teacher.signature())
        start = time.perf_counter()
        writer.add(sample, teacher.encode(sample))
        online = time.perf_counter() - start
        writer.flush()
        cache = FeatureCache(tmp, teacher.signature())
        reads = []
        for _ in range(repeats):
            start = time.perf_counter()
            cache.load(sample)
            reads.append(time.perf_counter() - start)
    read = statistics.median(reads)
    print(f"VGGT-1B-shaped teacher, {views} views at 518 px: online {online:.1f} s, cache read {read * 1e3:.1f} ms "
          f"(median of {repeats}); VGGT online / cache read: ratio {online / read:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vggt", action="store_true", help="also time a VGGT-1B-shaped teacher against its cache")
    parser.add_argument("--vggt-views", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.vggt:
        vggt_online_vs_cache(args.vggt_views, repeats=20)

    data = SyntheticSpatial(32, image_size=args.size, num_views=(2, 4), settings=["leftmost"], num_objects=(3, 4))
    samples = [data[i] for i in range(len(data))]
    with tempfile.TemporaryDirectory() as tmp:
        teacher = OracleGeometryTeacher()
        writer = CacheWriter(Path(tmp) / "oracle", teacher.signature())
        for s in samples:
            writer.add(s, teacher.encode(s))
        writer.flush()
        modules = {"cache": build(str(Path(tmp) / "oracle")), "online": build(None)}
        for module in modules.values():  # warm-up
            time_steps(module, samples, 3, args.batch)
        ratios = []
        for pair in range(args.pairs):
            t_cache = time_steps(modules["cache"], samples, args.steps, args.batch)
            t_online = time_steps(modules["online"], samples, args.steps, args.batch)
            ratios.append(t_cache / t_online)
            print(f"pair {pair}: cache {t_cache * 1e3:.1f} ms/step, online {t_online * 1e3:.1f} ms/step, "
                  f"ratio {ratios[-1]:.3f}")
        oracle_bytes = sum(p.stat().st_size for p in (Path(tmp) / "oracle").glob("shard-*"))
        oracle_views = sum(s.num_frames for s in samples)
        per_view = vggt_sized_bytes(Path(tmp) / "vggt")
    npz = 1374 * 2048 * 4
    print(f"oracle cache: {oracle_bytes / oracle_views:.0f} bytes per view "
          f"({args.size} px views, {teacher.channels} channels)")
    print(f"VGGT-sized cache: {per_view / 1e6:.2f} MB per view vs 3DThinker float32 npz {npz / 1e6:.2f} MB: "
          f"ratio {per_view / npz:.3f}")
    if not ratios:  # --pairs 0: sizes only
        return
    print(f"teacher cache step time: ratio {statistics.median(ratios):.3f} "
          f"(median of {len(ratios)} pairs; {min(ratios):.3f}..{max(ratios):.3f})")


if __name__ == "__main__":
    main()
