"""Batched evaluation decodes what batch 1 decodes: greedy, float32, left-padded prompts of different
lengths, rows that stop (and close their latent slot) at different steps and are dropped from the
running batch. Tokens equal, row by row, for a 1D-RoPE decoder (LLaVA-OneVision, plain text decoding),
a Qwen-VL one (3D RoPE) with images of different sizes, and latent decoding (LatentAlignment's slot,
the start and an early end chosen per row)."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from latent_helpers import latent_module
from thinkspace.backbones import LlavaOneVision, QwenVL
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode import decode
from thinkspace.generation.decoder_step import LeanDecoder

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = 8
#: image sizes (width, height): the prompts' visual token counts, hence their lengths, differ
SIZES = [(56, 56), (84, 56), (112, 84), (56, 112), (140, 112), (84, 84), (112, 56), (56, 84)]


def varied(backbone):
    """The tiny random decoder with its matrices moved by 0.1 x N(0, 1) (seed 5): its greedy tokens vary
    (a random tiny model's argmax repeats one token, which would make any two decodes look equal)."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in backbone.language_model().parameters():
            if param.ndim == 2:
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return backbone


def samples(sizes=None):
    """``ROWS`` synthetic questions of 1-2 views, each resized to its own size when ``sizes`` is given."""
    data = SyntheticSpatial(ROWS, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=3)
    out = [replace(data[i], response=None) for i in range(ROWS)]
    if sizes is not None:
        out = [replace(s, frames=[f.resize(size) for f in s.frames]) for s, size in zip(out, sizes)]
    return out


class DroppedRows:
    """Records the running batch's size each time the lean step drops finished rows."""

    def __init__(self, monkeypatch):
        self.sizes, original = [], LeanDecoder.keep

        def keep(decoder, index):
            self.sizes.append(int(index.numel()))
            return original(decoder, index)

        monkeypatch.setattr(LeanDecoder, "keep", keep)


def assert_rows_match(batched, alone, pad_id):
    """Each row of the batched decode holds the tokens of its prompt decoded alone, then padding."""
    for i, one in enumerate(alone):
        length = one.tokens.shape[1]
        assert torch.equal(batched.tokens[i, :length], one.tokens[0]), f"row {i}"
        assert (batched.tokens[i, length:] == pad_id).all(), f"row {i} after its end"
        assert torch.equal(batched.completion_mask[i, :length], one.completion_mask[0])
        assert not batched.completion_mask[i, length:].any()
    assert batched.texts == [one.texts[0] for one in alone]


@pytest.mark.parametrize("family", ["llava_onevision", "qwen2_5_vl"])
def test_batch_8_decodes_the_batch_1_tokens_with_rows_dropped_as_they_stop(tiny_cache, monkeypatch, family):
    backbone = varied(LlavaOneVision("tiny:llava_onevision") if family == "llava_onevision"
                      else QwenVL("tiny:qwen2_5_vl"))
    backbone.hf.eval()
    collate = backbone.collator(with_response=False)
    questions = samples(SIZES if family == "qwen2_5_vl" else None)
    settings = {"max_new_tokens": 24, "eos_token_id": list(range(0, 1024, 9))}  # rows end at different steps
    dropped = DroppedRows(monkeypatch)
    batch = collate(questions)
    batched = decode(backbone, batch, **settings)
    assert batched.decoder_step == "lean"
    lengths = batched.completion_mask.sum(1)
    prompt_lengths = batch.prompts(backbone.tokenizer.pad_token_id).inputs["attention_mask"].sum(1)
    assert len(set(prompt_lengths.tolist())) > 1  # left padding at work
    assert int(lengths.min()) < 8 < int(lengths.max())  # some rows stop before the first drop, some run on
    assert dropped.sizes and dropped.sizes[0] < ROWS
    alone = [decode(backbone, collate([q]), **settings) for q in questions]
    assert_rows_match(batched, alone, backbone.tokenizer.pad_token_id)
    masked = decode(backbone, batch, drop_finished=False, **settings)  # the same tokens, finished rows masked
    assert torch.equal(masked.tokens, batched.tokens)


def test_the_repetition_penalty_follows_the_rows_batched_decoding_keeps(tiny_cache, monkeypatch):
    """The penalty's seen tokens are per row: dropping finished rows drops theirs, so each row still decodes
    what it decodes alone (a penalty of 2 changes the tokens, so a mixed-up row would show)."""
    backbone = varied(LlavaOneVision("tiny:llava_onevision"))
    backbone.hf.eval()
    collate = backbone.collator(with_response=False)
    questions = samples()
    settings = {"max_new_tokens": 24, "eos_token_id": list(range(0, 1024, 9)), "repetition_penalty": 2.0}
    dropped = DroppedRows(monkeypatch)
    batched = decode(backbone, collate(questions), **settings)
    assert dropped.sizes and dropped.sizes[0] < ROWS
    plain = decode(backbone, collate(questions), **{**settings, "repetition_penalty": 1.0})
    assert not torch.equal(plain.tokens, batched.tokens)
    alone = [decode(backbone, collate([q]), **settings) for q in questions]
    assert_rows_match(batched, alone, backbone.tokenizer.pad_token_id)


class RowChoiceHead(nn.Module):
    """The real ``lm_head``, and at decoding steps a row 'chooses' the slot's start where its own argmax is
    divisible by 7 and the end where by 4 (+1e4): each row's choice depends on that row alone, so the tiny
    model opens and closes the slot at different steps in different rows, whatever the batch."""

    def __init__(self, head: nn.Module, start_id: int, end_id: int) -> None:
        super().__init__()
        self.head, self.start_id, self.end_id = head, start_id, end_id

    def forward(self, hidden):
        logits = self.head(hidden)
        if hidden.ndim == 2:
            best = logits.argmax(-1)
            logits = logits.clone()
            logits[:, self.start_id] += 1e4 * (best % 7 == 0)
            logits[:, self.end_id] += 1e4 * (best % 4 == 0)
        return logits


def test_batch_8_latent_decoding_gives_the_batch_1_tokens_and_latents(tiny_cache, monkeypatch):
    module = latent_module()
    varied(module.backbone)
    slot = module.objectives["latent"].slot
    hf = module.backbone.hf
    hf.lm_head = RowChoiceHead(hf.lm_head, slot.start_id, slot.end_id)
    collate = module.collator(with_response=False)
    questions = samples()  # 1 or 2 views: prompts of different lengths (the oracle teacher's depth fixes the size)
    settings = {"max_new_tokens": 24, "force_start": False, "early_end": True, "eos_token_id": list(range(0, 1024, 9))}
    dropped = DroppedRows(monkeypatch)
    batched = module.decode(collate(questions), **settings)
    alone = [module.decode(collate([q]), **settings) for q in questions]
    assert dropped.sizes and dropped.sizes[0] < ROWS
    started, count = batched.latent_start, batched.latent_count
    assert len(set(started.tolist())) > 2 and (started >= 0).any() and (started < 0).any()
    assert (count > 0).any() and len(set(count[started >= 0].tolist())) > 1  # slots closed at different steps
    assert_rows_match(batched, alone, module.backbone.tokenizer.pad_token_id)
    for i, one in enumerate(alone):
        assert int(started[i]) == int(one.latent_start[0]) and int(count[i]) == int(one.latent_count[0])
        # the latents are hidden states: the prompt's attention over a padded batch and products over 8 rows
        # or 1 sum in other orders (measured: 1.3e-5 at most here), the tokens they lead to are the same
        torch.testing.assert_close(batched.latents[i], one.latents[0], rtol=1e-4, atol=1e-4)


def test_transformers_generate_at_batch_8_gives_its_batch_1_tokens(tiny_cache):
    """``sampler: transformers`` (configs/eval/mindcube_3dthinker_base.yaml) left-pads the same way; with a
    repetition penalty, as the base checkpoint's generation config sets one. It masks finished rows to the end."""
    backbone = varied(QwenVL("tiny:qwen2_5_vl"))
    backbone.hf.eval()
    collate = backbone.collator(with_response=False)
    questions = samples(SIZES)
    settings = {"sampler": "transformers", "max_new_tokens": 24, "do_sample": False, "repetition_penalty": 1.05,
                "eos_token_id": list(range(0, 1024, 9))}
    batched = decode(backbone, collate(questions), **settings)
    alone = [decode(backbone, collate([q]), **settings) for q in questions]
    lengths = [one.tokens.shape[1] for one in alone]
    assert min(lengths) < max(lengths)
    for i, one in enumerate(alone):
        assert torch.equal(batched.tokens[i, :lengths[i]], one.tokens[0]), f"row {i}"
    assert batched.texts == [one.texts[0] for one in alone]
