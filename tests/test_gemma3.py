"""The Gemma 3 family: tiny offline build, token layout against the real processor, model inputs,
and the hidden-state objectives (text, layout, situation, latent) training on it."""

import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from thinkspace.backbones.gemma3 import Gemma3
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode import decode
from thinkspace.objectives import TextCrossEntropy

from cli_helpers import REPO

SIZES = [(50, 80), (120, 60), (112, 112)]  # (height, width) px: wide, tall, the model's own square


@pytest.fixture(scope="module")
def gemma3(tiny_cache):
    """The tiny Gemma 3 (weights shared: tests must not train it in place)."""
    return Gemma3("tiny:gemma3")


def _images(n, first=0):
    """``n`` random RGB images cycling through SIZES."""
    rng = np.random.default_rng(first)
    return [Image.fromarray(rng.integers(0, 255, (*SIZES[(first + i) % 3], 3), dtype=np.uint8)) for i in range(n)]


def _samples():
    """One, two and three images of mixed sizes, each with a response."""
    base = ColouredSquares(1, num_views=1, seed=0)[0]
    return [replace(base, id=f"s{n}", frames=_images(n, first=n)) for n in (1, 2, 3)]


def test_tiny_gemma3_is_built_once_through_the_registry(gemma3, tiny_cache):
    from thinkspace.backbones.registry import family_of_model_type, family_of_tiny
    from thinkspace.backbones.tiny import tiny_model_dir

    assert family_of_tiny("gemma3").backbone == "Gemma3" and family_of_model_type("gemma3").name == "gemma3"
    assert Path(gemma3.path) == tiny_model_dir("gemma3") and Path(gemma3.path).parent == Path(tiny_cache) / "tiny"


def test_tiny_directory_loads_offline_with_the_real_gemma3_classes(gemma3):
    processor = AutoProcessor.from_pretrained(gemma3.path)
    model = AutoModelForImageTextToText.from_pretrained(gemma3.path)
    assert type(processor).__name__ == "Gemma3Processor"
    assert type(processor.image_processor).__name__ == "Gemma3ImageProcessor"
    assert type(processor.tokenizer).__name__ == "GemmaTokenizer"
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    config = json.loads((Path(gemma3.path) / "config.json").read_text())
    assert config["model_type"] == "gemma3" and config["mm_tokens_per_image"] == 16  # 4 x 4 pooled tokens
    assert (config["vision_config"]["image_size"], config["vision_config"]["patch_size"]) == (112, 14)
    tokenizer = processor.tokenizer
    assert config["image_token_index"] == tokenizer.convert_tokens_to_ids("<image_soft_token>")
    ids = tokenizer("Wörld ☃ cube")["input_ids"]  # bos added; unknown characters as byte tokens
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids, skip_special_tokens=True) == "Wörld ☃ cube"
    assert gemma3.hidden_size == 128 and gemma3.family_label == "Gemma 3"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tokens_per_frame_is_the_grid_the_processor_writes(gemma3, size):
    """Any image size becomes the same 4 x 4 block of soft tokens (resized whole to 112 px)."""
    image = Image.new("RGB", size[::-1])
    prompt = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Where?"}]}]
    out = gemma3.processor.apply_chat_template(prompt, tokenize=True, return_dict=True, add_generation_prompt=True)
    count = sum(i == gemma3.layout().image_token_id for i in out["input_ids"][0])
    rows, cols = gemma3.tokens_per_frame(*size)
    assert (rows, cols) == (4, 4) and count == rows * cols
    sample = replace(_samples()[1], frames=[image, image])
    assert gemma3.collator()([sample]).visual.grid[:, 2:].tolist() == [[rows, cols]] * 2


