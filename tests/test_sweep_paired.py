"""Paired statistics (``thinkspace.sweep.paired``) on constructed answers whose result is known."""

import math

import numpy as np
import pytest

from thinkspace.sweep.paired import REPLICATES, bootstrap_interval, bootstrap_p, compare, holm

FLOOR = 2 / (REPLICATES + 1)  # the smallest bootstrap p: no replicate on the far side of 0


def test_holm_and_the_bootstrap_p_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01; max(2 x 0.03, 0.03); 1 x 0.04
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002]) and holm([]) == []
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert bootstrap_p(np.full(99, 0.2)) == 2 / 100  # every replicate above 0: the floor 2 / (R + 1)
    assert bootstrap_p(np.r_[np.full(89, 0.2), np.full(10, -0.1)]) == pytest.approx(2 * 11 / 100)
    assert bootstrap_p(np.zeros(99)) == 1.0  # all at 0: on both sides
    with pytest.raises(ValueError, match=r"bootstrap_p: expected a non-empty \[replicates\] array, got \(0,\)"):
        bootstrap_p(np.array([]))


def answers(seeds=5, questions=500, accuracy=0.5, seed=0):
    return (np.random.default_rng(seed).random((seeds, questions)) < accuracy).astype(np.int64)


def test_identical_settings_cover_zero_with_p_one():
    base = answers()
    result = compare(base, base.copy())
    assert (result.seeds, result.questions) == (5, 500)
    assert result.difference == 0.0 and result.low <= 0.0 <= result.high
    assert (result.b, result.c, result.p) == (0, 0, 1.0)  # every replicate at 0
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
    assert result.p == FLOOR  # no replicate at or below 0
    worse = compare(better, base)  # the other way round: the same interval, mirrored
    assert (worse.b, worse.c) == (result.c, result.b)
    assert worse.high < 0.0


def test_two_identical_settings_give_p_one_after_correction():
    base = answers()
    results = [compare(base, base.copy()), compare(base, base.copy())]
    assert [r.p for r in results] == [1.0, 1.0]
    assert holm([r.p for r in results]) == [1.0, 1.0]


def test_a_planted_effect_of_ten_points_on_five_seeds_of_500_questions_is_found():
    base = answers(5, 500, accuracy=0.5)
    rng = np.random.default_rng(2)
    better = base.copy()
    for s in range(5):  # in every seed, 50 of the 500 questions turn from wrong to right
        better[s, rng.choice(np.flatnonzero(base[s] == 0), 50, replace=False)] = 1
    result, null = compare(base, better), compare(base, base.copy())
    assert result.difference == pytest.approx(0.10) and (result.b, result.c) == (0, 250)
    assert result.low > 0.07 and result.p == FLOOR
    adjusted = holm([result.p] + [null.p] * 6)  # among 7 settings (6 without an effect), as in the study
    assert adjusted[0] == pytest.approx(7 * FLOOR) and adjusted[0] < 0.05 and adjusted[1:] == [1.0] * 6


def test_a_planted_effect_in_one_seed_only_is_not_called_significant():
    base = answers(5, 500, accuracy=0.5)
    rng = np.random.default_rng(3)
    lucky = base.copy()
    lucky[0, rng.choice(np.flatnonzero(base[0] == 0), 150, replace=False)] = 1  # seed 0 only: +30 points
    result = compare(base, lucky)
    assert result.difference == pytest.approx(0.06) and (result.b, result.c) == (0, 150)
    # McNemar, pooling the 2,500 pairs as independent, would call it certain: 2 x 2^-150
    assert 2 * 0.5**150 < 1e-40
    # the bootstrap leaves seed 0 out of about (4/5)^5 = 33% of its replicates: those show no gain
    assert result.low == 0.0 and result.p > 0.5
    assert holm([result.p]) == [result.p] and result.p > 0.05


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
