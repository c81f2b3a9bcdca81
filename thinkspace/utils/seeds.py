"""One seed from a run's seed and where in the run a draw happens (epoch, batch, rank, sample).

Randomness keyed by position, not by a generator's saved state, is what makes resumes and
multi-process runs exact (docs/architecture.md, "Exact resume"). The parts are combined in mixed
radix: each is below its bound, so different positions give different seeds (counts up to a
million, ranks up to 65,536, sample ids by CRC-32).
"""

from __future__ import annotations

import zlib

COUNT_BOUND = 1_000_003  # epochs, batches, steps, indices (a prime above a million)
RANK_BOUND = 65_537  # process ranks
ID_BOUND = 4_294_967_311  # CRC-32 of a sample id (a prime above 2**32)


def mix_seed(seed: int, count: int, *, rank: int | None = None, sample_id: str | None = None) -> int:
    """A seed in ``[0, 2**63)`` for torch, numpy or ``random``, from the run's ``seed``, a ``count``
    (epoch, batch count, step or sample index) and optionally the process ``rank`` or a ``sample_id``."""
    mixed = seed * COUNT_BOUND + count
    if rank is not None:
        mixed = mixed * RANK_BOUND + rank
    if sample_id is not None:
        mixed = mixed * ID_BOUND + zlib.crc32(sample_id.encode())  # crc32: the same in every process
    return mixed % 2**63
