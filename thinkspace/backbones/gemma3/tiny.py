"""The tiny Gemma 3 (``tiny:gemma3``): a tiny SigLIP + pooled projector + Gemma 3 text model, offline.

Everything is the real thing scaled down: ``Gemma3Config``, ``Gemma3ForConditionalGeneration``,
``Gemma3ImageProcessor`` and ``Gemma3Processor``, and a ``GemmaTokenizer`` (byte-fallback BPE over
"▁"-joined words, as the real one) trained on thinkspace's tiny corpus, with Gemma's special tokens
and a chat template in Gemma's turn layout. Sizes follow the other tiny families
(:func:`thinkspace.backbones.tiny.build_tiny` arguments): frames are ``sqrt(max_pixels)`` px squares
(112 px: 8 x 8 SigLIP patches of 14 px), average-pooled to ``TOKENS_PER_SIDE`` x ``TOKENS_PER_SIDE``
visual tokens per image (the real model: 896 px, 64 x 64 patches pooled to 16 x 16). The text model
keeps Gemma 3's interleaved sliding-window and global layers (the last layer global, a short window
so test sequences cross it). Token ids come from the tokenizer, never constants.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    Gemma3Config,
    Gemma3ImageProcessor,
    Gemma3Processor,
    GemmaTokenizer,
    GenerationConfig,
)

from thinkspace.backbones.tiny.build import decoder_sizes, save_quietly
from thinkspace.backbones.tiny.tokenizer import BPE_VOCAB_SIZE, training_corpus

PATCH_SIZE = 14
TOKENS_PER_SIDE = 4  # visual tokens along each side of one image after pooling
VISION_HEAD_DIM = 16
SLIDING_WINDOW = 64  # tokens; the real checkpoints use 1024 (Gemma 3) of a 32k-128k context
SIGLIP_MEAN_STD = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
ROPE = {  # Gemma 3's two rotary bases: global layers 1M, sliding-window layers 10k
    "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
    "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
}

# Gemma's vocabulary starts with these (pad 0, eos 1, bos 2, unk 3, mask 4), then the turn markers;
# the image markers sit at the end of the real vocabulary, as here.
BASE_SPECIAL = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>")
IMAGE_SPECIAL = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")
MULTIMODAL_TOKENS = {"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                     "eoi_token": "<end_of_image>"}


def chat_template() -> str:
    """Jinja chat template in Gemma 3's layout: ``<bos>``, then per turn ``<start_of_turn>{role}\\n``
    (the assistant's role is ``model``; a system turn's text opens the first user turn), text parts
    trimmed, an image part ``<start_of_image>`` (the processor expands it), ``<end_of_turn>\\n``."""
    return (
        "{{ bos_token }}"
        "{%- if messages[0]['role'] == 'system' -%}"
        "{%- set first = (messages[0]['content'] if messages[0]['content'] is string "
        "else messages[0]['content'][0]['text']) + '\\n\\n' -%}"
        "{%- set turns = messages[1:] -%}"
        "{%- else -%}{%- set first = '' -%}{%- set turns = messages -%}{%- endif -%}"
        "{%- for message in turns -%}"
        "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
        "{{ '<start_of_turn>' + role + '\\n' + (first if loop.first else '') }}"
        "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
        "{%- else -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}{{ '<start_of_image>' }}"
        "{%- elif part['type'] == 'text' -%}{{ part['text'] | trim }}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{ '<end_of_turn>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
    )


def build_tokenizer() -> GemmaTokenizer:
    """The tiny Gemma tokenizer: the real ``GemmaTokenizer`` class over a BPE trained like Gemma's
    (spaces as "▁", words kept apart, unknown characters as ``<0xNN>`` byte tokens).

    bos ``<bos>`` is added to every encoded text (as the real tokenizer does; the chat template
    writes it too, so the collator encodes rendered prompts without special tokens); eos is ``<eos>``,
    pad ``<pad>``.
    """
    bpe = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    corpus = training_corpus() + ["user\nmodel\nuser\nmodel"] * 8  # Gemma's turn roles as single tokens
    bpe.train_from_iterator(corpus, trainer=trainers.BpeTrainer(vocab_size=BPE_VOCAB_SIZE, show_progress=False))
    learned = json.loads(bpe.to_str())["model"]
    pieces = [*BASE_SPECIAL, *(f"<0x{b:02X}>" for b in range(256))]
    pieces += [p for p in learned["vocab"] if p not in pieces] + list(IMAGE_SPECIAL)
    merges = [m.split(" ") if isinstance(m, str) else list(m) for m in learned["merges"]]
    tokenizer = GemmaTokenizer(
        vocab={p: i for i, p in enumerate(pieces)},
        merges=[tuple(m) for m in merges],
        extra_special_tokens=dict(MULTIMODAL_TOKENS),
        chat_template=chat_template(),
        add_bos_token=True,
        model_max_length=32768,
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in (*BASE_SPECIAL, *IMAGE_SPECIAL)],
                         special_tokens=True)
    return tokenizer


def image_side(max_pixels: int) -> int:
    """Side (px) of the square every image is resized to: ``sqrt(max_pixels)`` in whole patches,
    at least ``TOKENS_PER_SIDE`` patches and a multiple of it (so pooling tiles the patch grid)."""
    patches = max(TOKENS_PER_SIDE, round(max_pixels**0.5 / PATCH_SIZE))
    return (patches // TOKENS_PER_SIDE) * TOKENS_PER_SIDE * PATCH_SIZE


# Each family writes its own tiny config in its folder (transformers' rule: nothing about a family outside it).
def model_config(tokenizer: GemmaTokenizer, *, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                 intermediate_size: int, vision_hidden_size: int, vision_depth: int, max_pixels: int) -> Gemma3Config:
    """``Gemma3Config`` with a tiny SigLIP tower and a tiny Gemma 3 text model; ids read from ``tokenizer``."""
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads}: hidden_size "
                         "must be a multiple of num_heads and num_heads a multiple of num_kv_heads")
    if vision_hidden_size % VISION_HEAD_DIM:
        raise ValueError(f"vision_hidden_size={vision_hidden_size} must be a multiple of {VISION_HEAD_DIM}")
    ids = tokenizer.convert_tokens_to_ids
    head_dim = hidden_size // num_heads
    text = {
        **decoder_sizes(tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                        num_kv_heads=num_kv_heads, intermediate_size=intermediate_size),
        "head_dim": head_dim,
        "query_pre_attn_scalar": head_dim,
        "sliding_window": SLIDING_WINDOW,
        # Gemma 3 interleaves five sliding-window layers per global one; here the last layer is global.
        "layer_types": ["sliding_attention"] * (num_layers - 1) + ["full_attention"],
        "rope_parameters": {k: dict(v) for k, v in ROPE.items()},
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    vision = {
        "model_type": "siglip_vision_model",
        "hidden_size": vision_hidden_size,
        "intermediate_size": 4 * vision_hidden_size,
        "num_hidden_layers": vision_depth,
        "num_attention_heads": vision_hidden_size // VISION_HEAD_DIM,
        "image_size": image_side(max_pixels),
        "patch_size": PATCH_SIZE,
        "vision_use_head": False,
    }
    return Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=TOKENS_PER_SIDE**2,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
        tie_word_embeddings=True,
        dtype="float32",
    )


def processor(tokenizer: GemmaTokenizer, *, max_pixels: int) -> Gemma3Processor:
    """The real ``Gemma3Processor`` and ``Gemma3ImageProcessor``: every image resized (aspect ratio not
    kept, as in Gemma 3) to an ``image_side(max_pixels)`` px square; pan-and-scan off (its default)."""
    side = image_side(max_pixels)
    images = Gemma3ImageProcessor(size={"height": side, "width": side}, do_pan_and_scan=False, **SIGLIP_MEAN_STD)
    return Gemma3Processor(image_processor=images, tokenizer=tokenizer, chat_template=tokenizer.chat_template,
                           image_seq_length=TOKENS_PER_SIDE**2)


def build(name: str, out: Path, **sizes: int) -> Path:
    """Write ``tiny:gemma3`` to ``out``; ``sizes`` as :func:`thinkspace.backbones.tiny.build_tiny`."""
    return build_tiny_gemma3(out, **sizes)


def build_tiny_gemma3(out: Path, *, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                      intermediate_size: int, vision_hidden_size: int, vision_depth: int, max_pixels: int,
                      seed: int, **unused: int) -> Path:
    """Write config, float32 safetensors, tokenizer and processor of a tiny Gemma 3 to ``out``; return it.

    The same arguments give byte-identical weights (seeded init on the CPU).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = model_config(tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                          num_kv_heads=num_kv_heads, intermediate_size=intermediate_size,
                          vision_hidden_size=vision_hidden_size, vision_depth=vision_depth, max_pixels=max_pixels)
    with torch.random.fork_rng(devices=[]):  # building does not move the caller's random stream
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
        # transformers starts the image projection at zero (a trained checkpoint overwrites it); a
        # random tiny model would then see every image as the same zero vector.
        torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.02)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        # A chat turn ends with <end_of_turn>; plain-text continuations with <eos> (as Gemma 3 IT).
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")],
        pad_token_id=tokenizer.pad_token_id,
    )
    save_quietly(model, out)
    processor(tokenizer, max_pixels=max_pixels).save_pretrained(out)
    return out