def test_visual_index_is_every_image_block_as_the_processor_writes_it(gemma3):
    """1, 2 and 3 images of mixed sizes per sample: the collator's prompt ids are what the processor's
    own chat-template path writes (one <bos>), and each frame's index is its block of soft tokens,
    right after its <start_of_image>, row-major."""
    samples = _samples()
    batch = gemma3.collator({"text": TextCrossEntropy()})(samples)
    in_worker = pickle.loads(pickle.dumps(gemma3.collator({"text": TextCrossEntropy()})))  # data workers' copy
    assert torch.equal(in_worker(samples).inputs["input_ids"], batch.inputs["input_ids"])
    ids, vis, tok = batch.inputs["input_ids"], batch.visual, gemma3.tokenizer
    boi, eoi, image_id = (tok.convert_tokens_to_ids(t) for t in ("<start_of_image>", "<end_of_image>",
                                                                 "<image_soft_token>"))
    assert vis.grid.tolist() == [[b, f, 4, 4] for b in range(3) for f in range(b + 1)]
    assert vis.frames_per_group.tolist() == [1, 1, 1]
    assert batch.inputs["pixel_values"].shape == (6, 3, 112, 112)
    assert torch.equal(batch.inputs["token_type_ids"], (ids == image_id).long())  # padded with the ids
    for b, sample in enumerate(samples):
        content = [{"type": "image", "image": f} for f in sample.frames] + [{"type": "text", "text": sample.prompt}]
        own = gemma3.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=True,
                                                   return_dict=True, add_generation_prompt=True)["input_ids"][0]
        n = int(batch.prompt_lengths[b])
        assert ids[b, :n].tolist() == list(own) and (ids[b] == tok.bos_token_id).sum() == 1
        placeholders = (ids[b] == image_id).nonzero().flatten()
        assert vis.positions(b).tolist() == placeholders.tolist()
        for f in range(sample.num_frames):
            block = vis.positions(b, f)
            assert block.tolist() == list(range(int(block[0]), int(block[0]) + 16))
            assert ids[b, block[0] - 1] == boi and ids[b, block[-1] + 1] == eoi
            keep = (vis.sample == b) & (vis.frame == f)
            assert vis.row[keep].tolist() == [k // 4 for k in range(16)]
            assert vis.col[keep].tolist() == [k % 4 for k in range(16)]


def test_visual_tokens_hold_their_frame_pooled_patch_features(gemma3):
    """The token at (frame, row, col) holds the average of that frame's 2 x 2 SigLIP patches at
    (row, col), normed and projected: the index names the image region the model put there."""
    batch = gemma3.collator()(_samples())
    model = gemma3.hf.model
    with torch.no_grad():
        embeds = gemma3(batch).inputs_embeds
        patches = model.vision_tower(pixel_values=batch.inputs["pixel_values"]).last_hidden_state  # [F, 64, C]
        grid = patches.reshape(6, 8, 8, -1)
        projector = model.multi_modal_projector
        pooled = grid.reshape(6, 4, 2, 4, 2, -1).mean((2, 4))  # [F, 4, 4, C]
        expected = projector.mm_soft_emb_norm(pooled) @ projector.mm_input_projection_weight
    vis = batch.visual
    first = torch.tensor([0, 1, 3])  # each sample's first frame among the batch's six images
    torch.testing.assert_close(embeds[vis.sample, vis.position],
                               expected[first[vis.sample] + vis.frame, vis.row, vis.col], rtol=1e-4, atol=1e-5)


def test_labels_are_the_response_and_the_end_of_turn(gemma3):
    batch = gemma3.collator({"text": TextCrossEntropy()})(_samples()[:1])
    labels = batch.labels[0][batch.labels[0] != -100]
    assert gemma3.tokenizer.decode(labels) == _samples()[0].response + "<end_of_turn>"
    assert int((batch.labels[0] != -100).nonzero()[0]) == int(batch.prompt_lengths[0])


def test_logits_and_text_loss_match_the_transformers_model(gemma3):
    batch = gemma3.collator({"text": TextCrossEntropy()})(_samples())
    with torch.no_grad():
        out = gemma3(batch)
        ref = gemma3.hf(**gemma3.model_inputs(batch), labels=batch.labels)
        terms = TextCrossEntropy().loss(out, batch)
    mask = batch.inputs["attention_mask"].bool()
    torch.testing.assert_close(out.logits[mask], ref.logits[mask], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["ce"], ref.loss, rtol=1e-5, atol=1e-6)


class _Spy:
    """Records the ``token_type_ids`` every call of a module receives."""

    def __init__(self, module):
        self.seen = []
        self.handle = module.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        self.seen.append(kwargs.get("token_type_ids"))


def test_token_type_ids_reach_the_model_in_forward_and_generate(gemma3):
    """Gemma 3 attends bidirectionally inside an image block only when told by token_type_ids."""
    batch = gemma3.collator()(_samples()[:2])
    image = (batch.inputs["input_ids"] == gemma3.layout().image_token_id).long()
    spy = _Spy(gemma3.hf.model)
    try:
        with torch.no_grad():
            hidden = gemma3(batch).hidden
            causal = gemma3.hf.model(**{k: v for k, v in gemma3.model_inputs(batch).items() if k != "token_type_ids"},
                                     use_cache=False).last_hidden_state
        assert torch.equal(spy.seen[0], image)
        vis = batch.visual
        first = vis.position[(vis.row == 0) & (vis.col == 0)]  # a block's first token sees its later tokens
        assert not torch.allclose(hidden[vis.sample[:1], first[:1]], causal[vis.sample[:1], first[:1]])
        spy.seen.clear()
        decode(gemma3, batch, sampler="transformers", max_new_tokens=3, do_sample=False)
    finally:
        spy.handle.remove()
    types = spy.seen[0]  # the prefill: the left-padded prompts' image tokens
    lengths = batch.prompt_lengths
    width = int(lengths.max())
    for b, n in enumerate(lengths.tolist()):
        assert types[b, width - n:].tolist() == image[b, :n].tolist() and types[b, :width - n].sum() == 0
    assert all(t is None for t in spy.seen[1:])  # later steps: one new text token each


def test_what_gemma3_cannot_do_is_refused_naming_the_family(gemma3):
    """No video input."""
    assert gemma3.capabilities == {"fixed token grid", "latent decoding"}
    video = ColouredSquares(1, num_views=3, video=True, seed=0)[0]
    with pytest.raises(ValueError, match=r"is a video and needs 'video', which the Gemma 3 backbone .*gemma3-\w+ "
                                         r"does not support \(it supports: fixed token grid, latent decoding\)"):
        gemma3.collator()([video])


def test_latent_decoding_follows_the_sliding_window_layers(gemma3):
    """Prompts longer than the sliding window decode to transformers' own greedy tokens: the decode
    loop lets each layer build its own mask (one prepared full mask would let the sliding layers see
    past their window)."""
    batch = gemma3.collator(with_response=False)(_samples()[1:])
    assert int(batch.prompt_lengths.min()) > gemma3.hf.config.text_config.sliding_window
    ours = decode(gemma3, batch, None, max_new_tokens=8, eos_token_id=[])
    assert ours.decoder_step.startswith("hugging face")  # the lean step refuses sliding windows, by name
    prompts = batch.prompts(gemma3.tokenizer.pad_token_id)
    with torch.no_grad():
        theirs = gemma3.hf.generate(**gemma3.model_inputs(prompts), max_new_tokens=8, min_new_tokens=8,
                                    do_sample=False, pad_token_id=gemma3.tokenizer.pad_token_id)
    assert ours.tokens.tolist() == theirs[:, prompts.inputs["input_ids"].shape[1]:].tolist()


def test_grpo_rolls_out_latents_on_gemma3(tiny_cache):
    from thinkspace.objectives import LatentAlignment
    from thinkspace.rl import SpatialGRPO

    torch.manual_seed(0)
    module = SpatialGRPO(Gemma3("tiny:gemma3"), latent=LatentAlignment(k=2, projector_width=16), group_size=2,
                         max_new_tokens=6, beta=0.0)
    data = SyntheticSpatial(1, image_size=56, num_views=2, settings=["leftmost"], num_objects=(3, 3), seed=0)
    rollout = module.roll_out(module.collator()([data[0]]))
    slot = module.latent.slot
    assert rollout.generation.tokens[:, :4].tolist() == [[slot.start_id, slot.pad_id, slot.pad_id, slot.end_id]] * 2
    assert rollout.generation.has_latents.all()
    assert rollout.rewards.names == ["format", "answer", "latent3d"]

def test_the_paper_projector_sizes_itself_from_the_fixed_token_grid(gemma3):
    """3DThinker's fixed-size projector: 16 visual tokens per frame (any image size maps to them)."""
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.objectives import LatentAlignment

    latent = LatentAlignment(k=2, projector="paper", paper_view_size=(56, 56))  # the data's size
    module = SpatialVLM(Gemma3(gemma3.path), objectives={"latent": latent})
    assert latent.projector.visual_tokens == 16
    data = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], seed=0)
    total, terms = module.losses(module.collator()([data[0], data[1]]))
    assert torch.isfinite(terms["latent.align"]) and terms["latent.align"] > 0


