"""3DThinker stage 1 as released: the loss weighting by hand, the view size the paper projector
needs, and the recipe named in configs/3dthinker/stage1.yaml (read from lru0612/3DThinker:
3dthinker/stage1/train.sh, src/main.py, src/trainer_single.py, src/task.py)."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from thinkspace.backbones import QwenVL
from thinkspace.data.batch import IGNORE_INDEX
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.data.datasets.thinker_prompt import THINKER_INSTRUCTION
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment, TextCrossEntropy
from thinkspace.teachers import OracleGeometryTeacher

from cli_helpers import REPO, run_cli


pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic(n, seed, views):
    data = SyntheticSpatial(n, image_size=56, num_views=views, settings=["leftmost"], num_objects=(2, 2),
                            shuffle_options=False, seed=seed)
    return [data[i] for i in range(n)]


def module_with(text_weight, latent_weight, reduction):
    torch.manual_seed(0)
    latent = LatentAlignment(weight=latent_weight, k=3, reduction=reduction, projector_width=16,
                             teacher=OracleGeometryTeacher(patch_size=14))
    return SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy(weight=text_weight),
                                                             "latent": latent}).eval()


def hand_terms(module, batch):
    """Cross-entropy (mean over supervised next tokens) and per-sample squared errors ``[S, P, C]``."""
    latent = module.objectives["latent"]
    out = module.backbone(batch)
    labels = batch.labels[:, 1:]
    logits = out.logits_at(out.hidden[:, :-1]).float()
    keep = labels != IGNORE_INDEX
    ce = -torch.log_softmax(logits, -1)[keep].gather(-1, labels[keep][:, None]).mean()
    errors = [(p.float() - f.tokens().float()) ** 2
              for p, f in zip(latent.project(out, batch), latent.teacher_features(batch))]
    return ce, errors


def test_released_weighting_by_hand_one_sample_two_views(tiny_cache):
    """trainer_single.py: 0.1 x CE + 0.0005 x mean over the sample's [views, tokens] of the squared
    error summed over channels (batch 1)."""
    module = module_with(0.1, 0.0005, "token_mean")
    batch = module.collator()(synthetic(1, seed=2, views=(2, 2)))
    with torch.no_grad():
        total, terms = module.losses(batch)
        ce, (err,) = hand_terms(module, batch)
    assert err.shape[0] == 2 and err.shape[1] == 1 + 4 * 4  # views, camera + 4x4 patches of a 56 px view
    expected = 0.1 * ce + 0.0005 * err.sum(-1).mean()
    assert terms["text.ce"].item() == pytest.approx(ce.item(), rel=1e-5)
    assert terms["latent.align"].item() == pytest.approx(err.sum(-1).mean().item(), rel=1e-5)
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["latent.align"].item() == pytest.approx(err.shape[-1] * err.mean().item(), rel=1e-5)


def test_paper_weighting_by_hand_is_the_squared_frobenius_norm_per_sample(tiny_cache):
    """The paper: 1 x L_text + 0.1 x ||projected - teacher||_F^2, summed over a sample's views,
    tokens and channels; a batch averages its samples (here 1 view and 3 views)."""
    module = module_with(1.0, 0.1, "sample_sum")
    samples = synthetic(4, seed=5, views=(1, 3))
    samples = [next(s for s in samples if len(s.frames) == 1), next(s for s in samples if len(s.frames) == 3)]
    batch = module.collator()(samples)
    with torch.no_grad():
        total, terms = module.losses(batch)
        ce, errors = hand_terms(module, batch)
    assert [e.shape[0] for e in errors] == [1, 3]
    frobenius = (errors[0].sum() + errors[1].sum()) / 2
    assert terms["latent.align"].item() == pytest.approx(frobenius.item(), rel=1e-5)
    assert total.item() == pytest.approx((ce + 0.1 * frobenius).item(), rel=1e-5)


def test_unknown_reduction_and_a_paper_projector_without_its_view_size_are_errors():
    with pytest.raises(ValueError, match=r"LatentAlignment.reduction must be 'mean', 'token_mean' or 'sample_sum', got 'sum'"):
        LatentAlignment(reduction="sum")
    with pytest.raises(ValueError, match=r"projector 'paper' needs paper_view_size: \[width, height\]"):
        LatentAlignment(projector="paper")


# -- the views the VLM sees ---------------------------------------------------------------

def cot_dir(tmp_path, size):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        tmp_path / "raw.jpg")
    record = {"idx": 1, "text_input": "Which? A. a B. b", "image_input": ["raw.jpg", "raw.jpg"],
              "text_output": "<output_3D><think>t</think><answer>A</answer>", "answer": "A"}
    (tmp_path / "cot.jsonl").write_text(json.dumps(record) + "\n")
    return str(tmp_path / "cot.jsonl")


def paper_module():
    """The paper projector built for 56 x 84 (width x height) views, with a VGGT-shaped teacher."""
    from thinkspace.teachers import VGGTTeacher

    pytest.importorskip("vggt")
    from tests.test_vggt_teacher import tiny_vggt

    teacher = VGGTTeacher(image_size=56, mode="crop", channels=64, model=tiny_vggt())
    torch.manual_seed(0)
    latent = LatentAlignment(k=2, projector="paper", paper_view_size=(56, 84), teacher=teacher)
    return SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy(), "latent": latent})


def test_raw_frames_are_resized_for_the_paper_projector_or_refused_by_name(tiny_cache, tmp_path):
    from thinkspace.data.datasets.thinker_cot import ThinkerCoT

    module = paper_module()
    projector = module.objectives["latent"].projector
    assert (projector.visual_tokens, projector.teacher_tokens) == (2 * 3, 1 + 4 + 4 * 4)  # 4x6 patches merged 2x2
    path = cot_dir(tmp_path, (70, 50))  # a raw frame of another size (landscape)
    resized = ThinkerCoT(path, image_size=[56, 84])[0]
    total, terms = module.losses(module.collator()([resized]))
    assert torch.isfinite(total) and terms["latent.align"].item() > 0
    raw = ThinkerCoT(path, image_size=None)[0]
    with pytest.raises(ValueError, match=r"a view has 4 visual tokens \(2x2\) but the projector was built for 6 "
                                         r"\(56 x 84 views\); resize every view to that size with the dataset's "
                                         r"image_size"):
        module.losses(module.collator()([raw]))


# -- the recipe in the paper config -------------------------------------------------------

def test_stage1_config_names_the_released_recipe():
    config = yaml.safe_load((REPO / "configs/3dthinker/stage1.yaml").read_text())
    trainer, model, data = config["trainer"], config["model"], config["data"]
    assert (trainer["max_epochs"], trainer["gradient_clip_val"], trainer["precision"]) == (10, 1.0, "bf16-mixed")
    assert (trainer["accumulate_grad_batches"], data["batch_size"], config["seed_everything"]) == (1, 1, 42)
    assert model["backbone"]["init_args"]["dtype"] == "bfloat16" and model["gradient_checkpointing"] is True
    assert model["no_weight_decay"] == ["bias", "layernorm", "rmsnorm"]
    assert model["generation"] == {"max_new_tokens": 2048, "do_sample": False}  # run_inference_clean.py
    # model selection: batch 8, at most 1024 new tokens (every completed released response fits), the whole set
    assert (model["val_generation"], data["eval_batch_size"], data.get("val_subset")) == ({"max_new_tokens": 1024}, 8,
                                                                                          None)
    optimizer = model["optimizer"]
    # torch's AdamW, its fused step on GPUs: the release trains with adamw_torch_fused
    assert optimizer["class_path"] == "thinkspace.training.adamw.AdamW"
    assert optimizer["init_args"] == {"lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                                      "implementation": "auto"}
    assert model["scheduler"] == {"class_path": "thinkspace.training.optim.WarmupLinear", "init_args": {"warmup_steps": 10}}
    text, latent = model["objectives"]["text"]["init_args"], model["objectives"]["latent"]["init_args"]
    assert (text["weight"], latent["weight"], latent["loss"], latent["reduction"]) == (0.1, 0.0005, "mse",
                                                                                        "token_mean")
    assert (latent["k"], latent["projector"], latent["paper_view_size"]) == (12, "paper", [480, 640])
    assert (latent["teacher"]["init_args"]["mode"], latent["teacher"]["init_args"]["dtype"]) == ("crop", "bfloat16")
    assert data["train"]["init_args"]["image_size"] == [480, 640] and data["train"]["init_args"]["resave"] is True
    val = data["val"]["init_args"]
    assert data["val"]["class_path"].endswith("MindCube") and val["image_size"] == [480, 640]
    assert val["instruction"] == THINKER_INSTRUCTION  # the YAML's folded text is exactly the official one
    (checkpoint,) = [c for c in trainer["callbacks"] if c["class_path"].endswith("ModelCheckpoint")]
    assert checkpoint["init_args"]["monitor"] == "val/accuracy"  # what SpatialVLM logs from generation
    assert (checkpoint["init_args"]["mode"], checkpoint["init_args"]["save_last"]) == ("max", True)
    paper = yaml.safe_load((REPO / "configs/3dthinker/weights/paper.yaml").read_text())["model"]["objectives"]
    assert (paper["text"]["init_args"]["weight"], paper["latent"]["init_args"]["weight"],
            paper["latent"]["init_args"]["reduction"]) == (1.0, 0.1, "sample_sum")


def test_stage1_val_set_builds_the_official_prompt_on_480x640_views(tmp_path):
    from thinkspace.data.datasets.mindcube import MindCube

    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(tmp_path / "f.jpg")
    record = {"id": "among_group1_q1", "question": "Which? A. a B. b", "images": ["f.jpg"], "gt_answer": "B"}
    (tmp_path / "tiny.jsonl").write_text(json.dumps(record) + "\n")
    spec = yaml.safe_load((REPO / "configs/3dthinker/stage1.yaml").read_text())["data"]["val"]["init_args"]
    sample = MindCube(**{**spec, "path": str(tmp_path / "tiny.jsonl"), "image_root": str(tmp_path)})[0]
    assert sample.prompt == "Which? A. a B. b\n" + THINKER_INSTRUCTION
    assert [f.size for f in sample.frames] == [(480, 640)]


def test_vggt_teacher_in_bfloat16_runs_the_aggregator_as_the_feature_script():
    """extract_vggt_feature.py: images cast to bf16, aggregator under bf16 autocast; float32 differs."""
    pytest.importorskip("vggt")
    from tests.test_vggt_teacher import sample, tiny_vggt
    from thinkspace.teachers import VGGTTeacher

    model = tiny_vggt()
    teacher = VGGTTeacher(image_size=56, mode="crop", channels=64, dtype="bfloat16", model=model)
    s = sample(2)
    pixels = teacher.prepare(s)
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        layers, start = model.aggregator(pixels[None].to(torch.bfloat16))
    features = teacher.encode(s)
    assert torch.equal(features.tokens(), layers[-1][0].float())
    plain = VGGTTeacher(image_size=56, mode="crop", channels=64, model=model).encode(s)
    assert not torch.equal(plain.tokens(), features.tokens())
    assert teacher.signature()["dtype"] == "bfloat16" and "dtype" not in VGGTTeacher().signature()
    with pytest.raises(ValueError, match="VGGTTeacher.dtype must be 'float32', 'bfloat16' or 'float16', got 'bf16'"):
        VGGTTeacher(dtype="bf16")


def test_weight_decay_skips_biases_and_norms_as_the_hf_trainer(tiny_cache):
    """HF Trainer.get_decay_parameter_names: no decay for names with bias/layernorm/rmsnorm or
    nn.LayerNorm parameters; Qwen2's final ``norm.weight`` matches neither, so it decays."""
    from thinkspace.training.weight_decay import decay_groups

    module = module_with(0.1, 0.0005, "token_mean")  # LatentProjector holds an nn.LayerNorm named "norm"
    names = {id(p): n for n, p in module.named_parameters()}
    decay, exempt = decay_groups(module, ["bias", "layernorm", "rmsnorm"])
    assert exempt["weight_decay"] == 0.0 and "weight_decay" not in decay
    decayed = {names[id(p)] for p in decay["params"]}
    skipped = {names[id(p)] for p in exempt["params"]}
    assert any(n.endswith("layers.0.input_layernorm.weight") for n in skipped)
    assert any(n.endswith("q_proj.bias") for n in skipped)
    assert {"objectives.latent.projector.norm.weight", "objectives.latent.projector.norm.bias"} <= skipped
    assert any(n.endswith("language_model.norm.weight") for n in decayed)
    assert not any("bias" in n or "layernorm" in n for n in decayed)
    assert len(decayed) + len(skipped) == sum(p.requires_grad for p in module.parameters())
    assert decay_groups(module, None) == [p for p in module.parameters() if p.requires_grad]
    with pytest.raises(ValueError, match=r"model.no_weight_decay: none of \['layer_norm'\] matches a trainable"):
        decay_groups(module, ["layer_norm"])


@pytest.mark.slow
def test_tiny_stage1_run_keeps_the_best_checkpoint_by_accuracy_and_last(tiny_cache, tmp_path):
    """The checkpoint selection of stage1.yaml, through the real CLI on its tiny twin."""
    run_cli("fit", "--config", str(REPO / "configs/3dthinker/stage1_tiny.yaml"), "--run_dir", str(tmp_path / "run"),
            "--trainer.max_steps", "4", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
            "--data.batch_size", "2", "--data.num_workers", "0",
            "--data.train.init_args.num_samples", "8", "--data.val.init_args.num_samples", "2",
            "--model.generation.max_new_tokens", "2", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints, checkpoints
    (best,) = [name for name in checkpoints if name != "last.ckpt"]
    step, accuracy = best.removeprefix("best-").removesuffix(".ckpt").split("-")
    assert step in ("2", "4") and 0.0 <= float(accuracy) <= 1.0
    state = torch.load(tmp_path / "run" / "checkpoints" / best, map_location="cpu", weights_only=False)
    (callback,) = [v for k, v in state["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert callback["monitor"] == "val/accuracy" and callback["best_model_score"].item() == pytest.approx(
        float(accuracy), abs=1e-4)
