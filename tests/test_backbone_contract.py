"""The backbone contract: the family registry, tokens_per_frame, capability errors, old class paths, seams."""

import importlib
import re
from pathlib import Path

import pytest
import torch

from thinkspace.backbones import registry
from thinkspace.backbones.paths import resolve_model_path
from thinkspace.backbones.capabilities import FIXED_TOKEN_GRID, LATENT_DECODING, VIDEO, Support
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.objectives import LatentAlignment, TextCrossEntropy

from cli_helpers import REPO

SIZES = [(56, 84), (100, 60), (300, 200)]  # (height, width) px: small, portrait, over the tiny max_pixels


@pytest.fixture
def llava(llava_onevision):
    return llava_onevision


def frame_grid(backbone, height, width, views=1):
    """(rows, cols) of the first frame's grid after collating one sample of ``views`` images of that size."""
    sample = ColouredSquares(1, image_size=(height, width), num_views=views, seed=1)[0]
    grid = backbone.collator({"text": TextCrossEntropy()})([sample]).visual.grid
    return tuple(grid[0, 2:].tolist())


# -- registry ---------------------------------------------------------------------------

def test_registry_lists_every_tiny_name_and_model_type():
    assert registry.tiny_names()[:5] == ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision", "composed")
    assert registry.family_of_model_type("qwen3_vl").class_path == "thinkspace.backbones.QwenVL"
    assert registry.family_of_model_type("thinkspace_composed").backbone == "ComposedVLM"
    assert registry.family_of_model_type("gpt2") is None
    for name in registry.FAMILIES:
        cls = registry.backbone_class(name)
        assert cls.families == registry.FAMILIES[name].model_types


def test_an_unknown_tiny_name_is_an_error_naming_the_known_ones():
    message = f"unknown tiny model family 'llava'; supported families: {', '.join(registry.tiny_names())}"
    assert message.startswith("unknown tiny model family 'llava'; supported families: qwen2_vl, qwen2_5_vl, ")
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_model_path("tiny:llava")
    from thinkspace.backbones import QwenVL

    with pytest.raises(ValueError, match=re.escape(message)):
        QwenVL("tiny:llava")


def test_paths_know_no_family():
    code = (REPO / "thinkspace" / "backbones" / "paths.py").read_text()
    assert "composed" not in code and "qwen" not in code.lower()


@pytest.mark.parametrize("class_path", [
    "thinkspace.backbones.QwenVL", "thinkspace.backbones.qwen_vl.QwenVL",
    "thinkspace.backbones.LlavaOneVision", "thinkspace.backbones.llava_onevision.LlavaOneVision",
    "thinkspace.backbones.ComposedVLM", "thinkspace.backbones.composed.ComposedVLM",
    "thinkspace.backbones.composed.backbone.ComposedVLM",
])
def test_class_paths_users_already_have_still_resolve(class_path):
    module, name = class_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert cls.__name__ == name and cls.__module__.startswith("thinkspace.backbones.")


# -- tokens_per_frame ---------------------------------------------------------------------