def test_a_pan_and_scan_checkpoint_is_refused(gemma3, tmp_path):
    copy = tmp_path / "pan"
    shutil.copytree(gemma3.path, copy)
    config = json.loads((copy / "processor_config.json").read_text())
    config["image_processor"]["do_pan_and_scan"] = True
    (copy / "processor_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"sets do_pan_and_scan true; Gemma3 expects it false or null"):
        Gemma3(str(copy))


def test_hidden_state_objectives_train_on_gemma3(gemma3, tiny_cache):
    """Text, latent alignment (size-free projector, oracle teacher), layout and situation on synthetic
    view sets and a walk's frames as an image set: every term finite, gradients reach every head and
    the vision tower, and every term falls in 12 steps."""
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.objectives import LatentAlignment, LayoutReconstruction, Situation
    from thinkspace.teachers.oracle import OracleGeometryTeacher

    torch.manual_seed(0)
    objectives = {"text": TextCrossEntropy(), "latent": LatentAlignment(k=2, projector_width=16,
                                                                         teacher=OracleGeometryTeacher()),
                  "layout": LayoutReconstruction(), "situation": Situation()}
    module = SpatialVLM(Gemma3(gemma3.path), objectives=objectives, optimizer=lambda p: torch.optim.AdamW(p, lr=2e-3))
    assert type(objectives["latent"].projector).__name__ == "LatentProjector"
    views = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], seed=0)
    walk = SyntheticSpatial(1, kind="video", settings=["situation"], image_size=56, num_frames=3, seed=0)[0]
    batch = module.collator()([views[0], views[1], replace(walk, timestamps=None)])  # frames as an image set
    assert batch.visual.grid[:, 1:].tolist() == [[0, 4, 4], [0, 4, 4], [1, 4, 4], [0, 4, 4], [1, 4, 4], [2, 4, 4]]
    optimizer = module.configure_optimizers()
    history = []
    for step in range(12):
        total, terms = module.losses(batch)
        history.append({k: v.item() for k, v in terms.items() if not k.startswith("weight/")})
        optimizer.zero_grad()
        total.backward()
        if step == 0:
            for name in ("latent", "layout", "situation"):
                grads = [p.grad for p in objectives[name].parameters() if p.grad is not None]
                assert grads and any(g.abs().sum() > 0 for g in grads), name
            hf = module.backbone.hf
            for part in (hf.model.vision_tower, hf.model.multi_modal_projector, hf.model.language_model):
                assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
        optimizer.step()
    assert set(history[0]) == {"text.ce", "latent.align", "layout.nll", "situation.position",
                               "situation.orientation"}
    for term in history[0]:  # measured: text 7.1 -> 2.5, latent 0.55 -> 0.41, layout 7.8 -> 2.3,
        first, last = history[0][term], history[-1][term]  # position 2.1 -> -1.7, orientation 1.5 -> 0.06
        assert all(np.isfinite(h[term]) for h in history) and (last < 0.8 * first or last < first - 1.0), term


