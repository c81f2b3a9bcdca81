"""``thinkspace export``, ``thinkspace.load`` and ``ask``: a trained run as a model anyone can load."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import thinkspace
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.inference.export import export

from cli_helpers import REPO
from plain_transformers import plain_transformers_logits
from trained_module import trained_like

STAGE1 = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"
GRPO = REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"
JOINT = REPO / "configs" / "loc3r" / "joint_tiny.yaml"


def val_samples(n=2):
    data = SyntheticSpatial(n, settings=["leftmost"], image_size=112, num_views=(1, 2), num_objects=(2, 2),
                            shuffle_options=False, split="val")
    return [data[i] for i in range(n)]


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage1")
    module, ckpt = trained_like([STAGE1], tmp, "stage1")
    return module, ckpt, export(ckpt, STAGE1, tmp / "model")


@pytest.mark.slow
def test_plain_transformers_loads_the_export_and_gives_the_same_logits(stage1, tmp_path):
    module, _, out = stage1
    batch = module.collator()(val_samples(2))
    inputs = {k: v for k, v in batch.inputs.items()}
    with torch.no_grad():
        expected = module.backbone.hf(**inputs).logits
    slot = module.objectives["latent"].slot
    report = "processor.tokenizer.convert_tokens_to_ids(['<|latent_start|>', '<|latent_pad|>', '<|latent_end|>'])"
    logits, line = plain_transformers_logits(out, inputs, tmp_path, report)
    assert line == f"{[slot.start_id, slot.pad_id, slot.end_id]} False"
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert {"model.safetensors", "tokenizer.json", "thinkspace.json", "thinkspace_heads.safetensors"} <= {
        p.name for p in out.iterdir()}


def test_load_restores_heads_and_settings_and_reproduces_predict(stage1):
    module, _, out = stage1
    model = thinkspace.load(out)
    restored = model.module
    assert type(restored).__name__ == "SpatialVLM" and not restored.training
    latent = restored.objectives["latent"]
    assert (latent.slot.k, latent.decoding) == (12, "feedback")
    expected = module.objectives["latent"].projector.state_dict()
    for key, value in latent.projector.state_dict().items():
        assert torch.equal(value, expected[key]), key
    manifest = json.loads((out / "thinkspace.json").read_text())
    assert manifest["model"]["init_args"]["backbone"]["init_args"]["path"] == "."
    assert "optimizer" not in manifest["model"]["init_args"]
    samples = val_samples(2)
    predicted = module.predict_step(module.collator(with_response=False)(samples), 0)
    again = restored.predict_step(restored.collator(with_response=False)(samples), 0)
    assert [p["prediction"] for p in again] == [p["prediction"] for p in predicted]
    answer = model.ask(samples[0].frames, samples[0].prompt, max_new_tokens=module.generation["max_new_tokens"])
    assert answer.text == predicted[0]["prediction"]
    assert answer.features.shape[0] == samples[0].num_frames  # [S, P, C]: one token set per view


def test_a_checkpoint_loads_with_its_config_and_answers_like_the_export(stage1):
    module, ckpt, out = stage1
    sample = val_samples(1)[0]
    from_ckpt = thinkspace.load(ckpt, config=STAGE1).ask(sample.frames, sample.prompt, max_new_tokens=16)
    from_export = thinkspace.load(out).ask(sample.frames, sample.prompt, max_new_tokens=16)
    assert from_ckpt.text == from_export.text
    torch.testing.assert_close(from_ckpt.features, from_export.features)


def test_merged_lora_is_base_plus_adapter_and_a_kept_adapter_restores(tmp_path):
    module, ckpt = trained_like([GRPO], tmp_path, "grpo")
    merged = load_file(str(export(ckpt, GRPO, tmp_path / "merged") / "model.safetensors"))
    layer = module.backbone.model.base_model.model.model.language_model.layers[0].self_attn.q_proj
    scale = layer.scaling["default"]
    expected = layer.base_layer.weight + scale * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    key = next(k for k in merged if k.endswith("layers.0.self_attn.q_proj.weight"))  # the stored layout
    torch.testing.assert_close(merged[key], expected.detach(), atol=1e-6, rtol=1e-6)
    assert not any("lora_" in k for k in merged)
    assert float((merged[key] - layer.base_layer.weight).abs().max()) > 1e-4  # the adapter is not zero

    kept = export(ckpt, GRPO, tmp_path / "kept", keep_adapter=True)
    assert (kept / "adapter" / "adapter_config.json").is_file()
    base = load_file(str(kept / "model.safetensors"))
    torch.testing.assert_close(base[key], layer.base_layer.weight.detach())
    restored = thinkspace.load(kept).module
    assert type(restored).__name__ == "SpatialGRPO"
    batch = module.collator()(val_samples(1))
    with torch.no_grad():
        torch.testing.assert_close(restored.backbone(batch).hidden, module.backbone(batch).hidden, atol=1e-5,
                                   rtol=1e-5)


def test_ask_writes_a_point_cloud_and_a_birds_eye_picture(stage1, tmp_path, monkeypatch, capsys):
    import open3d as o3d

    from thinkspace.inference.ask import main as ask
    from thinkspace.objectives import LatentAlignment
    from thinkspace.teachers import OracleGeometryTeacher

    _, _, out = stage1
    sample = val_samples(1)[0]
    paths = []
    for i, frame in enumerate(sample.frames):
        paths.append(tmp_path / f"view{i}.png")
        frame.save(paths[-1])
    # a perfect projector: the latents decode to the scene's ground-truth points
    truth = OracleGeometryTeacher(patch_size=14).encode(sample)
    monkeypatch.setattr(LatentAlignment, "project", lambda self, *a, **k: [truth.tokens()])
    ply, png = tmp_path / "scene.ply", tmp_path / "bev.png"
    assert ask(["--model", str(out), "--images", *map(str, paths), "--question", sample.prompt,
                "--ply", str(ply), "--bev", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "answer: " in printed and f"{ply}: " in printed
    cloud = o3d.io.read_point_cloud(str(ply))
    expected, _ = OracleGeometryTeacher(patch_size=14).point_cloud(truth, sample)
    assert len(cloud.points) == expected.shape[0] > 0
    np.testing.assert_allclose(np.asarray(cloud.points), expected.numpy(), atol=1e-5)
    image = Image.open(png)
    assert image.format == "PNG" and image.size[0] > 300


def test_situation_and_layout_heads_answer_where_the_agent_stands(tmp_path):
    module, ckpt = trained_like([JOINT], tmp_path, "joint")
    out = export(ckpt, JOINT, tmp_path / "joint")
    model = thinkspace.load(out)
    video = SyntheticSpatial(1, kind="video", settings=["situation"], image_size=56, num_frames=4, split="val")[0]
    answer = model.ask(video, max_new_tokens=4)  # a sample with geometry: the camera cue has its input
    assert answer.position is not None and len(answer.position) == 2 and -np.pi <= answer.heading <= np.pi
    assert answer.layout.shape[1] == 2 and answer.layout.shape[0] > 0
    from thinkspace.inference.bev import bev_picture

    assert Image.open(bev_picture(answer, tmp_path / "bev.png")).format == "PNG"
    with pytest.raises(ValueError, match=r"input cues \['camera'\] built from the frames' geometry"):
        model.ask(video.frames, video.prompt)


def test_a_composed_model_exports_and_restores_exactly(tmp_path):
    from transformers import AutoModelForCausalLM

    config = REPO / "configs" / "composed" / "tiny.yaml"
    module, ckpt = trained_like([config], tmp_path, "composed")
    out = export(ckpt, config, tmp_path / "composed")
    restored = thinkspace.load(out).module
    video = SyntheticSpatial(1, kind="video", settings=["situation"], image_size=112, num_frames=4, split="val")[0]
    batch = module.collator()([video])
    with torch.no_grad():
        expected = module.backbone(batch, module.embeds_hook()).hidden
        assert torch.equal(restored.backbone(batch, restored.embeds_hook()).hidden, expected)
    for key, value in module.objectives["situation"].state_dict().items():
        assert torch.equal(restored.objectives["situation"].state_dict()[key], value), key
    language_model = AutoModelForCausalLM.from_pretrained(out / "language_model")  # plain transformers
    assert language_model.config.vocab_size == module.backbone.hf.config.text_config.vocab_size


# -- bad input --------------------------------------------------------------------------------

def test_a_checkpoint_of_another_config_is_refused_naming_both_files(stage1, tmp_path):
    _, ckpt, _ = stage1
    with pytest.raises(ValueError, match=rf"checkpoint {ckpt} does not match the model of config {JOINT}: "
                                         r".*weights of the model are not in the checkpoint"):
        export(ckpt, JOINT, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_an_existing_output_is_not_overwritten_by_accident(stage1, tmp_path):
    _, ckpt, _ = stage1
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists and is not empty; choose another --out or pass --overwrite"):
        export(ckpt, STAGE1, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_a_directory_without_manifest_loads_as_a_plain_vlm_with_a_warning(stage1, tmp_path, monkeypatch):
    import shutil

    from thinkspace.inference.ask import main as ask

    _, _, out = stage1
    plain = tmp_path / "plain"
    shutil.copytree(out, plain)
    (plain / "thinkspace.json").unlink()
    with pytest.warns(UserWarning, match="has no thinkspace.json: loaded as a plain VLM"):
        model = thinkspace.load(plain)
    sample = val_samples(1)[0]
    answer = model.ask(sample.frames, sample.prompt, max_new_tokens=4)
    assert answer.points is None and answer.position is None and isinstance(answer.text, str)
    image = tmp_path / "a.png"
    sample.frames[0].save(image)
    with pytest.warns(UserWarning), pytest.raises(SystemExit, match="the model has no 3D latents; --ply needs"):
        ask(["--model", str(plain), "--images", str(image), "--question", "Where?", "--ply", str(tmp_path / "x.ply")])
    # --bev on a model without heads is refused before anything is generated
    generated = []
    monkeypatch.setattr(type(model), "ask", lambda *a, **k: generated.append(1))
    with pytest.warns(UserWarning), pytest.raises(SystemExit, match="no latent, layout or situation head; --bev"):
        ask(["--model", str(plain), "--images", str(image), "--question", "Where?", "--bev", str(tmp_path / "b.png")])
    assert generated == [] and not (tmp_path / "b.png").exists()


def test_exported_files_get_the_users_umask_not_0600(stage1):
    from thinkspace.utils.file_modes import current_umask

    _, _, out = stage1
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert "model.safetensors" in modes and "thinkspace_heads.safetensors" in modes
    assert set(modes.values()) == {0o666 & ~current_umask()}, modes


def test_heads_are_loaded_strictly(stage1, tmp_path):
    import shutil

    from safetensors.torch import save_file

    _, _, out = stage1
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    heads = load_file(str(tampered / "thinkspace_heads.safetensors"))
    dropped = sorted(heads)[0]
    heads.pop(dropped)
    heads["objectives.latent.extra"] = torch.zeros(1)
    save_file(heads, str(tampered / "thinkspace_heads.safetensors"))
    with pytest.raises(ValueError, match=rf"does not match .*missing \['{dropped}'\], "
                                         r"unexpected \['objectives.latent.extra'\]"):
        thinkspace.load(tampered)


def write_video(path, frames, fps=4):
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_ask_about_a_video_file(stage1, tmp_path):
    _, _, out = stage1
    walk = SyntheticSpatial(1, kind="video", settings=["object_counting"], image_size=112, num_frames=8,
                            split="val")[0]
    write_video(tmp_path / "walk.mp4", list(walk.frames))
    answer = thinkspace.load(out).ask(tmp_path / "walk.mp4", "How many chairs are in the room?", num_frames=4,
                                      max_new_tokens=16)
    assert isinstance(answer.text, str) and answer.features.shape[0] == 4  # one token set per sampled frame
    assert answer.points.shape[1] == 3


def test_missing_images_and_short_videos_are_named(stage1, tmp_path):
    _, _, out = stage1
    model = thinkspace.load(out)
    with pytest.raises(FileNotFoundError, match=r"image file .*nowhere\.jpg not found"):
        model.ask([tmp_path / "nowhere.jpg"], "Which is left?")
    video = tmp_path / "short.mp4"
    write_video(video, [np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(3)])
    with pytest.raises(ValueError, match=r"short\.mp4 has 3 frames, fewer than the 8 requested"):
        model.ask(video, "How many chairs?", num_frames=8)
