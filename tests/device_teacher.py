"""A teacher that does not run in the data workers (like VGGT) but computes the oracle's features,
and records the device its prepared input reached: what ``cache-teacher --device`` must honour."""

from __future__ import annotations

import torch
from torch import Tensor

from thinkspace.data.schema import SpatialSample
from thinkspace.teachers import OracleGeometryTeacher
from thinkspace.teachers.base import GeometryTeacher, TeacherFeatures, frame_size


class PreparedOracle(OracleGeometryTeacher):
    """The oracle behind a prepare / encode_prepared split; ``devices`` lists where each input was encoded."""

    runs_in_workers = False
    devices: list[str] = []
    encode = GeometryTeacher.encode  # prepare, move to self.device, encode_prepared

    def prepare(self, sample: SpatialSample) -> Tensor:
        self._sample = sample
        return torch.zeros(sample.num_frames, 3, *frame_size(sample))

    def encode_prepared(self, prepared: Tensor) -> TeacherFeatures:
        PreparedOracle.devices.append(str(prepared.device))
        return OracleGeometryTeacher.encode(self, self._sample)
