import pytest

from thinkspace.data.datasets.mixture import Mixture
from thinkspace.data.datasets.squares import ColouredSquares


def test_mixture_concatenates_with_repeats_and_mixes_kinds():
    views = ColouredSquares(3, seed=1)
    video = ColouredSquares(2, video=True, num_views=3, seed=2)
    mix = Mixture([views, video], repeats=[1, 2])
    assert len(mix) == 3 + 4
    ids = [mix[i].id for i in range(len(mix))]
    assert ids == [views[i].id for i in range(3)] + [video[i % 2].id for i in range(4)]
    assert [mix[i].is_video for i in range(len(mix))] == [False] * 3 + [True] * 4
    with pytest.raises(IndexError, match=r"Mixture index 7 out of range \[0, 7\)"):
        mix[7]


def test_mixture_bad_arguments():
    with pytest.raises(ValueError, match="Mixture.datasets is empty"):
        Mixture([])
    with pytest.raises(ValueError, match="one integer >= 1 per dataset"):
        Mixture([ColouredSquares(2)], repeats=[0])


def test_mixture_weights_take_an_evenly_spread_part_or_cycle():
    five = ColouredSquares(5, seed=1)
    two = ColouredSquares(2, seed=2)
    mix = Mixture([five, two], weights=[0.4, 1.5])  # round(0.4 x 5) = 2 of five, round(1.5 x 2) = 3 of two
    assert mix.counts == [2, 3] and len(mix) == 5
    assert [mix[i].id for i in range(5)] == [five[0].id, five[2].id, two[0].id, two[1].id, two[0].id]
    assert [Mixture([five], weights=[0.5])[i].id for i in range(2)] == [five[0].id, five[2].id]  # round(2.5) = 2
    whole = Mixture([five, two], weights=[1.0, 2.0])
    assert [whole[i].id for i in range(len(whole))] == [Mixture([five, two], repeats=[1, 2])[i].id for i in range(9)]


def test_mixture_bad_weights():
    with pytest.raises(ValueError, match=r"one positive number per dataset \(1\), got \[0.0\]"):
        Mixture([ColouredSquares(2)], weights=[0])
    with pytest.raises(ValueError, match="repeats or weights, not both"):
        Mixture([ColouredSquares(2)], repeats=[1], weights=[1.0])
    with pytest.raises(ValueError, match=r"dataset 0 \(ColouredSquares, 2 samples\) at weight 0.1 contributes no "
                                         r"sample; raise its weight"):
        len(Mixture([ColouredSquares(2)], weights=[0.1]))
