"""Teacher features on disk: fp16 safetensors shards keyed by frame set (or sample id) and a hash of the frames.

Layout of a cache directory::

    signature.json             # the teacher's signature (name, layer, image size, channels, ...) and cache_format
    shard-00000.safetensors    # tensors "<key>/camera" [S, C], "<key>/register" [S, R, C], "<key>/patch" [S, P, C]
    shard-00001.safetensors    # metadata "samples": {key: {"hash", "grid", "index", "split", "parts", "sample"}}

Keys (format 2, :mod:`thinkspace.teachers.cache_key`): a question over a scan is stored under
its frame set, ``scan:<scan>/frames-<indices digest>/<W>x<H>``, so the questions of a scan share
one entry; a sample without a scan under its id. ``index``, ``split`` and ``sample`` name the
first sample written under the key. Format 1 caches (keyed by sample id, no ``cache_format`` in
``signature.json``) are still read, by sample id; extending one is refused (write a new cache).

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

from thinkspace.data.schema import DATA_SPLIT, SpatialSample
from thinkspace.teachers.base import TeacherFeatures
from thinkspace.teachers.cache_key import cache_key
from thinkspace.utils.file_modes import atomic_write

SIGNATURE = "signature.json"
PARTS = ("camera", "register", "patch")
#: ``signature.json``'s field for the layout: 2 keys entries by frame set; absent (1) by sample id
FORMAT_FIELD = "cache_format"
FORMAT = 2


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


def check_signature(root: Path, signature: dict[str, Any]) -> int:
    """Raise when ``root`` holds features of another teacher, layer or image size; return its format (1 or 2)."""
    path = root / SIGNATURE
    if not path.exists():
        raise FileNotFoundError(f"{root}: not a teacher cache (no {SIGNATURE}); write one with "
                                "`thinkspace cache-teacher --config CFG --out DIR`")
    found = json.loads(path.read_text())
    cache_format = found.pop(FORMAT_FIELD, 1)
    if cache_format not in (1, FORMAT):
        raise ValueError(f"{path}: {FORMAT_FIELD} {cache_format!r} is not one this thinkspace reads (1 or {FORMAT}); "
                         "rebuild the cache with `thinkspace cache-teacher` into a new --out directory")
    wanted = json.loads(json.dumps(signature))  # tuples -> lists, as stored
    if found != wanted:
        raise ValueError(f"{path}: this cache was written by another teacher setting and cannot be used "
                         f"({_describe_difference(found, wanted)})")
    return cache_format


class FeatureCache:
    """Read teacher features written by :class:`CacheWriter`.

    Args:
        root: cache directory.
        signature: the current teacher's signature; a cache with another is refused.
    """

    def __init__(self, root: str | Path, signature: dict[str, Any]) -> None:
        self.root = Path(root)
        self.format = check_signature(self.root, signature)
        self.entries: dict[str, dict[str, Any]] = {}  # by key, later shards over earlier ones
        for shard in sorted(self.root.glob("shard-*.safetensors")):
            for key, entry in read_entries(shard).items():
                self.entries[key] = dict(entry, shard=shard.name)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def key_of(self, sample: SpatialSample) -> str:
        """The key ``sample``'s features are stored under in this cache (format 1: its id)."""
        return cache_key(sample) if self.format >= 2 else str(sample.id)

    def load(self, sample: SpatialSample) -> TeacherFeatures:
        """Features of ``sample`` (float32), found by its key.

        Raises:
            KeyError: when the cache has no entry for it, naming the sample, its split, the key, the cache
                and the ``cache-teacher`` command that writes the entry (:meth:`missing`).
            ValueError: naming the sample, when its frames differ from the cached ones.
        """
        key = self.key_of(sample)
        entry = self.entries.get(key)
        if entry is None:
            raise KeyError(self.missing(sample, key))
        digest = frames_hash(sample)
        if entry["hash"] != digest:
            raise ValueError(f"sample {sample.id!r} ({sample.source}): its frames (hash {digest}) differ from the "
                             f"ones cached in {self.root / entry['shard']} (hash {entry['hash']}); rebuild the cache")
        stored = entry.get("parts", PARTS)
        shard = self.root / entry["shard"]
        try:
            with safe_open(str(shard), framework="pt") as f:
                parts = {k: f.get_tensor(f"{key}/{k}").float() for k in stored}
        except SafetensorError as error:
            raise ValueError(f"teacher cache shard {shard} cannot be read ({error}); it is truncated or corrupt: "
                             "delete it and run `thinkspace cache-teacher` again to rewrite its samples") from error
        camera = parts["camera"]
        for name in PARTS:  # parts not stored: no tokens
            parts.setdefault(name, camera.new_zeros(camera.shape[0], 0, camera.shape[-1]))
        return TeacherFeatures(**parts, grid=tuple(entry["grid"]))

    def missing(self, sample: SpatialSample, key: str) -> str:
        """What :meth:`load` says of a ``sample`` with no entry under ``key``: the sample and the
        ``data.<split>`` it came from (``meta["data_split"]``, set by the data module's loaders), the cache
        and the splits it was filled from (``cache-teacher`` fills train and val unless told), and the
        command that writes the entry (``--split`` that split; ``--parts`` as the cache holds them)."""
        split = sample.meta.get(DATA_SPLIT)
        held = sorted({str(e["split"]) for e in self.entries.values() if e.get("split") is not None})
        count = len(self.entries)
        filled = f"{count} entr{'y' if count == 1 else 'ies'}" + (", of " + ", ".join(f"data.{s}" for s in held)
                                                                if held else "")
        stored = {p for e in self.entries.values() for p in e.get("parts", PARTS)}
        parts = [p for p in PARTS if p in stored]  # a camera-only cache is extended as one
        out = self.root if self.format >= FORMAT else "NEW_DIR"  # a format-1 cache is read, never extended
        command = (f"thinkspace cache-teacher --config CFG --out {out} --split {split or 'SPLIT'}"
                   + (f" --parts {' '.join(parts)}" if stored and len(parts) < len(PARTS) else ""))
        notes = ["CFG: this run's config file(s)"]
        if not split:
            notes.append("SPLIT: the data split the sample is from")
        if self.format < FORMAT:
            notes.append(f"NEW_DIR: a new cache, as {self.root} is an old format-1 cache that is not extended")
        where = f" of data.{split}" if split else ""
        return (f"sample {sample.id!r} ({sample.source}){where} is not in the teacher cache {self.root} (key {key!r}; "
                f"{filled}); write its entry with `{command}` ({'; '.join(notes)})")


