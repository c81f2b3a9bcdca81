"""Inference and export at the paper configs' dtype: a bfloat16 backbone, float32 heads, a LoRA on a tied
``lm_head`` (the tiny Qwen2.5-VL ties it, as Qwen2.5-VL-3B does), and the device to run on."""

import copy
import json
import math
import warnings

import pytest
import torch
from safetensors.torch import load_file

import thinkspace
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.inference.build import module_from_config
from thinkspace.inference.device import inference_device
from thinkspace.inference.export import export
from thinkspace.inference.model import SpatialModel

from cli_helpers import REPO, command, one_error_line
from plain_transformers import plain_transformers_logits
from trained_module import trained_like

STAGE1 = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"
GRPO = REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"
JOINT = REPO / "configs" / "loc3r" / "joint_tiny.yaml"
#: as the paper configs load the backbone (configs/3dthinker/stage1.yaml, configs/loc3r/joint.yaml)
BF16 = "model:\n  {nest}backbone:\n    {pad}init_args:\n      {pad}dtype: bfloat16\n"


def bf16_config(tmp_path, config):
    """``[config, fragment]``: the tiny config with its backbone loaded in bfloat16."""
    grpo = "class_path: thinkspace.rl" in config.read_text()
    fragment = tmp_path / "bf16.yaml"
    fragment.write_text(BF16.format(nest="init_args:\n    " if grpo else "", pad="  " if grpo else ""))
    return [config, fragment]


def trained_bf16(tmp_path, config, name):
    """A bfloat16-backbone module of ``config`` whose heads and adapters moved off their initial values,
    saved as a .ckpt; returns ``(module in eval mode, ckpt, configs)``."""
    files = bf16_config(tmp_path, config)
    module, ckpt = trained_like(files, tmp_path, name)
    return module, ckpt, files


def dtypes(module):
    """``(backbone dtypes, head dtypes)`` of a module's floating parameters."""
    backbone = {p.dtype for n, p in module.named_parameters() if n.startswith("backbone.") and "lora_" not in n}
    heads = {p.dtype for n, p in module.named_parameters() if not n.startswith("backbone.")}
    return backbone, heads


def leftmost(n=1):
    data = SyntheticSpatial(n, settings=["leftmost"], image_size=112, num_views=(2, 2), num_objects=(2, 2),
                            shuffle_options=False, split="val")
    return [data[i] for i in range(n)]


def situated_video():
    return SyntheticSpatial(1, kind="video", settings=["situation"], image_size=56, num_frames=4, split="val")[0]


def ulp_bf16(x):
    """The spacing of bfloat16 numbers (8 significant bits) at the largest magnitude in ``x``."""
    return 2.0 ** (math.floor(math.log2(float(x.abs().max()))) - 7)


