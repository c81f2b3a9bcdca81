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
- A two-sided p-value from the same replicates (:func:`bootstrap_p`): how far into either
  tail of the replicates 0 lies. It respects the design as the interval does: a difference
  carried by one seed, or by a few questions, is resampled away in many replicates.
- Holm's step-down correction (:func:`holm`) for the several settings one report compares
  with the same baseline.
- b and c, the discordant (seed, question) pairs pooled over seeds (b: the baseline right
  and the setting wrong, c: the reverse), as description. They are McNemar's counts, but
  no McNemar test is made: it would take the S x Q pairs as independent, and they are not
  (a question hard for one seed's model is hard for the others').
"""

from __future__ import annotations

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
        p: two-sided p-value of the two-way bootstrap (:func:`bootstrap_p`), uncorrected.
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


def bootstrap_means(difference: np.ndarray, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED,
                    chunk: int = 1000) -> np.ndarray:
    """``[replicates]`` means of ``difference [S, Q]`` under the paired two-way bootstrap.

    A replicate's mean is ``sum_ij difference[s_i, q_j] / (S Q)`` over S drawn seeds s_i and
    Q drawn questions q_j, i.e. ``(n_seed @ difference @ n_question) / (S Q)`` with the
    draw counts ``n_seed [S]`` and ``n_question [Q]`` (multinomial), computed in chunks.
    """
    difference = np.asarray(difference, dtype=np.float64)
    if difference.ndim != 2 or difference.size == 0:
        raise ValueError(f"bootstrap: expected a non-empty [seeds, questions] array, got {difference.shape}")
    seeds, questions = difference.shape
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, replicates, chunk):
        n = min(chunk, replicates - start)
        seed_counts = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=n)
        question_counts = rng.multinomial(questions, np.full(questions, 1.0 / questions), size=n)
        means.append(np.einsum("bs,sq,bq->b", seed_counts, difference, question_counts) / (seeds * questions))
    return np.concatenate(means)


def bootstrap_interval(difference: np.ndarray, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``difference [S, Q]`` under the paired two-way bootstrap."""
    return percentile_interval(bootstrap_means(difference, replicates, seed), level)


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The equal-tailed ``level`` interval of bootstrap replicates ``means [R]``."""
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_p(means: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from bootstrap replicates ``means [R]``.

    ``min(1, 2 (1 + k) / (R + 1))`` with ``k`` the replicates on the far side of 0 (the
    fewer of ``<= 0`` and ``>= 0``; a replicate at exactly 0 counts on both sides). It is the
    level at which the equal-tailed percentile interval starts to exclude 0, so it is below
    0.05 when the 95% interval excludes 0 (up to the +1, which keeps it above 0: at
    least ``2 / (R + 1)``, 2.0e-4 with 10,000 replicates). Identical answers give 1.
    """
    means = np.asarray(means)
    if means.ndim != 1 or means.size == 0:
        raise ValueError(f"bootstrap_p: expected a non-empty [replicates] array, got {means.shape}")
    far = min(int((means <= 0).sum()), int((means >= 0).sum()))
    return min(1.0, 2.0 * (1 + far) / (means.size + 1))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``m`` p-values, in their order.

    The i-th smallest becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``: calling every
    adjusted value below 0.05 a finding keeps the chance of any false finding among the
    ``m`` at 5%, whatever their dependence (``holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]``).
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare(baseline: np.ndarray, setting: np.ndarray, replicates: int = REPLICATES,
            seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """The paired comparison of ``setting`` against ``baseline``, both ``[S, Q]`` of 0/1, aligned.

    The interval and the p-value come from the same bootstrap replicates.

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
    means = bootstrap_means(other - base, replicates, seed)
    low, high = percentile_interval(means)
    return PairedComparison(seeds=base.shape[0], questions=base.shape[1], accuracy=float(other.mean()),
                            baseline_accuracy=float(base.mean()), difference=float((other - base).mean()),
                            low=low, high=high, b=b, c=c, p=bootstrap_p(means))
