"""The Qwen-VL adapter: same numbers as transformers, hooks, tokens, loading errors."""

import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F

from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.generation.decode import decode
from thinkspace.objectives import TextCrossEntropy

from cli_helpers import QUICKSTART, command


@pytest.fixture(scope="module")
def batch(qwen25):
    views = ColouredSquares(8, num_views=(1, 2), seed=4)
    video = ColouredSquares(2, num_views=4, video=True, seed=5)
    return qwen25.collator({"text": TextCrossEntropy()})([views[0], video[0], views[1]])


def test_hidden_and_loss_match_transformers(qwen25, batch):
    with torch.no_grad():
        out = qwen25(batch)
        ref = qwen25.hf(**batch.inputs, labels=batch.labels)
        terms = TextCrossEntropy().loss(out, batch)
    mask = batch.inputs["attention_mask"].bool()
    torch.testing.assert_close(out.logits[mask], ref.logits[mask], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["ce"], ref.loss, rtol=1e-5, atol=1e-6)
    assert out.hidden.shape == (*batch.labels.shape, qwen25.hidden_size)


def test_embeds_hook_edits_visual_tokens_causally(qwen25, batch):
    first = int(batch.visual.positions(0).min())

    def push_visual(embeds, b):
        embeds = embeds.clone()
        embeds[b.visual.sample, b.visual.position] += 1.0
        return embeds

    with torch.no_grad():
        plain = qwen25(batch).hidden
        same = qwen25(batch, inputs_embeds_hook=lambda e, b: e).hidden
        pushed = qwen25(batch, inputs_embeds_hook=push_visual).hidden
    torch.testing.assert_close(same, plain)
    # causal: nothing before the first visual token moves; the visual tokens do
    torch.testing.assert_close(pushed[0, :first], plain[0, :first])
    assert (pushed[0, first:] - plain[0, first:]).abs().amax() > 1e-3


def test_add_tokens_is_idempotent_and_resizes(tiny_cache):
    backbone = QwenVL("tiny:qwen2_5_vl")
    rows = backbone.hf.get_input_embeddings().weight.shape[0]
    before = len(backbone.tokenizer)
    tokens = ["<|latent_start|>"] + [f"<|new_{i}|>" for i in range(rows - before + 3)]
    ids = backbone.add_tokens(tokens)
    assert ids == list(range(before, before + len(tokens)))
    assert backbone.add_tokens(tokens) == ids
    assert len(backbone.tokenizer) == before + len(tokens)
    assert backbone.hf.get_input_embeddings().weight.shape[0] >= len(backbone.tokenizer)
    assert backbone.hf.lm_head.weight.shape[0] == backbone.hf.get_input_embeddings().weight.shape[0]
    assert backbone.tokenizer.tokenize("a<|latent_start|>b")[1] == "<|latent_start|>"


def test_generate_returns_text_per_sample(qwen25, batch):
    texts = decode(qwen25, batch, sampler="transformers", max_new_tokens=3, do_sample=False).texts
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


@pytest.mark.parametrize("family", ["qwen2_vl", pytest.param("qwen3_vl", marks=pytest.mark.slow)])  # qwen3: ~8 s
def test_other_families_train_through_the_same_code(family, tiny_cache):
    backbone = QwenVL(f"tiny:{family}")
    samples = [ColouredSquares(4, num_views=(1, 2), seed=1)[i] for i in range(2)]
    samples.append(ColouredSquares(2, num_views=4, video=True, seed=2)[0])
    batch = backbone.collator({"text": TextCrossEntropy()})(samples)
    for b, sample in enumerate(samples):
        rows_cols = batch.visual.grid[batch.visual.grid[:, 0] == b][:, 2:].prod(1).sum()
        assert batch.visual.positions(b).numel() == int(rows_cols)
    out = backbone(batch)
    loss = TextCrossEntropy().loss(out, batch)["ce"]
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    with torch.no_grad():
        ref = backbone.hf(**batch.inputs)
    mask = batch.inputs["attention_mask"].bool()
    torch.testing.assert_close(out.logits.detach()[mask], ref.logits[mask], rtol=1e-5, atol=1e-5)


def test_unsupported_family_names_directory_and_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match=r"model_type 'llama' is not a Qwen-VL family model; QwenVL supports"):
        QwenVL(str(tmp_path))


def test_missing_model_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        QwenVL(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        QwenVL(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown tiny model family 'qwen9'"):
        QwenVL("tiny:qwen9")


def test_lora_trains_only_adapters(tiny_cache):
    from thinkspace.backbones import LoraSettings

    backbone = QwenVL("tiny:qwen2_5_vl", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all("language_model" in n for n in trainable)
    batch = backbone.collator({"text": TextCrossEntropy()})([ColouredSquares(2)[0]])
    loss = F.cross_entropy(backbone(batch).logits[0, :-1], batch.inputs["input_ids"][0, 1:])
    loss.backward()
    assert all(p.grad is not None for n, p in backbone.named_parameters() if p.requires_grad)


def test_generation_hook_sees_the_prompt_layout_once(qwen25, batch):
    seen = []
    layout = qwen25.layout()

    def check(embeds, b):
        ids = b.inputs["input_ids"]
        visual_ids = ids[b.visual.sample, b.visual.position]
        seen.append(bool(((visual_ids == layout.image_token_id) | (visual_ids == layout.video_token_id)).all()))
        assert embeds.shape[:2] == ids.shape
        return embeds

    texts = decode(qwen25, batch, inputs_embeds_hook=check, sampler="transformers", max_new_tokens=3, do_sample=False).texts
    assert seen == [True] and len(texts) == len(batch)
    # left padding: every prompt ends at the last column
    assert texts == decode(qwen25, batch, sampler="transformers", max_new_tokens=3, do_sample=False).texts


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(batch):
    def loss_and_grad(checkpointing):
        torch.manual_seed(0)
        backbone = QwenVL("tiny:qwen2_5_vl")
        if checkpointing:
            backbone.enable_gradient_checkpointing()
        loss = TextCrossEntropy().loss(backbone(batch), batch)["ce"]
        loss.backward()
        return loss.detach(), backbone.hf.lm_head.weight.grad.clone()

    plain, plain_grad = loss_and_grad(False)
    ckpt, ckpt_grad = loss_and_grad(True)
    torch.testing.assert_close(ckpt, plain)
    torch.testing.assert_close(ckpt_grad, plain_grad, rtol=1e-5, atol=1e-6)



@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed here")
def test_flash_attention_without_flash_attn_is_one_line_naming_the_setting(capsys):
    with pytest.raises(ImportError, match=r"^tiny:qwen2_5_vl: attn_implementation: flash_attention_2 needs the "
                                          r"flash-attn package, which is not installed .*use attn_implementation: sdpa$"):
        QwenVL("tiny:qwen2_5_vl", attn_implementation="flash_attention_2")
    assert command("fit")(["--config", str(QUICKSTART), "--model.backbone.init_args.attn_implementation",
                           "flash_attention_2"]) == 2  # through the config reader: one line, before any weights
    err = capsys.readouterr().err  # Lightning's "Seed set to 0" line comes first
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "thinkspace fit: error: Problem with given class_path 'thinkspace.backbones.QwenVL': tiny:qwen2_5_vl: "
        "attn_implementation: flash_attention_2 needs the flash-attn package")
