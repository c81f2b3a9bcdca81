"""``Mixture``: several datasets as one training stream (image sets and videos alike)."""

from __future__ import annotations

import bisect

from torch.utils.data import Dataset

from thinkspace.data.schema import SpatialSample


class Mixture(Dataset):
    """The concatenation of ``datasets``, each optionally repeated.

    Sample ``i`` is looked up lazily (no dataset is opened before the first access), so
    a config with several real datasets instantiates without touching the disk.

    Args:
        datasets: datasets of :class:`SpatialSample`.
        repeats: how many times each dataset appears per epoch (default 1 each); use
            it to up-weight a small dataset.
    """

    def __init__(self, datasets: list[Dataset], repeats: list[int] | None = None) -> None:
        if not datasets:
            raise ValueError("Mixture.datasets is empty; expected at least one dataset")
        repeats = list(repeats) if repeats is not None else [1] * len(datasets)
        if len(repeats) != len(datasets) or any(r < 1 for r in repeats):
            raise ValueError(f"Mixture.repeats must hold one integer >= 1 per dataset, got {repeats}")
        self.datasets = datasets
        self.repeats = repeats
        self._ends: list[int] | None = None

    def _offsets(self) -> list[int]:
        if self._ends is None:
            ends, total = [], 0
            for dataset, repeat in zip(self.datasets, self.repeats):
                total += len(dataset) * repeat
                ends.append(total)
            self._ends = ends
        return self._ends

    def __len__(self) -> int:
        return self._offsets()[-1]

    def __getitem__(self, index: int) -> SpatialSample:
        ends = self._offsets()
        if not 0 <= index < ends[-1]:
            raise IndexError(f"Mixture index {index} out of range [0, {ends[-1]})")
        which = bisect.bisect_right(ends, index)
        start = ends[which - 1] if which else 0
        dataset = self.datasets[which]
        return dataset[(index - start) % len(dataset)]