def test_lora_adapts_the_language_model_and_export_round_trips(gemma3, tmp_path):
    """LoRA adapters only on the text model; an export with added tokens past the padded vocabulary
    (the scaled Gemma embedding resized, still tied) rebuilds with the same logits."""
    from thinkspace.backbones import LoraSettings

    backbone = Gemma3(gemma3.path, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    backbone.add_tokens(["<|latent_pad|>", *[f"<extra_{i}>" for i in range(40)]])
    embeddings = backbone.hf.get_input_embeddings()
    assert type(embeddings).__name__ == "Gemma3TextScaledWordEmbedding"
    assert embeddings.weight.shape[0] == len(backbone.tokenizer) > 1280
    assert backbone.hf.lm_head.weight is embeddings.weight
    with torch.no_grad():
        for n, p in backbone.named_parameters():
            if "lora_B" in n:
                p.add_(0.05)
    batch = backbone.collator()(_samples()[:2])
    init_args = backbone.save_pretrained(tmp_path / "export")
    rebuilt = Gemma3(**{k: (str(tmp_path / "export" / v) if k.endswith("path") else v) for k, v in init_args.items()})
    assert rebuilt.tokenizer.convert_tokens_to_ids("<|latent_pad|>") == \
        backbone.tokenizer.convert_tokens_to_ids("<|latent_pad|>")
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(batch).logits, backbone(batch).logits, rtol=1e-4, atol=1e-4)


