"""The composed backbone (timm encoder + projector + causal LM): contract, recipe, export, training."""

import json
import pickle
from dataclasses import replace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkspace.backbones import ComposedVLM, LoraSettings
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode import decode
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment, TextCrossEntropy

from cli_helpers import REPO


def _samples():
    """One image, a 4-frame video, two images and three images."""
    one, two, three = (ColouredSquares(1, num_views=n, seed=n)[0] for n in (1, 2, 3))
    video = ColouredSquares(2, num_views=4, video=True, seed=5)[0]
    return [one, video, two, three]


@pytest.fixture(scope="module")
def batch(composed):
    return composed.collator({"text": TextCrossEntropy()})(_samples())


def test_tiny_directory_holds_a_plain_causal_lm_and_the_vision_weights(composed):
    root = composed.path
    config = json.loads(open(f"{root}/config.json").read())
    assert config["model_type"] == "thinkspace_composed" and config["encoder"] == "vit_tiny_patch16_224"
    assert (config["patch_grid"], config["pool"]) == ([8, 8], 2)  # 112 px / 14 px patches, 2x2 pooled
    lm = AutoModelForCausalLM.from_pretrained(f"{root}/language_model")
    assert type(lm).__name__ == "Qwen2ForCausalLM"
    assert "<image>" in AutoTokenizer.from_pretrained(f"{root}/language_model").get_vocab()
    hf = composed.hf  # the transformers-VLM shape the objectives, decoding and GRPO reach into
    assert hf.model.language_model is not None and hf.lm_head.weight.shape[1] == composed.hidden_size == 128
    assert type(hf.model.vision_tower).__name__ == "VisionTransformer"
    assert composed.layout().rows == composed.layout().cols == 4


def test_forward_shapes_for_one_to_three_frames_and_a_video(composed, batch):
    assert batch.inputs["pixel_values"].shape == (1 + 4 + 2 + 3, 3, 112, 112)
    assert batch.visual.grid.tolist() == [[0, 0, 4, 4], *[[1, f, 4, 4] for f in range(4)],
                                          *[[2, f, 4, 4] for f in range(2)], *[[3, f, 4, 4] for f in range(3)]]
    assert batch.visual.frames_per_group.tolist() == [1, 1, 1, 1]
    collate = pickle.loads(pickle.dumps(composed.collator()))  # data workers get a pickled collator
    with torch.no_grad():
        out = composed(batch)
        single = composed(collate(_samples()[2:3]))  # batch size 1, two frames
    assert out.hidden.shape == (4, batch.labels.shape[1], 128)
    assert single.hidden.shape[0] == 1 and len(single.visual) == 2 * 16


def test_visual_positions_are_the_image_tokens_and_hold_their_frame_features(composed, batch):
    ids, vis = batch.inputs["input_ids"], batch.visual
    image_id = composed.layout().image_token_id
    for b, frames in enumerate((1, 4, 2, 3)):
        placeholders = (ids[b] == image_id).nonzero().flatten()
        assert placeholders.numel() == frames * 16 and vis.positions(b).tolist() == placeholders.tolist()
        for f in range(frames):  # each frame one contiguous block, frames in order
            assert vis.positions(b, f).tolist() == placeholders[f * 16:(f + 1) * 16].tolist()
    with torch.no_grad():
        embeds = composed(batch).inputs_embeds
        features = composed.hf.model.get_image_features(batch.inputs["pixel_values"])  # [F, 16, D]
    first_frame = torch.tensor([0, 1, 5, 7])  # global index of each sample's first frame
    index = first_frame[vis.sample] + vis.frame
    torch.testing.assert_close(embeds[vis.sample, vis.position], features[index, vis.row * 4 + vis.col])


