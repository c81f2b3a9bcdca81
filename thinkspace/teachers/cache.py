"""Teacher features on disk: fp16 safetensors shards keyed by sample id and a hash of its frames.

Layout of a cache directory::

    signature.json             # the teacher's signature (name, layer, image size, channels, ...)
    shard-00000.safetensors    # tensors "<id>/camera" [S, C], "<id>/register" [S, R, C], "<id>/patch" [S, P, C]
    shard-00001.safetensors    # metadata "samples": {id: {"hash", "grid", "index", "split", "parts"}}

A cache may hold only some parts of each entry (``parts``): the camera tokens alone are
what a camera prior needs, 2048 x 2 bytes per frame instead of VGGT's 5.6 MB; parts not
stored load as empty ``[S, 0, C]`` tensors.

Shards are written to a temporary name and renamed, so a shard on disk is always
complete; an interrupted run loses at most the shard it was filling and resumes after
the samples already on disk. Several processes may fill one cache at once (``rank`` of
``world_size``, e.g. under ``torchrun``): rank r numbers its shards r, r + W, r + 2W, ...
above any shard already there, so names never collide, and every reader sees all shards.
A cache whose signature differs from the teacher's, or whose frames hash differs from
the sample's, is refused with a message naming why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from thinkspace.data.schema import SpatialSample
from thinkspace.utils.file_modes import atomic_write
from thinkspace.teachers.base import TeacherFeatures

SIGNATURE = "signature.json"
PARTS = ("camera", "register", "patch")


def frames_hash(sample: SpatialSample) -> str:
    """SHA-1 of the sample's frames (uint8 pixels and shapes), 16 hex digits."""
    digest = hashlib.sha1()
    for frame in sample.frames:
        pixels = np.ascontiguousarray(np.asarray(frame.convert("RGB") if hasattr(frame, "convert") else frame))
        digest.update(str(pixels.shape).encode())
        digest.update(pixels.tobytes())
    return digest.hexdigest()[:16]


