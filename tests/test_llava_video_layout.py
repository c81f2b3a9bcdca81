"""LLaVA-Video's input layout on the LLaVA-OneVision family: a newline after each pooled row of a
video frame (``per_row``) against transformers' one newline per video (``per_video``), and the
time instruction."""

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import (
    LlavaOnevisionImageProcessor,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
)

from thinkspace.backbones import LlavaOneVision
from thinkspace.backbones.llava_onevision.collator import (
    OneVisionCollator,
    OneVisionLayout,
)
from thinkspace.backbones.llava_onevision.row_newlines import (
    newline_per_row,
    video_newline_setting,
)
from thinkspace.backbones.llava_onevision.time_instruction import time_instruction
from thinkspace.backbones.tiny.tokenizer import build_tokenizer
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.schema import FRAME_PREFIX, SpatialSample
from thinkspace.generation.decode import decode
from thinkspace.objectives import TextCrossEntropy

SIGLIP = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}


@pytest.fixture(scope="module")
def per_row(tiny_cache):
    return LlavaOneVision("tiny:llava_onevision", video_newline="per_row", time_instruction=True)


def _video(seed=5, frames=4):
    return ColouredSquares(2, num_views=frames, video=True, seed=seed)[0]


def _placeholders(batch, b, token_id):
    return (batch.inputs["input_ids"][b] == token_id).nonzero().flatten()


def test_the_converted_checkpoints_processor_at_real_size():
    """transformers' processor as the conversion script builds it (384 px SigLIP crops, 729 tokens per
    crop): 32 frames become 32 x 14 x 14 + 1 = 6,273 placeholders, the newline last; the per-row layout
    makes 32 x 14 x 15 = 6,720 of them, a newline after every 14 grid tokens."""
    size = {"height": 384, "width": 384}
    tokenizer = build_tokenizer("llava_onevision")
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, **SIGLIP), tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=dict(size), **SIGLIP), num_image_tokens=729,
        vision_feature_select_strategy="full", chat_template=tokenizer.chat_template)
    frames = [Image.new("RGB", (64, 48), (i * 8, 0, 0)) for i in range(32)]
    sample = SpatialSample(id="v", source="test", task="t", frames=frames, prompt="Where?", response=None,
                           answer=None, answer_type="text", timestamps=torch.arange(32) / 30.0)
    video_id = tokenizer.convert_tokens_to_ids("<video>")
    for newline, count in (("per_video", 6273), ("per_row", 6720)):
        layout = OneVisionLayout(tokenizer.convert_tokens_to_ids("<image>"), video_id, 27, video_newline=newline)
        batch = OneVisionCollator(processor, layout, with_response=False)([sample])
        at = _placeholders(batch, 0, video_id)
        assert at.numel() == count == layout.video_tokens(32)
        assert at[-1] - at[0] + 1 == count  # one contiguous block
        assert batch.inputs["pixel_values_videos"].shape == (1, 32, 3, 384, 384)
        assert batch.visual.grid.tolist() == [[0, f, 14, 14] for f in range(32)]
        indexed = set(batch.visual.positions(0).tolist())
        newlines = [p for p in at.tolist() if p not in indexed]
        if newline == "per_video":
            assert layout.video_tokens_per_frame == 196 and newlines == [at[-1].item()]
            assert batch.visual.positions(0, 5).tolist() == at[5 * 196:6 * 196].tolist()
        else:
            assert layout.video_tokens_per_frame == 210 and newlines == at[14::15].tolist()
            assert len(newlines) == 32 * 14
            assert batch.visual.positions(0, 5).tolist() == [p for p in at[5 * 210:6 * 210].tolist()
                                                            if p not in newlines]