def test_logits_and_text_loss_match_the_transformers_model(composed, batch):
    with torch.no_grad():
        out = composed(batch)
        ref = composed.hf(**composed.model_inputs(batch), labels=batch.labels)
        terms = TextCrossEntropy().loss(out, batch)
    mask = batch.inputs["attention_mask"].bool()
    torch.testing.assert_close(out.logits[mask], ref.logits[mask], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["ce"], ref.loss, rtol=1e-5, atol=1e-6)


def test_generate_equals_kv_cached_greedy_decoding(composed, batch):
    """transformers' generate (pixels only in the prefill) and thinkspace's own decoder agree."""
    texts = decode(composed, batch, sampler="transformers", max_new_tokens=4, do_sample=False, eos_token_id=[]).texts
    own = decode(composed, batch, None, max_new_tokens=4, eos_token_id=[])
    assert len(texts) == 4 and texts == own.texts


def test_latent_decoding_yields_k_latents_per_sample(tiny_cache):
    module = SpatialVLM(ComposedVLM("tiny:composed"), objectives={"latent": LatentAlignment(k=3, projector_width=16)})
    module.eval()
    data = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], seed=0)
    batch = module.collator()([replace(data[i], response="") for i in range(2)])
    slot = module.objectives["latent"].slot
    with torch.no_grad():
        forced = slot.gather(module.backbone(batch).hidden, batch.inputs["input_ids"])
    decoded = decode(module.backbone, batch, slot, mode="tokens", max_new_tokens=6)
    assert decoded.latents.shape == (2, 3, 128) and decoded.has_latents.all()
    torch.testing.assert_close(decoded.latents, forced, atol=1e-4, rtol=1e-4)


def rebuild(init_args, out_dir):
    """The backbone from ``save_pretrained``'s init_args, ``*path`` keys joined to the export directory."""
    return ComposedVLM(**{k: (str(out_dir / v) if k.endswith("path") else v) for k, v in init_args.items()})


def test_the_paper_projector_sizes_itself_from_the_fixed_token_grid(tiny_cache):
    """3DThinker's fixed-size projector: 16 visual tokens per frame (any image size maps to them)."""
    latent = LatentAlignment(k=2, projector="paper", paper_view_size=(56, 56))  # the data's size
    module = SpatialVLM(ComposedVLM("tiny:composed"), objectives={"latent": latent})
    assert latent.projector.visual_tokens == 16
    data = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], seed=0)
    total, terms = module.losses(module.collator()([data[0], data[1]]))
    assert torch.isfinite(terms["latent.align"]) and terms["latent.align"] > 0


def test_input_cues_point_map_and_camera_text(tiny_cache):
    """PointMapCue edits exactly the visual tokens with depth; CameraText writes the cameras into the prompt."""
    from thinkspace.cues import CameraText, PointMapCue

    torch.manual_seed(0)
    module = SpatialVLM(ComposedVLM("tiny:composed"), objectives={"text": TextCrossEntropy()},
                        cues={"points": PointMapCue(), "cameras": CameraText()})
    data = SyntheticSpatial(2, image_size=56, num_views=(2, 3), settings=["leftmost"], seed=0)
    batch = module.collator()([data[0], data[1]])
    assert "Cameras (x, y, z" in module.backbone.tokenizer.decode(batch.inputs["input_ids"][0])
    with torch.no_grad():
        before = module.backbone(batch).inputs_embeds
        after = module.backbone(batch, module.embeds_hook()).inputs_embeds
    vis, valid = batch.visual, batch.targets["points"]["valid"]
    expected = torch.zeros(before.shape[:2], dtype=torch.bool)
    expected[vis.sample[valid], vis.position[valid]] = True
    assert valid.any() and torch.equal((after != before).any(-1), expected)


