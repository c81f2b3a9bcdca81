"""``Mixture``: several datasets as one training stream (image sets and videos alike)."""

from __future__ import annotations

import bisect

from torch.utils.data import Dataset

from thinkspace.data.schema import SpatialSample


class Mixture(Dataset):
    """The concatenation of ``datasets``, each repeated or weighted.

    Sample ``i`` is looked up lazily (no dataset is opened before the first access), so
    a config with several real datasets instantiates without touching the disk.

    A dataset of ``n`` samples with weight ``w`` contributes ``round(w * n)`` samples per
    epoch: all of them ``w`` times over for whole ``w`` (a repeat), an evenly spaced subset
    (sample ``floor(j * n / k)`` for the j-th of ``k``) below 1, cycling above. The subset is
    the same every epoch, so an epoch's content depends on the config alone and the sampler's
    (seed, epoch) order makes resumed runs exact.

    Args:
        datasets: datasets of :class:`SpatialSample`.
        repeats: how many times each dataset appears per epoch (default 1 each).
        weights: per dataset, a positive number (e.g. 0.5: half of it per epoch, evenly spread;
            2.0: twice); not together with ``repeats``.
    """

    def __init__(self, datasets: list[Dataset], repeats: list[int] | None = None,
                 weights: list[float] | None = None) -> None:
        if not datasets:
            raise ValueError("Mixture.datasets is empty; expected at least one dataset")
        if repeats is not None and weights is not None:
            raise ValueError("Mixture: give repeats or weights, not both")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(datasets) or any(not w > 0 for w in weights):
                raise ValueError(f"Mixture.weights must hold one positive number per dataset "
                                 f"({len(datasets)}), got {weights}")
        else:
            repeats = list(repeats) if repeats is not None else [1] * len(datasets)
            if len(repeats) != len(datasets) or any(int(r) != r or r < 1 for r in repeats):
                raise ValueError(f"Mixture.repeats must hold one integer >= 1 per dataset, got {repeats}")
            weights = [float(r) for r in repeats]
        self.datasets = datasets
        self.weights = weights
        self._counts: list[int] | None = None
        self._ends: list[int] | None = None

    @property
    def counts(self) -> list[int]:
        """Samples each dataset contributes per epoch (opens the datasets to count them)."""
        if self._counts is None:
            counts = []
            for i, (dataset, weight) in enumerate(zip(self.datasets, self.weights)):
                count = round(weight * len(dataset))
                if count < 1:
                    raise ValueError(f"Mixture: dataset {i} ({type(dataset).__name__}, {len(dataset)} samples) "
                                     f"at weight {weight} contributes no sample; raise its weight")
                counts.append(count)
            self._counts = counts
        return self._counts

    def _offsets(self) -> list[int]:
        if self._ends is None:
            ends, total = [], 0
            for count in self.counts:
                total += count
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
        j = index - (ends[which - 1] if which else 0)
        dataset, count = self.datasets[which], self.counts[which]
        size = len(dataset)
        return dataset[j * size // count if count < size else j % size]