def read_entries(shard: Path) -> dict[str, dict[str, Any]]:
    """The per-sample entries in one shard's metadata."""
    try:
        with safe_open(str(shard), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("samples", "{}"))
    except SafetensorError as error:
        raise ValueError(f"teacher cache shard {shard} cannot be read ({error}); it is truncated or corrupt: "
                         "delete it and run `thinkspace cache-teacher` again to rewrite its samples") from error


class CacheWriter:
    """Append features to a cache directory, shard by shard, atomically, one entry per key.

    Args:
        root: cache directory (created; an existing one must have the same signature and format).
        signature: the teacher's signature.
        shard_size: entries per shard.
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
            if check_signature(self.root, signature) != FORMAT:
                raise ValueError(f"{self.root / SIGNATURE}: an old teacher cache (format 1, one entry per question "
                                 f"id); this thinkspace writes format {FORMAT} (one entry per scan, frame indices and "
                                 f"image size) and still reads {self.root}, but cannot add to it: write a new cache "
                                 "(`thinkspace cache-teacher --config CFG --out NEW_DIR`) and point the objective's "
                                 f"or cue's cache at it, or delete {self.root} and rerun")
        else:
            with atomic_write(self.root / SIGNATURE) as tmp:
                tmp.write_text(json.dumps(signature | {FORMAT_FIELD: FORMAT}, indent=1, sort_keys=True))
        self.shard_size = shard_size
        self.done: dict[str, dict[str, Any]] = {}  # by key, as on disk
        shards = sorted(self.root.glob("shard-*.safetensors"))
        for shard in shards:
            self.done.update(read_entries(shard))
        self.rank, self.world_size = rank, world_size
        first_free = 1 + max((int(s.stem.split("-")[1]) for s in shards), default=-1)
        self.next_shard = first_free + (rank - first_free) % world_size  # the first free number of this rank
        self.tensors: dict[str, torch.Tensor] = {}
        self.pending: dict[str, dict[str, Any]] = {}

    def _complete(self, entry: dict[str, Any]) -> bool:
        return set(self.parts) <= set(entry.get("parts", PARTS))

    def done_indices(self, split: str) -> set[int]:
        """Dataset indices of ``split`` on disk with this writer's parts (the command skips them without loading)."""
        return set(self.done_keys(split))

    def done_keys(self, split: str) -> dict[int, str]:
        """``{index: key}`` of the entries of ``split`` on disk with this writer's parts (their first samples)."""
        return {e["index"]: key for key, e in self.done.items() if e.get("split") == split
                and e.get("index") is not None and self._complete(e)}

    def covers(self, sample: SpatialSample) -> bool:
        """Whether ``sample``'s key is on disk or queued with this writer's parts (no teacher run needed).

        Raises:
            ValueError: naming both samples, when the entry under the key was made from other pixels.
        """
        key = cache_key(sample)
        entry = self.pending.get(key) or self.done.get(key)
        if entry is None or not self._complete(entry):
            return False
        digest = frames_hash(sample)
        if entry["hash"] != digest:
            raise ValueError(f"sample {sample.id!r} ({sample.source}) has the cache key {key!r} of sample "
                             f"{entry.get('sample')!r} in {self.root} but other frames (hash {digest}, cached "
                             f"{entry['hash']}); expected one frame set per scan, frame indices and image size")
        return True

    def add(self, sample: SpatialSample, features: TeacherFeatures, index: int | None = None,
            split: str | None = None) -> None:
        """Queue one sample's features (fp16) under its key; a full shard is written out."""
        key = cache_key(sample)
        for name in self.parts:
            self.tensors[f"{key}/{name}"] = getattr(features, name).detach().to("cpu", torch.float16).contiguous()
        self.pending[key] = {"hash": frames_hash(sample), "grid": list(features.grid), "index": index,
                             "split": split, "parts": list(self.parts), "sample": str(sample.id)}
        if len(self.pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the queued entries as one shard (temporary file, then rename)."""
        if not self.pending:
            return
        path = self.root / f"shard-{self.next_shard:05d}.safetensors"
        with atomic_write(path) as tmp:
            save_file(self.tensors, str(tmp), metadata={"samples": json.dumps(self.pending)})
        self.done.update(self.pending)
        self.next_shard += self.world_size
        self.tensors, self.pending = {}, {}