def _train(backbone, steps=3, freeze=None):
    """A few AdamW steps (weight decay on) with text + latent objectives (the latter adds tokens)."""
    torch.manual_seed(0)
    objectives = {"text": TextCrossEntropy(), "latent": LatentAlignment(k=2, projector_width=16)}
    module = SpatialVLM(backbone, objectives=objectives,
                        freeze=freeze, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1))
    before = {n: p.detach().clone() for n, p in backbone.hf.named_parameters()}
    data = SyntheticSpatial(4, image_size=56, num_views=(1, 2), settings=["leftmost"], seed=1)
    batch = module.collator()([data[i] for i in range(4)])
    optimizer = module.configure_optimizers()
    for _ in range(steps):
        optimizer.zero_grad()
        module.losses(batch)[0].backward()
        optimizer.step()
    after = dict(backbone.hf.named_parameters())

    def changed(prefix):
        names = [n for n in before if n.startswith(prefix)]
        assert names, prefix
        return {bool((after[n] != before[n]).any()) for n in names if after[n].shape == before[n].shape}

    return changed


def test_projector_stage_trains_only_the_projector_bit_identically(tiny_cache):
    changed = _train(ComposedVLM("tiny:composed", stage="projector"))
    assert changed("model.multi_modal_projector.") == {True}
    assert changed("model.vision_tower.") == {False}
    assert changed("model.language_model.") == {False}  # embeddings too, after the latent tokens were added


def test_joint_stage_with_frozen_encoder_and_a_freeze_pattern(tiny_cache):
    changed = _train(ComposedVLM("tiny:composed", freeze_encoder=True))
    assert changed("model.vision_tower.") == {False}
    assert changed("model.multi_modal_projector.") == {True}
    assert True in changed("model.language_model.layers.")
    # model.freeze patterns compose with the switches: the encoder trains, the projector does not
    changed = _train(ComposedVLM("tiny:composed"), freeze=[r"multi_modal_projector"])
    assert changed("model.multi_modal_projector.") == {False} and True in changed("model.vision_tower.")


def test_every_objective_term_falls_on_a_fixed_synthetic_batch(tiny_cache):
    """Text, latent alignment (oracle teacher), layout and situation, with the camera prior, on
    synthetic view sets and a video walk with a situation: every term falls clearly in 20 steps."""
    from thinkspace.cues import CameraPrior
    from thinkspace.objectives import LayoutReconstruction, Situation
    from thinkspace.teachers.oracle import OracleGeometryTeacher

    torch.manual_seed(0)
    objectives = {"text": TextCrossEntropy(), "latent": LatentAlignment(k=2, projector_width=16,
                                                                         teacher=OracleGeometryTeacher()),
                  "layout": LayoutReconstruction(), "situation": Situation()}
    module = SpatialVLM(ComposedVLM("tiny:composed"), objectives=objectives,
                        cues={"camera": CameraPrior(OracleGeometryTeacher())},
                        optimizer=lambda p: torch.optim.AdamW(p, lr=2e-3))
    views = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], seed=0)
    walks = SyntheticSpatial(1, kind="video", settings=["situation"], image_size=56, num_frames=3, seed=0)
    batch = module.collator()([views[0], views[1], walks[0]])
    optimizer = module.configure_optimizers()
    history = []
    for _ in range(20):
        total, terms = module.losses(batch)
        history.append({k: v.item() for k, v in terms.items() if not k.startswith("weight/")})
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert {"text.ce", "latent.align", "layout.nll"} <= set(history[0]) and any(k.startswith("situation.")
                                                                                 for k in history[0])
    for term in history[0]:  # measured: text 6.9 -> 0.9, latent 0.58 -> 0.39, layout 7.8 -> 2.1, situation
        first, last = history[0][term], history[-1][term]  # position 1.6 -> -3.4, orientation 1.5 -> 0.02
        assert last < 0.8 * first or last < first - 1.0, (term, first, last)