def test_per_row_embeds_are_the_frame_features_and_a_newline_after_each_row(per_row):
    batch = per_row.collator({"text": TextCrossEntropy()})([_video()])
    model, vis = per_row.hf.model, batch.visual
    at = _placeholders(batch, 0, per_row.layout().video_token_id)
    assert at.numel() == 4 * 2 * 3 and batch.visual.grid.tolist() == [[0, f, 2, 2] for f in range(4)]
    with torch.no_grad():
        embeds = per_row(batch).inputs_embeds[0]
        flat = type(model).get_video_features(model, batch.inputs["pixel_values_videos"]).pooler_output[0]
    assert flat.shape[0] == 4 * 4 + 1  # transformers: frames' pooled tokens, then one newline
    for i in range(len(vis)):
        f, r, c = int(vis.frame[i]), int(vis.row[i]), int(vis.col[i])
        torch.testing.assert_close(embeds[int(vis.position[i])], flat[f * 4 + r * 2 + c])
    assert at[2::3].tolist() == sorted(set(at.tolist()) - set(vis.position.tolist()))
    for p in at[2::3]:
        torch.testing.assert_close(embeds[p], model.image_newline.detach())
    copied = copy.deepcopy(per_row.hf)  # as merged exports copy it: the layout follows the copy
    assert copied.model.get_video_features.__self__ is copied.model


def test_newline_per_row_relays_features_and_checks_their_length():
    features = torch.arange(9 * 2, dtype=torch.float32).reshape(1, 9, 2)  # 2 frames of 2 x 2, newline last
    out = newline_per_row(features, frames=2, side=2)
    assert out[0, :, 0].tolist() == [0, 2, 16, 4, 6, 16, 8, 10, 16, 12, 14, 16]
    with pytest.raises(ValueError, match=r"length 9 for 3 frames of 2 x 2 tokens; expected 13"):
        newline_per_row(features, frames=3, side=2)


def test_time_instruction_text_from_the_frame_timestamps():
    sample = replace(_video(), timestamps=torch.tensor([0.0, 4.0, 8.0, 11.5]))
    text = ("The video lasts for 11.50 seconds, and 4 frames are uniformly sampled from it. These frames are "
            "located at 0.00s,4.00s,8.00s,11.50s.Please answer the following questions related to this video.")
    assert time_instruction(sample) == text
    known = replace(sample, meta={**sample.meta, "video_duration": 12.0})
    assert time_instruction(known).startswith("The video lasts for 12.00 seconds, and 4 frames")
    with pytest.raises(ValueError, match=r"sample '.*' \(squares\) has no timestamps"):
        time_instruction(ColouredSquares(1, num_views=2, seed=1)[0])


def test_time_instruction_opens_the_question_after_the_video(per_row, llava_onevision):
    sample = _video()
    prompt = per_row.collator().prompt_text(sample)
    assert f"<video>\n{time_instruction(sample)}\n{sample.prompt}<|im_end|>" in prompt
    assert "The video lasts" not in llava_onevision.collator().prompt_text(sample)
    images = ColouredSquares(1, num_views=2, seed=1)[0]  # image sets get no time text
    assert "The video lasts" not in per_row.collator().prompt_text(images)


def test_frame_prefix_goes_before_each_frames_rows(per_row):
    sample = _video()
    sample = replace(sample, meta={**sample.meta, FRAME_PREFIX: "<|im_start|>"})
    batch = per_row.collator(with_response=False)([sample])
    ids, lay = batch.inputs["input_ids"][0], per_row.layout()
    start = per_row.tokenizer.convert_tokens_to_ids("<|im_start|>")
    at = _placeholders(batch, 0, lay.video_token_id)
    assert at.numel() == 24
    for f in range(4):
        assert ids[at[f * 6] - 1] == start and at[f * 6 + 5] - at[f * 6] == 5  # prefix, then 2 rows of 2 + newline


def test_defaults_follow_the_checkpoint_config(llava_onevision, tmp_path):
    assert (llava_onevision.video_newline, llava_onevision.time_instruction) == ("per_video", False)
    assert video_newline_setting(SimpleNamespace(mm_newline_position="grid"), None, "m") == "per_row"
    assert video_newline_setting(SimpleNamespace(mm_newline_position="one_token"), None, "m") == "per_video"
    assert video_newline_setting(SimpleNamespace(mm_newline_position="grid"), "per_video", "m") == "per_video"
    with pytest.raises(ValueError, match=r"m: mm_newline_position 'frame' in config.json has no layout here"):
        video_newline_setting(SimpleNamespace(mm_newline_position="frame"), None, "m")
    with pytest.raises(ValueError, match=r"m: video_newline 'grid'; expected 'per_video' or 'per_row'"):
        video_newline_setting(SimpleNamespace(), "grid", "m")
    # a checkpoint whose config.json keeps the original keys gets LLaVA-Video's layout
    copy = Path(shutil.copytree(llava_onevision.path, tmp_path / "video"))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"mm_newline_position": "grid",
                                                           "add_time_instruction": True}))
    backbone = LlavaOneVision(str(copy))
    assert (backbone.layout().video_newline, backbone.layout().time_instruction) == ("per_row", True)
    assert backbone.load_args["video_newline"] == "per_row"  # a saved model is rebuilt with it


