"""The key a sample's teacher features are cached under: what determines the teacher's input.

A question over a scan sees the frames its dataset samples from that scan, and with one
config every question of a scan sees the same frames (``load_posed_frames`` chooses them
from the scan's valid frames alone). So the features are keyed by the frame set, not the
question: ``(scan, frame indices, image size)``, written as::

    scan:scene0000_00/frames-<12 hex of the indices>/640x480

``scan`` is ``sample.meta["scan"]`` (the scan folder or video the frames come from, set by
SQA3D, ScanQA, MSQA and VSI-Bench), the indices ``sample.meta["frame_indices"]`` (frame
numbers in the capture), the size every frame's ``width x height`` in pixels. About 10^5
Loc3R questions share about 1.5K such keys. A sample without a scan (image sets:
MindCube, 3DThinker's CoT data, the synthetic world) is keyed by its id, as before.

The cache stores a hash of the pixels with each key and checks it on every read, so two
samples that share a key but not their pixels are refused, never mixed up.
"""

from __future__ import annotations

import hashlib
import json

from thinkspace.data.schema import SpatialSample
from thinkspace.teachers.base import frame_size_of

SCAN_PREFIX = "scan:"


def cache_key(sample: SpatialSample) -> str:
    """The cache key of ``sample``: its frame set when it names a scan and frame indices, else its id."""
    scan, indices = sample.meta.get("scan"), sample.meta.get("frame_indices")
    if scan is None or indices is None:
        return str(sample.id)
    digest = hashlib.sha1(json.dumps([int(i) for i in indices]).encode()).hexdigest()[:12]
    sizes = sorted({frame_size_of(frame) for frame in sample.frames})
    size = "+".join(f"{w}x{h}" for h, w in sizes)
    return f"{SCAN_PREFIX}{scan}/frames-{digest}/{size}"