def test_every_objective_trains_through_the_cli(tmp_path):
    """configs/composed/tiny.yaml (text, latent, layout, situation, camera prior) fits for 3 steps."""
    from thinkspace.cli import main

    run = tmp_path / "run"
    main(["fit", "--config", str(REPO / "configs" / "composed" / "tiny.yaml"), "--run_dir", str(run),
          "--trainer.max_steps", "3", "--trainer.log_every_n_steps", "1", "--data.batch_size", "4",
          "--data.num_workers", "0", "--data.val", "null", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false"])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    acc = EventAccumulator(str(next(run.glob("events.out.tfevents.*"))))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for term in ("train/text.ce", "train/latent.align", "train/layout.nll", "train/situation.position"):
        values = [e.value for e in acc.Scalars(term)] if term in tags else []
        assert len(values) == 3 and all(torch.isfinite(torch.tensor(values))), (term, sorted(tags))


def test_projector_warmup_then_joint_training_from_its_export(tmp_path):
    """LLaVA's two stages as docs/backbones.md describes them: a projector-only run, its
    checkpoint's backbone weights exported, the joint stage built from the export."""
    from thinkspace.cli import main

    run = tmp_path / "warmup"
    text_only = [arg for key in ("objectives.latent", "objectives.layout", "objectives.situation", "cues.camera")
                 for arg in (f"--model.{key}", "null")]
    main(["fit", "--config", str(REPO / "configs" / "composed" / "tiny.yaml"), "--run_dir", str(run),
          "--model.backbone.init_args.stage", "projector", *text_only, "--trainer.max_steps", "2",
          "--data.batch_size", "2", "--data.num_workers", "0", "--data.val", "null",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    backbone = ComposedVLM("tiny:composed")
    backbone.load_state_dict({k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")})
    init_args = backbone.save_pretrained(tmp_path / "export")
    joint = rebuild({**init_args, "stage": "joint", "freeze_encoder": True}, tmp_path / "export")
    fresh = ComposedVLM("tiny:composed").hf.model.multi_modal_projector.layers[0].weight
    warmed = state["backbone.model.model.multi_modal_projector.layers.0.weight"]
    assert not torch.equal(warmed, fresh) and torch.equal(joint.hf.model.multi_modal_projector.layers[0].weight, warmed)
    trainable = {n.split(".")[2] for n, p in joint.named_parameters() if p.requires_grad}
    assert trainable == {"multi_modal_projector", "language_model"}  # lm_head is tied to the embeddings


def test_export_round_trip_reproduces_logits_and_the_lm_loads_in_transformers(tmp_path, batch):
    backbone = ComposedVLM("tiny:composed", stage="projector")
    backbone.add_tokens(["<|latent_pad|>", *[f"<extra_{i}>" for i in range(40)]])  # past the padded rows
    assert backbone.hf.get_input_embeddings().weight.shape[0] == len(backbone.tokenizer) > 1024
    assert backbone.hf.lm_head.weight is backbone.hf.get_input_embeddings().weight  # still tied
    with torch.no_grad():
        for p in backbone.hf.parameters():  # not the stored weights: every part must be written
            p.add_(0.01 * torch.randn_like(p))
    init_args = backbone.save_pretrained(tmp_path / "export")
    assert json.loads(json.dumps(init_args)) == init_args
    rebuilt = rebuild(init_args, tmp_path / "export")
    assert rebuilt.stage == "projector" and rebuilt.tokenizer.convert_tokens_to_ids("<|latent_pad|>") == \
        backbone.tokenizer.convert_tokens_to_ids("<|latent_pad|>")
    with torch.no_grad():
        assert torch.equal(rebuilt(batch).logits, backbone(batch).logits)
        lm = AutoModelForCausalLM.from_pretrained(tmp_path / "export" / "language_model")
        text = AutoTokenizer.from_pretrained(tmp_path / "export" / "language_model")(
            "Which object is on the left?", return_tensors="pt")["input_ids"]
        assert torch.equal(lm(text).logits, backbone.hf(input_ids=text).logits)


def test_lora_trains_adapters_and_projector_and_export_merges_them(tmp_path, batch):
    backbone = ComposedVLM("tiny:composed", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert any("multi_modal_projector" in n for n in trainable) and any("lora_" in n for n in trainable)
    assert all("multi_modal_projector" in n or ("lora_" in n and "language_model" in n) for n in trainable)
    with torch.no_grad():
        for n, p in backbone.named_parameters():
            if "lora_B" in n:
                p.add_(0.05)
    init_args = backbone.save_pretrained(tmp_path / "export")
    rebuilt = rebuild(init_args, tmp_path / "export")
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(batch).logits, backbone(batch).logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="merge_lora=True"):
        backbone.save_pretrained(tmp_path / "other", merge_lora=False)


def test_new_composition_from_an_lm_directory_and_a_local_encoder_weights_file(composed, tmp_path):
    import timm
    from safetensors.torch import save_file

    kwargs = {"img_size": 64, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2}
    encoder = timm.create_model("vit_tiny_patch16_224", num_classes=0, **kwargs)
    save_file(encoder.state_dict(), str(tmp_path / "encoder.safetensors"))
    backbone = ComposedVLM(lm_path=f"{composed.path}/language_model", encoder="vit_tiny_patch16_224",
                           encoder_kwargs=kwargs, encoder_weights_path=str(tmp_path / "encoder.safetensors"), pool=1)
    tower = backbone.hf.model.vision_tower
    assert all(torch.equal(tower.state_dict()[k], v) for k, v in encoder.state_dict().items())
    assert backbone.layout().rows == backbone.layout().cols == 4  # 64 px / 16 px, no pooling
    batch = backbone.collator()(_samples()[:2])
    with torch.no_grad():
        assert backbone(batch).hidden.shape[:2] == batch.labels.shape


def test_an_untied_llama_without_a_chat_template_composes_resizes_and_exports(tmp_path):
    """Any causal LM: a Llama with its own lm_head and a tokenizer without a chat template (ChatML is used)."""
    from transformers import LlamaConfig

    from thinkspace.backbones.tiny.tokenizer import build_tokenizer

    tokenizer = build_tokenizer("llava_onevision")
    tokenizer.chat_template = None
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    backbone = ComposedVLM(lm_path=str(tmp_path / "llama"), encoder="vit_tiny_patch16_224",
                           encoder_kwargs={"img_size": 56, "patch_size": 14, "embed_dim": 32, "depth": 1,
                                           "num_heads": 2})
    assert backbone.collator().prompt_text(_samples()[0]).startswith("<|im_start|>user\n<image>\n")
    backbone.add_tokens(["<|latent_pad|>"])  # the vocabulary had no spare rows: both matrices grow
    hf = backbone.hf
    assert hf.get_input_embeddings().weight.shape[0] == hf.lm_head.weight.shape[0] == len(backbone.tokenizer)
    assert hf.lm_head.weight is not hf.get_input_embeddings().weight
    batch = backbone.collator()(_samples())
    init_args = backbone.save_pretrained(tmp_path / "export")
    rebuilt = rebuild(init_args, tmp_path / "export")
    with torch.no_grad():
        assert torch.equal(rebuilt(batch).logits, backbone(batch).logits)
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "export" / "language_model")).__name__ == \
        "LlamaForCausalLM"


ENCODERS = [  # (timm name, kwargs, pool, token grid per frame)
    ("vit_small_patch14_reg4_dinov2", {"img_size": 56, "depth": 1, "embed_dim": 32, "num_heads": 2}, 1, (4, 4)),
    ("vit_base_patch16_siglip_224", {"img_size": 80, "depth": 1, "embed_dim": 32, "num_heads": 2}, 2, (3, 3)),
    pytest.param("convnext_atto", {}, 3, (3, 3), marks=pytest.mark.slow),  # [F, C, 7, 7] at 224 px: about 9 s
]


@pytest.mark.parametrize(("name", "kwargs", "pool", "grid"), ENCODERS, ids=[getattr(e, "values", e)[0] for e in ENCODERS])
def test_any_timm_encoder_gives_a_pooled_token_grid(composed, name, kwargs, pool, grid):
    """CLS and register tokens dropped (DINOv2), none to drop (SigLIP), a conv map (ConvNeXt);
    pooling averages each window, partial windows at the edges over the patches they cover."""
    from thinkspace.backbones.composed.encoder import patch_features

    backbone = ComposedVLM(lm_path=f"{composed.path}/language_model", encoder=name, encoder_kwargs=kwargs, pool=pool)
    assert (backbone.layout().rows, backbone.layout().cols) == grid
    batch = backbone.collator()(_samples()[:2])  # one image, a 4-frame video
    model = backbone.hf.model
    with torch.no_grad():
        embeds = backbone(batch).inputs_embeds
        patches = patch_features(model.vision_tower, batch.inputs["pixel_values"])  # [F, h, w, C]
        tokens = model.get_image_features(batch.inputs["pixel_values"])  # [F, rows * cols, D]
    rows, cols = grid
    for r in range(rows):
        for c in range(cols):
            window = patches[:, r * pool:(r + 1) * pool, c * pool:(c + 1) * pool].mean((1, 2))
            torch.testing.assert_close(tokens[:, r * cols + c], model.multi_modal_projector(window))
    vis = batch.visual
    frame = vis.sample + vis.frame  # sample 0 has one frame, sample 1's frames follow
    torch.testing.assert_close(embeds[vis.sample, vis.position], tokens[frame, vis.row * cols + vis.col])


def test_configuration_errors_name_what_is_wrong(composed, tmp_path):
    with pytest.raises(ValueError, match=r"encoder 'dinov2_vits14' is not a timm model name; similar names"):
        ComposedVLM(lm_path=f"{composed.path}/language_model", encoder="dinov2_vits14")
    with pytest.raises(FileNotFoundError, match=r"no config.json"):
        ComposedVLM(lm_path=str(tmp_path), encoder="vit_tiny_patch16_224")
    with pytest.raises(FileNotFoundError, match=r"encoder_weights_path .*missing.safetensors' does not exist"):
        ComposedVLM(lm_path=f"{composed.path}/language_model", encoder="vit_tiny_patch16_224",
                    encoder_weights_path=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match=r"either path .* or both lm_path and encoder"):
        ComposedVLM("tiny:composed", lm_path=f"{composed.path}/language_model")
    with pytest.raises(ValueError, match=r"\['pool'\] describe a new composition .* records its own"):
        ComposedVLM("tiny:composed", pool=2)
    with pytest.raises(ValueError, match=r"stage must be 'joint' or 'projector', got 'warmup'"):
        ComposedVLM("tiny:composed", stage="warmup")


def test_grpo_runs_on_the_composed_backbone(tmp_path):
    """configs/3dthinker/stage2_grpo_tiny.yaml with the backbone swapped: latents are decoded
    (the latent-3D reward is scored) and a step is taken."""
    from thinkspace.cli import main

    run = tmp_path / "run"
    backbone = {"class_path": "thinkspace.backbones.ComposedVLM",
                "init_args": {"path": "tiny:composed", "lora": {"r": 8, "alpha": 16, "dropout": 0.05}}}
    main(["fit", "--config", str(REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"), "--run_dir", str(run),
          "--model.init_args.backbone", json.dumps(backbone), "--model.init_args.freeze", "[]",
          "--model.init_args.group_size", "2", "--model.init_args.max_new_tokens", "16",
          "--trainer.max_steps", "1", "--trainer.log_every_n_steps", "1",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    acc = EventAccumulator(str(next(run.glob("events.out.tfevents.*"))))
    acc.Reload()
    latent3d = [e.value for e in acc.Scalars("train/rewards/latent3d/mean")]
    assert len(latent3d) == 1 and 0.0 < latent3d[0] <= 1.0