@pytest.mark.parametrize("height,width", SIZES)
def test_qwen_tokens_per_frame_is_what_the_processor_makes(qwen25, height, width):
    image = torch.zeros(height, width, 3, dtype=torch.uint8).numpy()
    t, h, w = qwen25.processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
    merge = qwen25.layout().spatial_merge
    assert qwen25.tokens_per_frame(height, width) == (h // merge, w // merge)
    assert frame_grid(qwen25, height, width) == (h // merge, w // merge)


def test_qwen3_tokens_per_frame_uses_its_16_px_patches(tiny_cache):
    from thinkspace.backbones import QwenVL

    qwen3 = QwenVL("tiny:qwen3_vl")
    for height, width in SIZES:
        image = torch.zeros(height, width, 3, dtype=torch.uint8).numpy()
        _, h, w = qwen3.processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
        assert qwen3.tokens_per_frame(height, width) == (h // 2, w // 2) == frame_grid(qwen3, height, width)
    assert qwen3.tokens_per_frame(64, 96) == (2, 3)  # 32 px per token


def test_qwen_tokens_per_frame_follows_the_size(qwen25):
    # tiny Qwen2.5-VL: 14 px patches merged 2 x 2 (28 px per token), area within 56^2 .. 112^2 px
    assert qwen25.tokens_per_frame(56, 84) == (2, 3)
    assert qwen25.tokens_per_frame(112, 112) == (4, 4)
    # 300 x 200 is over 112^2: scaled by sqrt(60000 / 12544) = 2.19 to 137 x 91 px, floored to 112 x 84
    assert qwen25.tokens_per_frame(300, 200) == (4, 3)


def test_qwen_tokens_per_frame_follows_a_max_pixels_override(tiny_cache):
    from thinkspace.backbones import QwenVL

    backbone = QwenVL("tiny:qwen2_5_vl", max_pixels=56 * 56)
    # 300 x 200 scaled by sqrt(60000 / 3136) = 4.37 to 69 x 46 px, floored to 56 x 28: 2 x 1 tokens
    assert backbone.tokens_per_frame(300, 200) == (2, 1) == frame_grid(backbone, 300, 200)


@pytest.mark.parametrize("height,width", SIZES)
def test_llava_tokens_per_frame_is_the_single_image_base_grid(llava, height, width):
    side = llava.layout().patches_per_side
    assert llava.tokens_per_frame(height, width) == (side, side) == frame_grid(llava, height, width)


@pytest.mark.parametrize("height,width", SIZES)
def test_composed_tokens_per_frame_is_its_fixed_grid(composed, height, width):
    assert composed.tokens_per_frame(height, width) == (4, 4) == frame_grid(composed, height, width, views=2)


# -- capabilities ---------------------------------------------------------------------------

def test_each_family_declares_its_capabilities(qwen25, llava, composed):
    assert {VIDEO, LATENT_DECODING, FIXED_TOKEN_GRID} <= qwen25.capabilities
    assert FIXED_TOKEN_GRID not in llava.capabilities and VIDEO in llava.capabilities
    assert FIXED_TOKEN_GRID in composed.capabilities
    assert qwen25.multimodal_rope and not llava.multimodal_rope and not composed.multimodal_rope


def test_a_video_sample_on_a_family_without_video_is_named(qwen25, monkeypatch):
    monkeypatch.setattr(qwen25, "capabilities", frozenset({LATENT_DECODING}))
    video = ColouredSquares(1, num_views=3, video=True, seed=3)[0]
    with pytest.raises(ValueError, match=re.escape(
            f"sample {video.id!r} ({video.source}) is a video and needs 'video', which the Qwen-VL backbone "
            f"{qwen25.path} does not support (it supports: latent decoding)")):
        qwen25.collator({"text": TextCrossEntropy()})([video])


def test_the_paper_projector_needs_a_fixed_grid_per_frame_size(llava):
    objective = LatentAlignment(k=2, projector="paper", paper_view_size=(84, 56))
    with pytest.raises(ValueError, match=re.escape(
            f"LatentAlignment(projector='paper') needs 'fixed token grid', which the LLaVA-OneVision backbone "
            f"{llava.path} does not support (it supports: frame prefix in video, latent decoding, video)")):
        objective.setup(llava)


def test_latent_decoding_needs_the_capability(qwen25, monkeypatch):
    from thinkspace.generation.decode import decode
    from thinkspace.rl.grpo import SpatialGRPO

    monkeypatch.setattr(qwen25, "capabilities", frozenset({VIDEO}))
    batch = qwen25.collator(with_response=False)([ColouredSquares(1, seed=1)[0]])
    expected = (f"needs 'latent decoding', which the Qwen-VL backbone {qwen25.path} does not support "
                "(it supports: video)")
    with pytest.raises(ValueError, match=re.escape("decode (thinkspace's decoding; sampler: transformers does "
                                                   "without) " + expected)):
        decode(qwen25, batch, None, max_new_tokens=2)
    with pytest.raises(ValueError, match=re.escape("SpatialGRPO (its rollouts decode with latent steps) " + expected)):
        SpatialGRPO(qwen25, latent=None)


def test_an_unknown_feature_is_an_error():
    support = Support("Qwen-VL", "some/dir", frozenset({VIDEO}))
    with pytest.raises(ValueError, match=r"X: unknown backbone feature 'stereo'; expected one of \['video'"):
        support.require("stereo", "X")


# -- seams ----------------------------------------------------------------------------------

def python_files(folder):
    return sorted((REPO / folder).rglob("*.py"))


def test_no_caller_outside_backbones_uses_a_private_backbone_name():
    outside = [p for d in ("thinkspace", "tests", "benchmarks", "examples") for p in python_files(d)
               if "backbones" not in p.relative_to(REPO).parts and p.name != Path(__file__).name]
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in outside
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "_embeds_hook(" in line.replace("inputs_embeds_hook(", "")
                 or re.search(r"thinkspace\.backbones(\.\w+)*\._\w", line)
                 or re.search(r"from thinkspace\.backbones\S* import .*\b_\w", line)]
    assert offenders == []


def test_data_imports_nothing_from_backbones():
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in python_files("thinkspace/data")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.match(r"\s*(from|import) thinkspace\.backbones", line)]
    assert offenders == []


def test_only_qwen_batches_carry_its_token_types(qwen25, llava, composed):
    sample = ColouredSquares(1, seed=1)[0]
    keys = {b.family_label: set(b.collator()([sample]).inputs) for b in (qwen25, llava, composed)}
    assert "mm_token_type_ids" in keys["Qwen-VL"]
    assert "mm_token_type_ids" not in keys["LLaVA-OneVision"] | keys["composed"]
