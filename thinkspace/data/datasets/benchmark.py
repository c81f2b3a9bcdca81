"""``BenchmarkDataset``: the shared lazy-index base of the benchmark file adapters.

Nothing touches the disk in ``__init__`` (configs are instantiated in tests without the
data): the index is read on the first ``len()`` or item and cached. With
``skip_missing`` the index build drops records whose media files are missing and
reports how many (``skipped``); otherwise a missing file fails when its sample is read,
naming the path and the sample id. A sample id that appears twice in the file is refused
when the index is built, naming the file, the id and both positions (it would be counted twice).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from thinkspace.data.schema import SpatialSample
from thinkspace.records import refuse_duplicate_ids


class BenchmarkDataset(Dataset):
    """Base of the adapters: subclasses implement :meth:`_build_index`, :meth:`_media`
    and :meth:`_sample`.

    Attributes:
        benchmark: scorer name (``"mindcube"``, ``"vsibench"``, ``"sqa3d"``) of
            :mod:`thinkspace.eval`, or ``None`` when predictions cannot be scored.
        skipped: records dropped for missing media (after the index is built).
    """

    benchmark: str | None = None

    def __init__(self, skip_missing: bool = False, limit: int | None = None) -> None:
        self.skip_missing = skip_missing
        self.limit = limit
        self.skipped = 0
        self._index: list[Any] | None = None

    # -- subclasses -------------------------------------------------------------------
    def _build_index(self) -> list[Any]:
        """Read and validate the annotation files; one entry per sample."""
        raise NotImplementedError

    def _media(self, entry: Any) -> list[Path]:
        """Files a sample needs (checked by ``skip_missing``)."""
        return []

    def _sample(self, entry: Any) -> SpatialSample:
        raise NotImplementedError

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The benchmark's own record of sample ``index`` with the model's ``response``."""
        raise NotImplementedError(f"{type(self).__name__} does not write benchmark predictions")

    # -- shared -----------------------------------------------------------------------
    @property
    def index(self) -> list[Any]:
        if self._index is None:
            entries = self._build_index()
            refuse_duplicate_ids([(e["where"], self._sample_id(e)) for e in entries])
            if self.skip_missing:
                kept = [e for e in entries if all(p.exists() for p in self._media(e))]
                self.skipped = len(entries) - len(kept)
                if self.skipped:
                    warnings.warn(f"{type(self).__name__}: skipped {self.skipped} of {len(entries)} samples "
                                  "with missing image or video files (skip_missing=True)", stacklevel=2)
                entries = kept
            if self.limit is not None:
                entries = entries[: self.limit]
            self._index = entries
        return self._index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> SpatialSample:
        if not 0 <= i < len(self.index):
            raise IndexError(f"{type(self).__name__} index {i} out of range [0, {len(self.index)})")
        return self._sample(self.index[i])

    def position_of(self, sample_id: str) -> int:
        """Index of the sample with id ``sample_id`` (ids are unique: the index refuses duplicates).

        Raises:
            KeyError: the id is not in the dataset.
        """
        if not hasattr(self, "_by_id"):
            self._by_id: dict[str, int] = {self._sample_id(e): i for i, e in enumerate(self.index)}
        return self._by_id[sample_id]

    def positions_of(self, sample_ids: list[str]) -> list[int]:
        """Indices of ``sample_ids``, looked up by id."""
        return [self.position_of(i) for i in sample_ids]

    def _sample_id(self, entry: Any) -> str:
        """The id of an index entry (every adapter keeps it under ``"id"``)."""
        return entry["id"]
