"""Paired statistics of one setting against a baseline, on the same questions and seeds.

Input: per-question correctness of both settings as arrays ``[S, Q]`` of 0/1 (S seeds,
Q questions; row s of both arrays is the same seed, column q the same question id).

- The difference in accuracy (setting minus baseline) with a 95% confidence interval
  from a paired two-way bootstrap: each replicate draws S seeds with replacement and,
  independently, Q questions with replacement, and takes the mean difference over the
  drawn (seed, question) cells; the same draw is applied to both settings, so each
  resampled answer is compared with the baseline's answer to the same question under
  the same seed. Resampling questions accounts for which questions happened to be
  asked; resampling seeds for the seed-to-seed spread of training. The interval is the
  2.5th to 97.5th percentile of the replicates (fixed generator seed: reproducible).
- An exact two-sided McNemar test on the answers pooled over seeds: each (seed, question)
  is one pair; b counts pairs the baseline got right and the setting wrong, c the
  reverse; under "no difference" the discordant pairs split as Binomial(b + c, 1/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: bootstrap replicates and the generator seed: fixed so a report is reproducible
REPLICATES = 10_000
BOOTSTRAP_SEED = 0


@dataclass
class PairedComparison:
    """A setting against the baseline on ``seeds`` x ``questions`` paired answers.

    Attributes:
        accuracy: the setting's mean correctness (fraction of 1).
        baseline_accuracy: the baseline's, on the same pairs.
        difference: ``accuracy - baseline_accuracy``.
        low, high: the 95% bootstrap interval of the difference.
        b: pairs the baseline answered right and the setting wrong.
        c: pairs the baseline answered wrong and the setting right.
        p: exact two-sided McNemar p-value.
    """

    seeds: int
    questions: int
    accuracy: float
    baseline_accuracy: float
    difference: float
    low: float
    high: float
    b: int
    c: int
    p: float


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: ``min(1, 2 P[X <= min(b, c)])``, X ~ Binomial(b + c, 1/2).

    Exact in integers (Python's big ints), so it is right for thousands of discordant
    pairs; 1.0 when there are none. ``mcnemar_exact(0, 6) == 2 / 64 == 0.03125``.
    """
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def bootstrap_interval(difference: np.ndarray, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95, chunk: int = 1000) -> tuple[float, float]:
    """Percentile interval of the mean of ``difference [S, Q]`` under the paired two-way bootstrap.

    A replicate's mean is ``sum_ij difference[s_i, q_j] / (S Q)`` over S drawn seeds s_i and
    Q drawn questions q_j, i.e. ``(n_seed @ difference @ n_question) / (S Q)`` with the
    draw counts ``n_seed [S]`` and ``n_question [Q]`` (multinomial), computed in chunks.
    """
    difference = np.asarray(difference, dtype=np.float64)
    if difference.ndim != 2 or difference.size == 0:
        raise ValueError(f"bootstrap_interval: expected a non-empty [seeds, questions] array, got {difference.shape}")
    seeds, questions = difference.shape
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, replicates, chunk):
        n = min(chunk, replicates - start)
        seed_counts = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=n)
        question_counts = rng.multinomial(questions, np.full(questions, 1.0 / questions), size=n)
        means.append(np.einsum("bs,sq,bq->b", seed_counts, difference, question_counts) / (seeds * questions))
    tail = (1.0 - level) / 2
    low, high = np.quantile(np.concatenate(means), [tail, 1.0 - tail])
    return float(low), float(high)


def compare(baseline: np.ndarray, setting: np.ndarray, replicates: int = REPLICATES,
            seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """The paired comparison of ``setting`` against ``baseline``, both ``[S, Q]`` of 0/1, aligned.

    Raises:
        ValueError: when the shapes differ or an entry is not 0 or 1.
    """
    baseline, setting = np.asarray(baseline), np.asarray(setting)
    if baseline.shape != setting.shape or baseline.ndim != 2:
        raise ValueError(f"compare: expected two aligned [seeds, questions] arrays, got {baseline.shape} and "
                         f"{setting.shape}")
    if not (np.isin(baseline, (0, 1)).all() and np.isin(setting, (0, 1)).all()):
        raise ValueError("compare: correctness must be 0 or 1")
    base, other = baseline.astype(np.int64), setting.astype(np.int64)
    b = int(((base == 1) & (other == 0)).sum())
    c = int(((base == 0) & (other == 1)).sum())
    low, high = bootstrap_interval(other - base, replicates, seed)
    return PairedComparison(seeds=base.shape[0], questions=base.shape[1], accuracy=float(other.mean()),
                            baseline_accuracy=float(base.mean()), difference=float((other - base).mean()),
                            low=low, high=high, b=b, c=c, p=mcnemar_exact(b, c))
