"""``thinkspace cache-teacher --config CFG [--config CFG2] --out DIR``: run a config's geometry teacher once over its data.

The config is read by the one config reader (:func:`thinkspace.lightning_cli.build_cli`: stacked
files, ``${...}`` interpolation, every default), and the teacher and the datasets are the objects
it builds: the teacher of the config's latent objective or camera cue (``model.objectives.<name>``,
``model.cues.<name>``; GRPO's ``model.init_args.latent``), as that component builds it (so
``LatentAlignment``'s default is its own), and ``data.<split>`` as the datamodule builds them. The
backbone is not built. Writes fp16 safetensors shards (see :mod:`thinkspace.teachers.cache`).
Interrupted runs resume: samples already on disk are skipped without being loaded. Point the
objective's ``cache`` at DIR.

Several processes fill one cache together: each takes every W-th sample and writes its own
shards. Under ``torchrun --nproc_per_node W -m thinkspace.cli cache-teacher ...`` rank and
world size come from the environment (``RANK``, ``WORLD_SIZE``; ``--device cuda`` then means
``cuda:$LOCAL_RANK``).
"""

from __future__ import annotations

import os
from typing import Any

from thinkspace.errors import ToolParser
from thinkspace.teachers.base import GeometryTeacher, check_features
from thinkspace.teachers.cache import CacheWriter


def teacher_of(model: Any, objective: str | None, path: str) -> GeometryTeacher:
    """The teacher of the config's latent objective or camera cue (named, or the first with a
    teacher), each component built from the parsed ``model`` config alone.

    A config that names its LightningModule (``model.class_path``, e.g. GRPO) is read from
    ``model.init_args``, where a ``latent`` objective counts as one named ``latent``.
    """
    from thinkspace.component import Component
    from thinkspace.lightning_cli import build_part

    if "class_path" in model:
        model = model.init_args
    components = {**(model.get("objectives") or {}), **(model.get("cues") or {})}
    if model.get("latent") is not None:
        components.setdefault("latent", model.latent)
    for name in [objective] if objective else list(components):
        spec = components.get(name)
        teacher = getattr(build_part(spec, Component), "teacher", None)
        if teacher is not None:
            return teacher
    where = f"model.objectives.{objective} or model.cues.{objective}" if objective else "model.objectives or model.cues"
    raise ValueError(f"{path}: nothing under {where} has a teacher (expected a LatentAlignment or a CameraPrior "
                     "with init_args.teacher)")


def datasets_of(data: Any, splits: list[str], path: str) -> dict[str, Any]:
    """The datasets of ``data.<split>`` for every configured split of ``splits``, built by the
    datamodule from the parsed ``data`` config and opened (their index read: a missing annotation
    file fails here, before any cache file is written).

    Raises:
        ValueError: naming ``path``, when none of ``splits`` is configured or a split is empty.
    """
    from thinkspace.data.datamodule import SpatialDataModule
    from thinkspace.lightning_cli import build_part

    built = build_part(data, SpatialDataModule).datasets
    configured = [s for s in splits if built.get(s) is not None]
    if not configured:
        raise ValueError(f"{path}: none of data.{', data.'.join(splits)} is configured; expected a dataset to cache "
                         "(choose the splits with --split)")
    datasets = {split: built[split] for split in configured}
    for split, dataset in datasets.items():
        if len(dataset) == 0:
            raise ValueError(f"{path}: data.{split} has no samples; expected a dataset to cache")
    return datasets


def main(argv: list[str] | None = None) -> int:
    parser = ToolParser(prog="thinkspace cache-teacher", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, action="append",
                        help="training config (YAML) naming the teacher and the data (repeat for stacked configs)")
    parser.add_argument("--out", required=True, help="cache directory (created; resumed if it exists)")
    parser.add_argument("--split", nargs="+", default=["train", "val"],
                        help="data splits to cache (default: train val)")
    parser.add_argument("--objective", default=None,
                        help="objective or cue whose teacher to use (default: the first with one)")
    parser.add_argument("--shard-size", type=int, default=64, help="samples per shard file")
    parser.add_argument("--parts", nargs="+", choices=["camera", "register", "patch"],
                        default=["camera", "register", "patch"],
                        help="tokens to store (default all; `--parts camera` for a camera prior: 4 kB per frame)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples per split")
    parser.add_argument("--device", default=None, help="device for teachers that run on one (cpu, cuda)")
    parser.add_argument("--rank", type=int, default=int(os.environ.get("RANK", 0)),
                        help="this process's index among --world-size writers (default: $RANK or 0)")
    parser.add_argument("--world-size", type=int, default=int(os.environ.get("WORLD_SIZE", 1)),
                        help="processes filling the cache together (default: $WORLD_SIZE or 1)")
    args = parser.parse_args(argv)
    if not 0 <= args.rank < args.world_size:
        parser.error(f"--rank {args.rank} must be in 0..{args.world_size - 1} for --world-size {args.world_size}")
    if args.device == "cuda" and "LOCAL_RANK" in os.environ:
        args.device = f"cuda:{os.environ['LOCAL_RANK']}"

    from thinkspace.lightning_cli import build_cli

    path = ", ".join(args.config)
    config = build_cli(None, args.config, until="parsed").config  # parsed only: no backbone is loaded
    teacher = teacher_of(config.model, args.objective, path)
    if args.device and hasattr(teacher, "device"):
        teacher.device = args.device
    # the data is opened before the cache is created: a missing dataset leaves no signature.json behind
    datasets = datasets_of(config.data, args.split, path)
    writer = CacheWriter(args.out, teacher.signature(), shard_size=args.shard_size, rank=args.rank,
                         world_size=args.world_size, parts=tuple(args.parts))
    from rich.progress import Progress

    written = 0
    with Progress() as progress:
        for split, dataset in datasets.items():
            n = len(dataset) if args.limit is None else min(len(dataset), args.limit)
            mine = range(args.rank, n, args.world_size)
            done = writer.done_indices(split)
            task = progress.add_task(f"{split}", total=len(mine), completed=len(done & set(mine)))
            for index in mine:
                if index in done:
                    continue
                sample = dataset[index]
                features = teacher.encode(sample) if teacher.runs_in_workers else teacher.encode_prepared(
                    teacher.prepare(sample))
                writer.add(sample, check_features(features, teacher, sample), index=index, split=split)
                written += 1
                progress.advance(task)
    writer.flush()
    rank = f" (rank {args.rank} of {args.world_size})" if args.world_size > 1 else ""
    print(f"{args.out}: {written} samples written{rank}, {len(writer.done)} in the cache")
    return 0
