"""Shared fixtures: offline Hugging Face, one tiny-model cache and one tiny backbone per family per test session."""

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


# One untrained backbone per family for the whole session. Shared: a test that trains, adds tokens, wraps in
# LoRA or freezes parameters builds its own copy.
@pytest.fixture(scope="session")
def qwen25(tiny_cache: str):
    """A tiny Qwen2.5-VL backbone."""
    from thinkspace.backbones import QwenVL

    return QwenVL("tiny:qwen2_5_vl")


@pytest.fixture(scope="session")
def llava_onevision(tiny_cache: str):
    """A tiny LLaVA-OneVision backbone."""
    from thinkspace.backbones import LlavaOneVision

    return LlavaOneVision("tiny:llava_onevision")


@pytest.fixture(scope="session")
def composed(tiny_cache: str):
    """A tiny composed backbone (a timm ViT, a projector and a causal LM)."""
    from thinkspace.backbones import ComposedVLM

    return ComposedVLM("tiny:composed")


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, then restored: on 2 shared cores tiny-model steps run
    about 10x faster than with 2."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
