"""Tiny offline backbones load and run exactly like real Qwen-VL checkpoints."""

from __future__ import annotations

import math
import re

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

import thinkspace.backbones.tiny.build as tiny
from thinkspace.backbones.tiny import TINY_FAMILIES, build_tiny, tiny_model_dir

PROCESSOR_CLASS = {
    "qwen2_vl": "Qwen2VLProcessor",
    "qwen2_5_vl": "Qwen2_5_VLProcessor",
    "qwen3_vl": "Qwen3VLProcessor",
}
QWEN_FAMILIES = tuple(PROCESSOR_CLASS)  # llava_onevision: tests/test_llava_onevision.py


@pytest.fixture(scope="module", autouse=True)
def offline():
    """Any request to the Hub raises, as on a machine without network."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def model_dirs(offline, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {family: tiny_model_dir(family, cache_dir=cache) for family in QWEN_FAMILIES}


@pytest.fixture(scope="module")
def loaded(model_dirs):
    """family -> (processor, model), loaded from the directory as a real checkpoint is."""
    out = {}
    for family, path in model_dirs.items():
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        out[family] = (AutoProcessor.from_pretrained(path), model)
    return out


def _image(height: int, width: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _prompt(processor, kinds: list[str], question: str = "Which colour is on the left?") -> str:
    content = [{"type": kind} for kind in kinds] + [{"type": "text", "text": question}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_loads_with_real_classes_and_consistent_config(family, loaded):
    processor, model = loaded[family]
    tok, cfg = processor.tokenizer, model.config
    assert type(processor).__name__ == PROCESSOR_CLASS[family]
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert cfg.model_type == family and model.dtype == torch.float32
    assert cfg._attn_implementation == "sdpa"
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>") == processor.video_token_id
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    text = cfg.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2
    out_width = cfg.vision_config.hidden_size if family == "qwen2_vl" else cfg.vision_config.out_hidden_size
    assert out_width == text.hidden_size == 128
    assert text.attention_dropout == 0.0
    assert len(tok) <= text.vocab_size < len(tok) + 64  # padded like real vocabularies
    # Any text encodes and decodes back (byte-level BPE), spatial words are single tokens.
    s = "The red cube is 2.5 metres behind the torus. Ünïcode 🙂"
    assert tok.decode(tok(s).input_ids) == s
    assert len(tok(" cylinder").input_ids) == 1


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_one_image_gives_grid_many_contiguous_pads(family, loaded):
    processor, _ = loaded[family]
    out = processor(text=[_prompt(processor, ["image"])], images=[_image(56, 84)], return_tensors="pt")
    ids = out.input_ids[0].tolist()
    n_pads = math.prod(out.image_grid_thw[0].tolist()) // processor.image_processor.merge_size**2
    assert n_pads == 6  # 56x84 px -> 4x6 patches (the 16 px patches of Qwen3-VL resize it to 64x96)
    start = ids.index(processor.tokenizer.convert_tokens_to_ids("<|vision_start|>"))
    assert ids[start + 1 : start + 1 + n_pads] == [processor.image_token_id] * n_pads
    assert ids[start + 1 + n_pads] == processor.tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert ids.count(processor.image_token_id) == n_pads


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_forward_two_images_and_four_frame_video(family, loaded):
    processor, model = loaded[family]
    vocab = model.config.text_config.vocab_size
    two = [[_image(56, 84), _image(112, 112, 1)]]  # per sample, a list of its images
    images = processor(text=[_prompt(processor, ["image", "image"])], images=two, return_tensors="pt")
    frames = [_image(56, 84, seed) for seed in range(4)]
    # Pre-sampled frames: no resampling, timestamps (seconds) = frames_indices / fps.
    metadata = {"fps": 1.0, "frames_indices": [0, 1, 2, 3], "total_num_frames": 4}
    video = processor(
        text=[_prompt(processor, ["video"])],
        videos=[frames],
        video_metadata=[metadata],
        do_sample_frames=False,
        return_tensors="pt",
    )
    with torch.no_grad():
        for batch in (images, video):
            logits = model(**batch).logits
            assert logits.shape == (1, batch.input_ids.shape[1], vocab)
            assert torch.isfinite(logits).all()
    assert video.video_grid_thw.tolist()[0][0] == 2  # 4 frames -> 2 temporal patches
    n_video_pads = math.prod(video.video_grid_thw[0].tolist()) // processor.video_processor.merge_size**2
    assert (video.input_ids == processor.video_token_id).sum() == n_video_pads
    text = processor.tokenizer.decode(video.input_ids[0])
    if family == "qwen3_vl":  # one timestamped block per temporal patch, mean time of its 2 frames
        # transformers >= 5.25 replaces the template's <|vision_start|><|video_pad|><|vision_end|> wrapper
        # by the blocks (before, the blocks stood inside it: 3 starts); camera prefixes stay before block 1.
        block = r"<([\d.]+) seconds><\|vision_start\|>(?:<\|video_pad\|>)+<\|vision_end\|>"
        video = re.search(f"(?:{block})+", text).group(0)
        assert re.findall(block, video) == ["0.5", "2.5"]
        assert text.count("<|vision_start|>") == 2 and text.count("<|video_pad|>") == n_video_pads
        assert text.index("<|im_start|>user\n") + len("<|im_start|>user\n") == text.index(video)
    else:
        assert "seconds" not in text and text.count("<|vision_start|>") == 1


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_batch_mixing_image_counts_and_a_video(family, loaded):
    processor, model = loaded[family]
    texts = [_prompt(processor, kinds) for kinds in (["image"], ["image", "image"], ["video"])]
    # Images per sample (a video-only sample has none), flattened in order of the pads.
    images = [[_image(56, 84)], [_image(56, 84, 1), _image(112, 112, 2)], []]
    frames = [_image(56, 84, seed) for seed in range(4)]
    metadata = {"fps": 2.0, "frames_indices": [0, 1, 2, 3], "total_num_frames": 4}
    batch = processor(
        text=texts,
        images=images,
        videos=[frames],  # one entry per video in the batch, not per sample
        video_metadata=[metadata],
        do_sample_frames=False,
        padding=True,
        return_tensors="pt",
    )
    merge = processor.image_processor.merge_size**2
    per_image = [math.prod(thw) // merge for thw in batch.image_grid_thw.tolist()]
    counts = (batch.input_ids == processor.image_token_id).sum(1).tolist()
    assert counts == [per_image[0], per_image[1] + per_image[2], 0]
    n_video_pads = math.prod(batch.video_grid_thw[0].tolist()) // merge
    assert (batch.input_ids[2] == processor.video_token_id).sum() == n_video_pads
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (3, batch.input_ids.shape[1], model.config.text_config.vocab_size)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_build_is_byte_identical(family, tmp_path):
    first = build_tiny(family, tmp_path / "a")
    second = build_tiny(family, tmp_path / "b")
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    third = build_tiny(family, tmp_path / "c", seed=1)
    assert (first / "model.safetensors").read_bytes() != (third / "model.safetensors").read_bytes()


def test_tiny_model_dir_builds_once_and_cleans_up(tmp_path):
    first = tiny_model_dir("qwen2_5_vl", cache_dir=tmp_path, num_layers=2)
    assert first.parent == tmp_path / "tiny" and first.name.startswith("qwen2_5_vl-")
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    again = tiny_model_dir("qwen2_5_vl", cache_dir=tmp_path, num_layers=2)
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == mtime
    other = tiny_model_dir("qwen2_5_vl", cache_dir=tmp_path, num_layers=3)
    assert other != first
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == sorted([first.name, other.name])


def test_tiny_model_dir_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKSPACE_CACHE", str(tmp_path))
    assert tiny_model_dir("qwen2_vl").parent == tmp_path / "tiny"


def test_unknown_family_and_override_are_errors(tmp_path):
    for call in (lambda: build_tiny("llava", tmp_path), lambda: tiny_model_dir("llava", cache_dir=tmp_path)):
        with pytest.raises(ValueError, match=r"'llava'.*qwen2_vl, qwen2_5_vl, qwen3_vl"):
            call()
    with pytest.raises(TypeError, match="hidden_sise"):
        tiny_model_dir("qwen2_vl", cache_dir=tmp_path, hidden_sise=64)
    assert not (tmp_path / "tiny").exists() or not any((tmp_path / "tiny").iterdir())


def test_tiny_model_dir_lost_race_and_crash_leave_one_valid_dir(tmp_path, monkeypatch):
    real_build = tiny.build_tiny
    calls = []

    def racing_build(family, out_dir, **kw):
        real_build(family, out_dir, **kw)
        calls.append(out_dir)
        if len(calls) == 1:  # another process finishes the same model before this one renames
            tiny_model_dir(family, cache_dir=tmp_path, **kw)

    monkeypatch.setattr(tiny, "build_tiny", racing_build)
    final = tiny_model_dir("qwen2_vl", cache_dir=tmp_path)
    assert len(calls) == 2 and [p.name for p in (tmp_path / "tiny").iterdir()] == [final.name]
    assert (final / "model.safetensors").is_file()

    def crashing_build(family, out_dir, **kw):
        (out_dir / "config.json").write_text("{")  # half-written
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(tiny, "build_tiny", crashing_build)
    with pytest.raises(RuntimeError, match="mid-build"):
        tiny_model_dir("qwen3_vl", cache_dir=tmp_path)
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [final.name]


def test_a_rank_whose_save_wrote_no_model_waits_for_rank_zeros_build(tmp_path, monkeypatch):
    """Under torch.distributed transformers' save_pretrained writes on global rank 0 only: another rank's
    build holds the processor alone. It must not become the cache (every later load would fail with
    "Unrecognized model"); that rank takes rank 0's complete directory instead."""
    import threading

    real_build = tiny.build_tiny
    complete = tmp_path / "rank0"
    real_build("qwen2_vl", complete)

    def processor_only(family, out_dir, **kw):  # what rank 1 writes
        (out_dir / "processor_config.json").write_text("{}")
        final = tmp_path / "tiny" / out_dir.name.split(".tmp-")[0].lstrip(".")
        threading.Timer(0.5, complete.rename, args=(final,)).start()  # rank 0 renames its build later

    monkeypatch.setattr(tiny, "build_tiny", processor_only)
    final = tiny_model_dir("qwen2_vl", cache_dir=tmp_path)
    assert (final / "config.json").is_file() and (final / "model.safetensors").is_file()
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [final.name]  # rank 1's build removed

    with pytest.raises(RuntimeError, match=r"waited 0 s for rank 0 to build .*does rank 0 build the same model"):
        tiny._built_elsewhere(tmp_path / "tiny" / "never-built", timeout=0.2)
    final.joinpath("config.json").unlink()  # a directory an older thinkspace left from rank 1
    with pytest.raises(RuntimeError, match=r"is incomplete \(no config.json.*delete that directory"):
        tiny_model_dir("qwen2_vl", cache_dir=tmp_path)
