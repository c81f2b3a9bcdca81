"""The CPU thread policy: half the usable cores unless OMP_NUM_THREADS says otherwise."""

import pytest
import torch

from thinkspace.training.cpu_threads import default_cpu_threads, set_cpu_threads, usable_cores


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores, threads", [(1, 1), (2, 1), (3, 1), (8, 4), (64, 32)])
def test_half_the_cores_at_least_one(cores, threads):
    assert default_cpu_threads(cores) == threads


def test_a_cpu_run_gets_the_policy_and_says_so(restore_threads):
    torch.set_num_threads(usable_cores())
    line = set_cpu_threads("cpu", environ={})
    expected = default_cpu_threads(usable_cores())
    assert torch.get_num_threads() == expected
    assert line.startswith(f"thinkspace: CPU run with {expected} torch thread") and "OMP_NUM_THREADS" in line


def test_omp_num_threads_and_gpu_runs_are_left_alone(restore_threads):
    torch.set_num_threads(2)
    assert set_cpu_threads("cpu", environ={"OMP_NUM_THREADS": "2"}) is None
    assert set_cpu_threads("gpu", environ={}) is None
    assert torch.get_num_threads() == 2