def _describe_difference(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(set(found) | set(wanted))
    return "; ".join(f"{k}: cache has {found.get(k)!r}, teacher has {wanted.get(k)!r}"
                     for k in keys if found.get(k) != wanted.get(k))


def check_signature(root: Path, signature: dict[str, Any]) -> None:
    """Raise when ``root`` holds features of another teacher, layer or image size."""
    path = root / SIGNATURE
    if not path.exists():
        raise FileNotFoundError(f"{root}: not a teacher cache (no {SIGNATURE}); write one with "
                                "`thinkspace cache-teacher --config CFG --out DIR`")
    found = json.loads(path.read_text())
    wanted = json.loads(json.dumps(signature))  # tuples -> lists, as stored
    if found != wanted:
        raise ValueError(f"{path}: this cache was written by another teacher setting and cannot be used "
                         f"({_describe_difference(found, wanted)})")


class FeatureCache:
    """Read teacher features written by :class:`CacheWriter`.

    Args:
        root: cache directory.
        signature: the current teacher's signature; a cache with another is refused.
    """

    def __init__(self, root: str | Path, signature: dict[str, Any]) -> None:
        self.root = Path(root)
        check_signature(self.root, signature)
        self.entries: dict[str, dict[str, Any]] = {}
        for shard in sorted(self.root.glob("shard-*.safetensors")):
            for sample_id, entry in read_entries(shard).items():
                self.entries[sample_id] = dict(entry, shard=shard.name)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self.entries

    def load(self, sample: SpatialSample) -> TeacherFeatures:
        """Features of ``sample`` (float32). Raises naming the sample if missing or its frames changed."""
        entry = self.entries.get(sample.id)
        if entry is None:
            raise KeyError(f"sample {sample.id!r} ({sample.source}) is not in the teacher cache {self.root}; "
                           "run `thinkspace cache-teacher` over this dataset first")
        digest = frames_hash(sample)
        if entry["hash"] != digest:
            raise ValueError(f"sample {sample.id!r} ({sample.source}): its frames (hash {digest}) differ from the "
                             f"ones cached in {self.root / entry['shard']} (hash {entry['hash']}); rebuild the cache")
        stored = entry.get("parts", PARTS)
        shard = self.root / entry["shard"]
        try:
            with safe_open(str(shard), framework="pt") as f:
                parts = {k: f.get_tensor(f"{sample.id}/{k}").float() for k in stored}
        except SafetensorError as error:
            raise ValueError(f"teacher cache shard {shard} cannot be read ({error}); it is truncated or corrupt: "
                             "delete it and run `thinkspace cache-teacher` again to rewrite its samples") from error
        camera = parts["camera"]
        for name in PARTS:  # parts not stored: no tokens
            parts.setdefault(name, camera.new_zeros(camera.shape[0], 0, camera.shape[-1]))
        return TeacherFeatures(**parts, grid=tuple(entry["grid"]))


def read_entries(shard: Path) -> dict[str, dict[str, Any]]:
    """The per-sample entries in one shard's metadata."""
    try:
        with safe_open(str(shard), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("samples", "{}"))
    except SafetensorError as error:
        raise ValueError(f"teacher cache shard {shard} cannot be read ({error}); it is truncated or corrupt: "
                         "delete it and run `thinkspace cache-teacher` again to rewrite its samples") from error


class CacheWriter:
    """Append features to a cache directory, shard by shard, atomically.

    Args:
        root: cache directory (created; an existing one must have the same signature).
        signature: the teacher's signature.
        shard_size: samples per shard.
        rank: this writer's index among ``world_size`` writers filling ``root`` at once.
        world_size: number of concurrent writers.
        parts: which of ``camera``, ``register``, ``patch`` to store (the camera always).
    """

    def __init__(self, root: str | Path, signature: dict[str, Any], shard_size: int = 64, rank: int = 0,
                 world_size: int = 1, parts: tuple[str, ...] = PARTS) -> None:
        if "camera" not in parts or not set(parts) <= set(PARTS):
            raise ValueError(f"CacheWriter: parts must include 'camera' and be among {list(PARTS)}, got {list(parts)}")
        self.parts = tuple(p for p in PARTS if p in parts)
        if not 0 <= rank < world_size:
            raise ValueError(f"CacheWriter: rank {rank} is not in 0..{world_size - 1} (world_size {world_size})")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.root / SIGNATURE).exists():
            check_signature(self.root, signature)
        else:
            with atomic_write(self.root / SIGNATURE) as tmp:
                tmp.write_text(json.dumps(signature, indent=1, sort_keys=True))
        self.shard_size = shard_size
        self.done: dict[str, dict[str, Any]] = {}
        shards = sorted(self.root.glob("shard-*.safetensors"))
        for shard in shards:
            self.done.update(read_entries(shard))
        self.rank, self.world_size = rank, world_size
        first_free = 1 + max((int(s.stem.split("-")[1]) for s in shards), default=-1)
        self.next_shard = first_free + (rank - first_free) % world_size  # the first free number of this rank
        self.tensors: dict[str, torch.Tensor] = {}
        self.pending: dict[str, dict[str, Any]] = {}

    def done_indices(self, split: str) -> set[int]:
        """Dataset indices of ``split`` on disk with this writer's parts (the command skips them without loading)."""
        return {e["index"] for e in self.done.values() if e.get("split") == split and e.get("index") is not None
                and set(self.parts) <= set(e.get("parts", PARTS))}

    def add(self, sample: SpatialSample, features: TeacherFeatures, index: int | None = None,
            split: str | None = None) -> None:
        """Queue one sample's features (fp16); a full shard is written out."""
        for name in self.parts:
            self.tensors[f"{sample.id}/{name}"] = getattr(features, name).detach().to("cpu", torch.float16).contiguous()
        self.pending[sample.id] = {"hash": frames_hash(sample), "grid": list(features.grid), "index": index,
                                   "split": split, "parts": list(self.parts)}
        if len(self.pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the queued samples as one shard (temporary file, then rename)."""
        if not self.pending:
            return
        path = self.root / f"shard-{self.next_shard:05d}.safetensors"
        with atomic_write(path) as tmp:
            save_file(self.tensors, str(tmp), metadata={"samples": json.dumps(self.pending)})
        self.done.update(self.pending)
        self.next_shard += self.world_size
        self.tensors, self.pending = {}, {}
