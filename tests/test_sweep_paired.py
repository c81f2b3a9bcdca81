"""Paired statistics (``thinkspace.sweep.paired``) on constructed answers whose result is known."""

import math

import numpy as np
import pytest

from thinkspace.sweep.paired import bootstrap_interval, compare, mcnemar_exact


def test_mcnemar_exact_values_by_hand():
    assert mcnemar_exact(0, 6) == 0.03125  # 2 * (1/2)^6
    assert mcnemar_exact(6, 0) == 0.03125
    assert mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 2**7)  # 2 * P[X <= 1], X ~ Bin(7, 1/2) = 0.125
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 2**10)  # 0.109375
    assert mcnemar_exact(4, 4) == 1.0 and mcnemar_exact(3, 4) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 2000) == pytest.approx(2.0 ** -1999, rel=1e-12)  # big n stays exact, no underflow


def answers(seeds=5, questions=500, accuracy=0.5, seed=0):
    return (np.random.default_rng(seed).random((seeds, questions)) < accuracy).astype(np.int64)


def test_identical_settings_cover_zero_with_p_one():
    base = answers()
    result = compare(base, base.copy())
    assert (result.seeds, result.questions) == (5, 500)
    assert result.difference == 0.0 and result.low <= 0.0 <= result.high
    assert (result.b, result.c, result.p) == (0, 0, 1.0)
    assert result.accuracy == result.baseline_accuracy == pytest.approx(base.mean())


def test_flipping_thirty_percent_of_wrong_answers_is_detected():
    base = answers()
    rng = np.random.default_rng(1)
    better = base.copy()
    flipped = (base == 0) & (rng.random(base.shape) < 0.3)
    better[flipped] = 1
    result = compare(base, better)
    expected = flipped.sum() / base.size  # about 0.3 x 0.5 = 0.15
    assert result.difference == pytest.approx(expected) and 0.13 < expected < 0.17
    assert 0.0 < result.low < expected < result.high
    assert (result.b, result.c) == (0, int(flipped.sum()))
    assert result.p == pytest.approx(2 * 0.5 ** flipped.sum()) and result.p < 1e-100
    worse = compare(better, base)  # the other way round: the same interval, mirrored
    assert (worse.b, worse.c) == (result.c, result.b)
    assert worse.high < 0.0


def test_one_seed_interval_matches_the_normal_approximation():
    # 500 questions: the setting gains 100, loses 50 -> differences +1 x100, -1 x50, 0 x350
    difference = np.zeros((1, 500))
    difference[0, :100], difference[0, 100:150] = 1, -1
    mean, var = 0.1, 150 / 500 - 0.1**2
    half = 1.959964 * math.sqrt(var / 500)  # 0.0472
    low, high = bootstrap_interval(difference)
    assert low == pytest.approx(mean - half, abs=0.004) and high == pytest.approx(mean + half, abs=0.004)


def test_two_way_interval_counts_seed_and_question_variation():
    """Seeds that differ in how much they gain: the interval widens by the seed term of
    Var ~ var(seed means) / S + var(question means) / Q + var(residual) / (S Q)."""
    rng = np.random.default_rng(3)
    seeds, questions = 20, 400
    base = (rng.random((seeds, questions)) < 0.5).astype(np.int64)
    better = base.copy()
    gain = rng.uniform(0.0, 0.6, size=(seeds, 1))  # each seed flips its own share of wrong answers
    better[(base == 0) & (rng.random((seeds, questions)) < gain)] = 1
    d = (better - base).astype(float)
    seed_part = d.mean(1) - d.mean()
    question_part = d.mean(0) - d.mean()
    residual = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
    se = math.sqrt(seed_part.var() / seeds + question_part.var() / questions + residual.var() / d.size)
    low, high = bootstrap_interval(d)
    assert (high - low) / 2 == pytest.approx(1.959964 * se, rel=0.1)
    questions_only = bootstrap_interval(d.mean(0, keepdims=True))  # ignoring the seeds: too narrow
    assert questions_only[1] - questions_only[0] < 0.8 * (high - low)


def test_the_interval_is_reproducible_and_checks_its_input():
    d = answers(3, 50, seed=4) - answers(3, 50, seed=5)
    assert bootstrap_interval(d) == bootstrap_interval(d)  # fixed generator seed
    assert bootstrap_interval(d, seed=1) != bootstrap_interval(d)
    with pytest.raises(ValueError, match=r"expected two aligned \[seeds, questions\] arrays, got \(3, 50\) and "
                                         r"\(3, 49\)"):
        compare(answers(3, 50), answers(3, 49))
    with pytest.raises(ValueError, match="correctness must be 0 or 1"):
        compare(answers(3, 50), answers(3, 50) * 2)