def test_input_cues_edit_the_visual_tokens_and_the_prompt(gemma3):
    """The camera prior puts one <|camera|> before each image's block; the point map edits exactly
    the visual tokens with depth; camera text writes the cameras into the prompt."""
    from thinkspace.cues import CameraPrior, CameraText, PointMapCue
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.teachers.oracle import OracleGeometryTeacher

    torch.manual_seed(0)
    module = SpatialVLM(Gemma3(gemma3.path), objectives={"text": TextCrossEntropy()},
                        cues={"camera": CameraPrior(OracleGeometryTeacher()), "points": PointMapCue(),
                              "cameras": CameraText()})
    data = SyntheticSpatial(2, image_size=56, num_views=(2, 3), settings=["leftmost"], seed=0)
    batch = module.collator()([data[0], data[1]])
    ids, vis, tok = batch.inputs["input_ids"], batch.visual, module.backbone.tokenizer
    assert "Cameras (x, y, z" in tok.decode(ids[0])
    camera = tok.convert_tokens_to_ids("<|camera|>")
    for b in range(2):
        starts = [int(vis.positions(b, f)[0]) for f in range(int(vis.frame[vis.sample == b].max()) + 1)]
        cameras = (ids[b] == camera).nonzero().flatten().tolist()
        assert len(cameras) == len(starts) and all(c < s for c, s in zip(cameras, starts))
    with torch.no_grad():
        before = module.backbone(batch).inputs_embeds
        after = module.backbone(batch, module.embeds_hook()).inputs_embeds
    valid = batch.targets["points"]["valid"]
    changed = (after != before).any(-1)
    expected = torch.zeros_like(changed)
    expected[vis.sample[valid], vis.position[valid]] = True
    expected[ids == camera] = True
    assert valid.any() and torch.equal(changed, expected)


def test_a_config_selects_gemma3_by_class_path(tmp_path):
    """The quickstart config with the backbone swapped by class_path trains 2 steps through the CLI."""
    from thinkspace.cli import main

    run = tmp_path / "run"
    import thinkspace.backbones

    assert thinkspace.backbones.Gemma3 is Gemma3  # the registry line exports it
    backbone = {"class_path": "thinkspace.backbones.Gemma3", "init_args": {"path": "tiny:gemma3"}}
    main(["fit", "--config", str(REPO / "configs" / "quickstart.yaml"), "--run_dir", str(run),
          "--model.backbone", json.dumps(backbone),
          "--trainer.max_steps", "2", "--data.batch_size", "2", "--data.num_workers", "0", "--data.val", "null",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 2
    assert "backbone.model.model.multi_modal_projector.mm_input_projection_weight" in state["state_dict"]


def test_thinkspace_load_picks_gemma3_for_a_plain_gemma3_directory(gemma3):
    """The registry maps model_type gemma3 to Gemma3: a plain directory loads and answers (greedy,
    the same text as the backbone's own generate)."""
    import thinkspace

    with pytest.warns(UserWarning, match="loaded as a plain VLM"):
        model = thinkspace.load(gemma3.path)
    assert type(model.module.backbone) is Gemma3
    sample = _samples()[1]
    answer = model.ask(sample.frames, sample.prompt, max_new_tokens=3)
    batch = gemma3.collator(with_response=False)([replace(sample, response=None)])
    assert answer.text == decode(gemma3, batch, sampler="transformers", max_new_tokens=3, do_sample=False).texts[0]


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(gemma3):
    batch = gemma3.collator({"text": TextCrossEntropy()})(_samples())

    def loss_and_grads(checkpointing):
        backbone = Gemma3(gemma3.path)
        hf = backbone.hf
        if checkpointing:
            backbone.enable_gradient_checkpointing()
            assert hf.model.language_model.gradient_checkpointing
            assert hf.model.vision_tower.encoder.gradient_checkpointing
        loss = TextCrossEntropy().loss(backbone(batch), batch)["ce"]
        loss.backward()
        return loss.detach(), hf.lm_head.weight.grad.clone(), next(hf.model.vision_tower.parameters()).grad.clone()

    plain = loss_and_grads(False)
    checkpointed = loss_and_grads(True)
    for a, b in zip(checkpointed, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
