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