@pytest.fixture(scope="module")
def grpo_bf16(tmp_path_factory):
    """The tiny GRPO config (LoRA r 8 on the attention and MLP projections and on the tied ``lm_head``)
    in bfloat16, exported merged."""
    tmp = tmp_path_factory.mktemp("grpo_bf16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module, ckpt, files = trained_bf16(tmp, GRPO, "grpo")
        out = export(ckpt, files, tmp / "model")
    # neither building the adapted tied head nor merging it is a warning any more
    assert not [str(w.message) for w in caught if "tie_word_embeddings" in str(w.message)]
    return module, out


# -- heads against a bfloat16 backbone ----------------------------------------------------------

def test_situation_and_layout_heads_answer_on_a_bfloat16_backbone_as_the_trained_module(tmp_path):
    module, ckpt, files = trained_bf16(tmp_path, JOINT, "joint")
    assert dtypes(module) == ({torch.bfloat16}, {torch.float32})
    video = situated_video()
    trained = SpatialModel(module).ask(video, max_new_tokens=4)  # failed: mat1 and mat2 must have the same dtype
    restored = thinkspace.load(export(ckpt, files, tmp_path / "joint"))
    assert dtypes(restored.module) == ({torch.bfloat16}, {torch.float32})
    answer = restored.ask(video, max_new_tokens=4)
    visual_tokens = len(module.collator(with_response=False)([video]).visual)
    assert answer.layout.shape == (visual_tokens, 2) and answer.layout.dtype == torch.float32
    assert len(answer.position) == 2 and all(math.isfinite(v) for v in answer.position)
    assert -math.pi <= answer.heading <= math.pi
    # no LoRA: the export holds the module's bfloat16 weights as they are, so the heads see the same states
    assert (answer.text, answer.position, answer.heading) == (trained.text, trained.position, trained.heading)
    assert torch.equal(answer.layout, trained.layout)


def test_a_latent_model_on_a_bfloat16_backbone_asks_and_its_export_answers_alike(tmp_path):
    module, ckpt, files = trained_bf16(tmp_path, STAGE1, "stage1")
    sample = leftmost()[0]
    trained = SpatialModel(module).ask(sample.frames, sample.prompt, max_new_tokens=16)
    answer = thinkspace.load(export(ckpt, files, tmp_path / "stage1")).ask(sample.frames, sample.prompt,
                                                                            max_new_tokens=16)
    teacher = module.objectives["latent"].teacher.encode(sample).tokens()  # [S, P, C] the projector aims at
    assert answer.features.shape == teacher.shape and answer.features.dtype == torch.float32
    assert answer.text == trained.text
    assert torch.equal(answer.features, trained.features)


def test_under_autocast_the_head_boundary_changes_no_loss_and_no_gradient(tmp_path, monkeypatch):
    """Training under bf16-mixed runs the heads under autocast: the cast to their dtype must change nothing."""
    import thinkspace.cues.camera_prior
    import thinkspace.objectives.latent3d
    import thinkspace.objectives.layout
    import thinkspace.objectives.situation

    joint, _, _ = trained_bf16(tmp_path, JOINT, "joint")
    stage1, _, _ = trained_bf16(tmp_path, STAGE1, "stage1")
    runs = [(joint, [situated_video()]), (stage1, leftmost(2))]

    def losses_and_grads():
        results = []
        for module, samples in runs:
            module.zero_grad()
            batch = module.collator()(samples)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                total, terms = module.losses(batch)
            total.backward()
            grads = {n: p.grad.clone() for n, p in module.named_parameters()
                     if p.grad is not None and not n.startswith("backbone.")}
            results.append(({k: v.detach().clone() for k, v in terms.items()}, grads))
        return results

    cast = losses_and_grads()
    for owner in (thinkspace.objectives.layout, thinkspace.objectives.situation, thinkspace.objectives.latent3d,
                  thinkspace.cues.camera_prior):
        monkeypatch.setattr(owner, "into_head", lambda x, head: x)
    uncast = losses_and_grads()
    for (terms, grads), (terms_before, grads_before) in zip(cast, uncast):
        assert terms.keys() == terms_before.keys() and len(grads) >= 4
        for key in terms:
            assert torch.equal(terms[key], terms_before[key]), key
        for key in grads:
            assert torch.equal(grads[key], grads_before[key]), key


# -- LoRA on a tied lm_head, merged ----------------------------------------------------------------

def test_a_merged_lora_on_a_tied_lm_head_unties_it_and_keeps_the_base_embeddings(grpo_bf16):
    module, out = grpo_bf16
    hf = module.backbone.hf
    embeddings = hf.get_input_embeddings().weight
    head = hf.lm_head
    assert head.get_base_layer().weight is embeddings  # tied in the trained module, LoRA on the head only
    stored = load_file(str(out / "model.safetensors"))
    assert {v.dtype for v in stored.values()} == {torch.bfloat16}
    key = next(k for k in stored if k.endswith("embed_tokens.weight"))
    assert torch.equal(stored[key], embeddings.detach())
    delta = head.scaling["default"] * head.lora_B["default"].weight @ head.lora_A["default"].weight  # float32
    expected = (embeddings.float() + delta).to(torch.bfloat16)  # W + dW, rounded once
    assert torch.equal(stored["lm_head.weight"], expected.detach())
    assert float((stored["lm_head.weight"].float() - embeddings.float()).abs().max()) > 0.01  # dW is not zero
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is False and config["text_config"].get("tie_word_embeddings") in (None, False)
    assert head.get_base_layer().weight is hf.get_input_embeddings().weight  # the live module is left as it was


def test_the_bfloat16_export_gives_the_trained_modules_logits_within_bf16_rounding(grpo_bf16):
    """Tolerance: 4 bfloat16 spacings at the largest logit. The trained module computes ``W x`` in bfloat16
    and adds the float32 adapter's ``dW x`` before rounding; the export computes ``round(W + dW) x``. Both
    round differently at every adapted layer, so they agree to a few spacings of the output (measured: 1.75),
    and the merge adds no more error than bfloat16 itself has against float32 (checked below)."""
    module, out = grpo_bf16
    batch = module.collator()(leftmost(2))
    inputs = dict(batch.inputs)
    restored = thinkspace.load(out).module
    with torch.no_grad():
        trained = module.backbone.hf(**inputs).logits.float()
        exported = restored.backbone.hf(**inputs).logits.float()
        reference = copy.deepcopy(module).float().backbone.hf(**inputs).logits  # the same module in float32
    assert restored.backbone.hf.dtype == torch.bfloat16
    assert float((exported - trained).abs().max()) <= 4 * ulp_bf16(trained)
    assert float((exported - reference).abs().max()) <= 2 * float((trained - reference).abs().max())
    assert (exported.argmax(-1) == trained.argmax(-1)).float().mean() > 0.95


def test_a_composed_model_with_a_lora_on_its_tied_lm_head_exports_untied_with_its_logits(tmp_path):
    from transformers import AutoModelForCausalLM

    fragment = tmp_path / "lora.yaml"
    fragment.write_text("model:\n  backbone:\n    init_args:\n      lora:\n        r: 4\n        alpha: 8\n"
                        "        dropout: 0.0\n        target_modules: '(?:.*language_model.*\\.(q_proj|v_proj)|lm_head)'\n")
    files = [REPO / "configs" / "composed" / "tiny.yaml", fragment]
    module, _ = module_from_config(files)
    hf = module.backbone.hf
    assert hf.lm_head.get_base_layer().weight is hf.get_input_embeddings().weight  # tied, float32
    torch.manual_seed(1)
    with torch.no_grad():
        for key, param in module.named_parameters():
            if "lora_B" in key:
                param.add_(0.05 * torch.randn_like(param))
    torch.save({"state_dict": module.state_dict()}, tmp_path / "composed.ckpt")
    out = export(tmp_path / "composed.ckpt", files, tmp_path / "composed")
    language_model = AutoModelForCausalLM.from_pretrained(out / "language_model")  # plain transformers
    assert language_model.config.tie_word_embeddings is False
    assert torch.equal(language_model.get_input_embeddings().weight, hf.get_input_embeddings().weight.detach())
    video = situated_video()
    batch = module.eval().collator()([video])
    restored = thinkspace.load(out).module
    with torch.no_grad():
        expected = module.backbone(batch, module.embeds_hook())
        got = restored.backbone(batch, restored.embeds_hook())
        # float32: the merged weight W + dW differs from W x + dW x by float32 rounding only
        torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_plain_transformers_loads_the_untied_bfloat16_export_with_thinkspaces_logits(grpo_bf16, tmp_path):
    module, out = grpo_bf16
    inputs = dict(module.collator()(leftmost(2)).inputs)
    with torch.no_grad():
        expected = thinkspace.load(out).module.backbone.hf(**inputs).logits
    report = "model.dtype, model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()"
    logits, line = plain_transformers_logits(out, inputs, tmp_path, report)  # (dtype, tied)
    assert line == "torch.bfloat16 False False"
    assert torch.equal(logits, expected)  # the same bf16 weights, the same kernels


# -- the device -------------------------------------------------------------------------------------

def test_devices_parse_and_one_this_machine_lacks_is_named():
    assert inference_device("cpu") == torch.device("cpu")
    assert inference_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"^--device 'gpu' is not a device; expected cpu, cuda, cuda:N or mps$"):
        inference_device("gpu", "--device")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=r"^device 'cuda:7': " + (
            "CUDA is not available on this machine; use cpu" if count == 0 else rf"this machine has {count}")):
        inference_device("cuda:7")


def test_load_puts_the_model_on_the_device_and_refuses_a_bad_one_before_loading(grpo_bf16, tmp_path):
    _, out = grpo_bf16
    assert thinkspace.load(out, device="cpu").device == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device 'cuda:99'"):
        thinkspace.load(tmp_path / "nothing-here", device="cuda:99")  # the device is checked first


def test_ask_takes_a_device_and_a_bad_one_is_one_line_with_exit_code_2(grpo_bf16, tmp_path, capsys):
    _, out = grpo_bf16
    sample = leftmost()[0]
    image = tmp_path / "view.png"
    sample.frames[0].save(image)
    ask = command("ask")
    args = ["--model", str(out), "--images", str(image), "--question", sample.prompt, "--max-new-tokens", "16"]
    assert ask([*args, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("reasoning: ") and "\nanswer: " in printed
    assert ask([*args, "--device", "tpu:0"]) == 2
    assert one_error_line(capsys, "ask") == ("thinkspace ask: error: --device 'tpu:0' is not a device; "
                                             "expected cpu, cuda, cuda:N or mps")
