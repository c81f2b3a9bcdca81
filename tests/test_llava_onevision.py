"""The LLaVA-OneVision adapter: offline tiny build, same numbers as transformers, token layout."""

import json
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from thinkspace.backbones import LlavaOneVision, LoraSettings, QwenVL
from thinkspace.backbones.tiny import TINY_FAMILIES
from thinkspace.cues import CameraPrior
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.schema import Geometry, Situation
from thinkspace.generation.decode import decode
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import TextCrossEntropy
from thinkspace.objectives.layout import LayoutReconstruction
from thinkspace.objectives.situation import Situation as SituationObjective
from thinkspace.teachers.oracle import OracleGeometryTeacher


def _samples():
    """One image (anyres), a 4-frame video, two images and three images (multi-image)."""
    one, two, three = (ColouredSquares(1, num_views=n, seed=n)[0] for n in (1, 2, 3))
    video = ColouredSquares(2, num_views=4, video=True, seed=5)[0]
    return [one, video, two, three]


@pytest.fixture(scope="module")
def batch(llava_onevision):
    return llava_onevision.collator({"text": TextCrossEntropy()})(_samples())


def test_tiny_model_loads_offline_with_the_family_classes(llava_onevision):
    assert "llava_onevision" in TINY_FAMILIES
    processor = AutoProcessor.from_pretrained(llava_onevision.path)
    model = AutoModelForImageTextToText.from_pretrained(llava_onevision.path)
    assert type(processor).__name__ == "LlavaOnevisionProcessor"
    assert type(processor.image_processor).__name__ == "LlavaOnevisionImageProcessor"
    assert type(processor.video_processor).__name__ == "LlavaOnevisionVideoProcessor"
    assert type(model).__name__ == "LlavaOnevisionForConditionalGeneration"
    cfg, tok = model.config, processor.tokenizer
    assert (cfg.text_config.model_type, cfg.vision_config.model_type) == ("qwen2", "siglip_vision_model")
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<image>") == processor.image_token_id
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<video>") == processor.video_token_id
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert processor.num_image_tokens == (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2 == 16
    assert len(cfg.image_grid_pinpoints) > 1  # anyres: several crop grids


def test_logits_and_text_loss_match_transformers(llava_onevision, batch):
    with torch.no_grad():
        out = llava_onevision(batch)
        ref = llava_onevision.hf(**llava_onevision.model_inputs(batch), labels=batch.labels)
        terms = TextCrossEntropy().loss(out, batch)
    mask = batch.inputs["attention_mask"].bool()
    torch.testing.assert_close(out.logits[mask], ref.logits[mask], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["ce"], ref.loss, rtol=1e-5, atol=1e-6)
    assert out.hidden.shape == (*batch.labels.shape, llava_onevision.hidden_size)


def test_frame_grids_follow_the_token_layout(llava_onevision, batch):
    # 56x112 px frames, 56 px crops of 4x4 patches. One image: 4x4 base grid, then the best
    # crop grid (1x2 crops, 4x8 tokens, nothing to unpad) with a newline per row: 16 + 32 + 4 = 52
    # placeholders. Several images: 4x4 + newline each; padded to 112x112, the image covers rows
    # 1..2. Video: 2x2 pooled per frame + one newline after the last frame.
    grid = batch.visual.grid.tolist()
    assert grid == [[0, 0, 4, 4], [1, 0, 2, 2], [1, 1, 2, 2], [1, 2, 2, 2], [1, 3, 2, 2],
                    [2, 0, 2, 4], [2, 1, 2, 4], [3, 0, 2, 4], [3, 1, 2, 4], [3, 2, 2, 4]]
    assert batch.visual.frames_per_group.tolist() == [1, 1, 1, 1]
    lay, ids = llava_onevision.layout(), batch.inputs["input_ids"]
    counts = [int(((ids[b] == lay.image_token_id) | (ids[b] == lay.video_token_id)).sum()) for b in range(4)]
    assert counts == [52, 4 * 4 + 1, 2 * 17, 3 * 17]


def test_visual_tokens_hold_the_model_features_of_their_frame_row_and_col(llava_onevision, batch):
    """Each indexed token's decoder input is the feature the model computed for that frame's
    (row, col) patch, and every other placeholder of a frame block is a newline, a
    high-resolution or a padding token."""
    model, vis = llava_onevision.hf.model, batch.visual
    with torch.no_grad():
        embeds = llava_onevision(batch).inputs_embeds
        images = model.get_image_features(batch.inputs["pixel_values"], batch.inputs["image_sizes"],
                                          batch_num_images=batch.inputs["batch_num_images"]).pooler_output
        video = model.get_video_features(batch.inputs["pixel_values_videos"]).pooler_output[0]
    p = 4
    image_of = {(0, 0): (0, 0, 0)}  # (sample, frame) -> (image index, top, left) in the model's order
    image_of |= {(2, f): (1 + f, 1, 0) for f in range(2)} | {(3, f): (3 + f, 1, 0) for f in range(3)}
    for i in range(len(vis)):
        b, f, r, c = (int(t[i]) for t in (vis.sample, vis.frame, vis.row, vis.col))
        if b == 1:
            expected = video[f * 4 + r * 2 + c]
        else:
            k, top, left = image_of[(b, f)]
            expected = images[k][(r + top) * p + c + left]
        torch.testing.assert_close(embeds[b, int(vis.position[i])], expected, rtol=1e-5, atol=1e-5)
    # video: everything but the last placeholder is indexed, and the last one is the newline
    ids = batch.inputs["input_ids"][1]
    placeholders = (ids == llava_onevision.layout().video_token_id).nonzero().flatten()
    assert vis.positions(1).tolist() == placeholders[:-1].tolist()
    torch.testing.assert_close(embeds[1, placeholders[-1]], model.image_newline.detach())
    # per frame: contiguous, in sequence order, frame by frame
    for f in range(4):
        assert vis.positions(1, f).tolist() == placeholders[f * 4:(f + 1) * 4].tolist()


def test_positions_are_the_processor_placeholders_per_frame(llava_onevision, batch):
    lay = llava_onevision.layout()
    ids = batch.inputs["input_ids"]
    for b in (2, 3):  # multi-image: blocks of 4x4 + newline; the top row and the bottom row are padding
        placeholders = (ids[b] == lay.image_token_id).nonzero().flatten()
        for f in range(len(placeholders) // 17):
            block = placeholders[f * 17:(f + 1) * 17]
            assert vis_positions(batch, b, f) == block[4:12].tolist()
    single = (ids[0] == lay.image_token_id).nonzero().flatten()
    assert vis_positions(batch, 0, 0) == single[:16].tolist()  # the base grid comes first


def vis_positions(batch, b, f):
    return batch.visual.positions(b, f).tolist()


def test_wrong_family_is_refused_with_its_name(tiny_cache, tmp_path):
    with pytest.raises(ValueError, match=r"qwen2_5_vl-.*model_type 'qwen2_5_vl' is not a LLaVA-OneVision family "
                                         r"model; LlavaOneVision supports \['llava_onevision'\]"):
        LlavaOneVision("tiny:qwen2_5_vl")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava_onevision"}))
    with pytest.raises(ValueError, match=r"model_type 'llava_onevision' is not a Qwen-VL family model"):
        QwenVL(str(tmp_path))


def test_videos_with_different_frame_counts_are_an_error(llava_onevision):
    videos = [ColouredSquares(1, num_views=n, video=True)[0] for n in (3, 4)]
    with pytest.raises(ValueError, match=r"same frame count; got \[3, 4\] frames"):
        llava_onevision.collator()(videos)


def test_lora_adapts_only_the_language_model_and_the_collator_pickles(tiny_cache):
    import pickle

    backbone = LlavaOneVision("tiny:llava_onevision", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    collator = pickle.loads(pickle.dumps(backbone.collator({"text": TextCrossEntropy()})))  # data workers
    batch = collator(_samples()[:2])
    TextCrossEntropy().loss(backbone(batch), batch)["ce"].backward()
    assert all(p.grad is not None for n, p in backbone.named_parameters() if p.requires_grad)


def test_generate_returns_text_per_sample(llava_onevision, batch):
    texts = decode(llava_onevision, batch, sampler="transformers", max_new_tokens=3, do_sample=False).texts
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)


def test_spatial_vlm_training_steps_lower_the_loss(tiny_cache):
    torch.manual_seed(0)
    module = SpatialVLM(LlavaOneVision("tiny:llava_onevision"), optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))
    fixed = module.collator()([ColouredSquares(4, num_views=(1, 2), seed=3)[i] for i in range(4)])
    optimizer = module.configure_optimizers()
    losses = []
    for _ in range(5):
        loss = module.losses(fixed)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(module.losses(fixed)[0].item())
    assert losses[-1] < losses[0] - 1.0 and all(b < a for a, b in zip(losses, losses[1:])), losses


def _situated(sample, i):
    """``sample`` (56x56 px frames) with depth, poses and a situation."""
    s = sample.num_frames
    K = torch.tensor([[40.0, 0.0, 28.0], [0.0, 40.0, 28.0], [0.0, 0.0, 1.0]]).repeat(s, 1, 1)
    poses = torch.eye(4).repeat(s, 1, 1)
    poses[:, 0, 3] = 0.1 * torch.arange(s) + 0.2 * i
    depth = torch.linspace(1.0, 3.0, 56)[:, None].expand(s, 56, 56) + 0.1 * i
    situation = Situation((0.5 * i, -0.3 * i), -3.0 + 1.5 * i, f"I stand at spot {i}.")
    return replace(sample, geometry=Geometry(K, poses, depth), situation=situation)


def test_layout_situation_and_camera_prior_work_on_this_family(tiny_cache):
    torch.manual_seed(0)
    objectives = {"text": TextCrossEntropy(), "layout": LayoutReconstruction(), "situation": SituationObjective()}
    module = SpatialVLM(LlavaOneVision("tiny:llava_onevision"), objectives=objectives,
                        cues={"camera": CameraPrior(OracleGeometryTeacher())},
                        optimizer=lambda p: torch.optim.AdamW(p, lr=2e-3))
    samples = [ColouredSquares(1, image_size=(56, 56), num_views=n, video=n == 4, seed=n)[0] for n in (1, 2, 4)]
    batch = module.collator()([_situated(s, i) for i, s in enumerate(samples)])
    # one <|camera|> right before each image's placeholders and before each video frame's 2x2 tokens
    ids, lay = batch.inputs["input_ids"], module.backbone.layout()
    cams = [(ids[b] == module.cues["camera"].token_id).nonzero().flatten().tolist() for b in range(3)]
    image = [(ids[b] == lay.image_token_id).nonzero().flatten() for b in range(2)]
    video = (ids[2] == lay.video_token_id).nonzero().flatten()
    assert cams[0] == [int(image[0][0]) - 1]
    assert cams[1] == [int(image[1][0]) - 1, int(image[1][17]) - 1]  # blocks of 4x4 + newline
    assert cams[2] == [int(video[4 * f]) - 1 for f in range(4)]
    assert [int(video[4 * f + 3]) + 1 for f in range(3)] == cams[2][1:]  # nothing else between the frames
    assert batch.targets["layout"]["valid"].sum() == len(batch.visual)  # every token sees depth
    optimizer = module.configure_optimizers()
    history = []
    for _ in range(25):
        total, terms = module.losses(batch)
        history.append({k: v.item() for k, v in terms.items()})
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    for term in (t for t in history[0] if not t.startswith("weight/")):  # every named term falls
        assert history[-1][term] < 0.8 * history[0][term] or history[-1][term] < history[0][term] - 1.0, term
