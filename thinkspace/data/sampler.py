"""A sampler whose order depends on (seed, epoch) alone, so resumed runs are exact.

Saving a generator's state in the checkpoint does not resume exactly (the loader may
have drawn ahead); instead each epoch's permutation is derived from ``seed`` and the
epoch number, and the position within the epoch comes from the training loop's own
progress counter, both read when iteration starts. The same rule splits the
permutation across processes, so every sample is seen once per epoch over all ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from thinkspace.utils.seeds import mix_seed

#: returns ``(epoch, batches already consumed in that epoch)`` at the start of iteration.
Progress = Callable[[], tuple[int, int]]


class EpochSampler(Sampler[int]):
    """Indices ``0..length-1``, shuffled per epoch by ``(seed, epoch)``, split by rank.

    Args:
        length: dataset size.
        seed: base seed of every epoch's permutation.
        shuffle: permute (training) or keep order (evaluation).
        batch_size: per-process batch size, to turn consumed batches into samples.
        rank: this process's index among ``world_size``.
        world_size: number of processes; each takes every ``world_size``-th index.
        progress: where the loop is; default: epoch 0 from the start.

    A length that does not divide evenly across ranks is padded by repeating the first
    indices, as ``DistributedSampler`` does.
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        shuffle: bool = True,
        batch_size: int = 1,
        rank: int = 0,
        world_size: int = 1,
        progress: Progress | None = None,
    ) -> None:
        if length <= 0:
            raise ValueError(f"EpochSampler: the dataset is empty (length {length})")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.progress = progress

    def __len__(self) -> int:
        return -(-self.length // self.world_size)

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``, in order."""
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            indices = torch.randperm(self.length, generator=g).tolist()
        else:
            indices = list(range(self.length))
        total = len(self) * self.world_size
        indices = (indices * 2)[:total]
        return indices[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        epoch, consumed = self.progress() if self.progress else (0, 0)
        return iter(self.order(epoch)[consumed * self.batch_size:])