def _two_videos():
    return [_video(seed=5), replace(_video(seed=9), prompt="Which colour? Answer in one word, please.")]


@pytest.mark.parametrize("layout", ["per_video", "per_row"])
def test_batched_forward_equals_each_alone(tiny_cache, layout):
    backbone = LlavaOneVision("tiny:llava_onevision", video_newline=layout, time_instruction=layout == "per_row")
    samples, collate = _two_videos(), backbone.collator({"text": TextCrossEntropy()})
    with torch.no_grad():
        together = backbone(collate(samples)).hidden
        for b, sample in enumerate(samples):
            alone = backbone(collate([sample])).hidden[0]
            torch.testing.assert_close(together[b, :alone.shape[0]], alone, rtol=1e-5, atol=1e-5)


def test_per_row_generation_batched_equals_alone_with_both_samplers(per_row):
    samples, collate = _two_videos(), per_row.collator(with_response=False)
    both = decode(per_row, collate(samples), max_new_tokens=3).texts
    assert both == [decode(per_row, collate([s]), max_new_tokens=3).texts[0] for s in samples]
    # transformers' generate runs the same model forward (prefill through get_video_features)
    assert decode(per_row, collate(samples), sampler="transformers", max_new_tokens=3, do_sample=False).texts == both


def _loc3r_stack():
    """joint.yaml's stack (layout, situation, camera prior) on LLaVA-Video's layout, and one situated video batch."""
    from test_llava_onevision import _situated

    from thinkspace.cues import CameraPrior
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.objectives.layout import LayoutReconstruction
    from thinkspace.objectives.situation import Situation
    from thinkspace.teachers.oracle import OracleGeometryTeacher

    torch.manual_seed(0)
    backbone = LlavaOneVision("tiny:llava_onevision", video_newline="per_row", time_instruction=True)
    objectives = {"text": TextCrossEntropy(), "layout": LayoutReconstruction(), "situation": Situation()}
    module = SpatialVLM(backbone, objectives=objectives, cues={"camera": CameraPrior(OracleGeometryTeacher())},
                        optimizer=lambda p: torch.optim.AdamW(p, lr=2e-3))
    video = ColouredSquares(1, image_size=(56, 56), num_views=4, video=True, seed=4)[0]
    return module, module.collator()([_situated(video, 1)])


def test_the_loc3r_stack_places_its_tokens_on_the_per_row_layout(tiny_cache):
    """One camera token before each frame's 2 x (2 + 1) block; layout targets on the grid tokens only."""
    module, batch = _loc3r_stack()
    ids, lay = batch.inputs["input_ids"][0], module.backbone.layout()
    cams = (ids == module.cues["camera"].token_id).nonzero().flatten().tolist()
    at = (ids == lay.video_token_id).nonzero().flatten()
    assert at.numel() == 4 * 2 * 3 and cams == [int(at[6 * f]) - 1 for f in range(4)]
    assert batch.targets["layout"]["valid"].sum() == len(batch.visual) == 4 * 4  # newlines get no target


@pytest.mark.slow
def test_the_loc3r_stack_trains_on_the_per_row_layout(tiny_cache):
    module, batch = _loc3r_stack()
    optimizer = module.configure_optimizers()
    history = []
    for _ in range(5):
        total, terms = module.losses(batch)
        history.append({k: v.item() for k, v in terms.items() if not k.startswith("weight/")})
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    for term in history[0]:  # every named term falls
        assert history[-1][term] < history[0][term], (term, history[0][term], history[-1][term])
