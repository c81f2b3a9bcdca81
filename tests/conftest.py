"""Shared fixtures: offline Hugging Face, one tiny-model cache per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build tiny models once per session, outside the user's home cache."""
    path = str(tmp_path_factory.mktemp("thinkspace-cache"))
    os.environ["THINKSPACE_CACHE"] = path
    return path


@pytest.fixture(scope="session")
def qwen25(tiny_cache: str):
    """A tiny Qwen2.5-VL backbone (weights shared; tests must not train it in place)."""
    from thinkspace.backbones import QwenVL

    return QwenVL("tiny:qwen2_5_vl")


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, then restored: on 2 shared cores tiny-model steps run
    about 10x faster than with 2."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
