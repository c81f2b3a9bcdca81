"""A small Qwen-style tokenizer trained offline, for tiny random-initialised backbones.

The BPE is trained with the same pipeline as the real Qwen2 / Qwen2.5 / Qwen3 tokenizers (NFC
normaliser, Qwen's split regex, byte-level BPE, byte-level decoder) and wrapped in the real
`Qwen2Tokenizer` class, so it encodes any text and loads as a real checkpoint's tokenizer does.
Its vocabulary is tiny: 256 byte tokens plus merges learned from the built-in English corpus
below (everyday and spatial words), then the Qwen special tokens appended at the end, as in
the real vocabularies.
"""

from __future__ import annotations

import json

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

# Same regex as the real Qwen tokenizers: digits split one by one, words keep a leading space.
QWEN_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Special tokens in the order of the real Qwen2-VL / Qwen2.5-VL / Qwen3-VL vocabularies.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
# LLaVA-OneVision (Qwen2 language model): Qwen2's three special tokens, then the image and
# video placeholders LLaVA adds (ids 151646 and 151647 in the real vocabulary).
LLAVA_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>")
# Ordinary (non-special) added tokens: kept when decoding with skip_special_tokens.
EXTRA_TOKENS = {
    "llava_onevision": (),
    "qwen2_vl": (),
    "qwen2_5_vl": ("<tool_call>", "</tool_call>"),
    "qwen3_vl": ("<tool_call>", "</tool_call>", "<think>", "</think>"),
}
# Named multimodal tokens the processors look up on the tokenizer.
MULTIMODAL_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_start_token": "<|vision_start|>",
    "vision_end_token": "<|vision_end|>",
}
FAMILY_TOKENS = {"llava_onevision": (LLAVA_SPECIAL_TOKENS, {"image_token": "<image>", "video_token": "<video>"})}
BPE_VOCAB_SIZE = 1000  # byte alphabet (256) + merges, before the added tokens

_COLOURS = "red green blue yellow orange purple pink brown black white grey gray cyan magenta gold silver"
_SHAPES = (
    "cube cubes sphere spheres cylinder cylinders cone cones torus tori box boxes ball pyramid square circle"
)
_SPATIAL = (
    "left right front behind back above below under over on top bottom near far next to between "
    "inside outside beside center middle corner closer farther closest farthest nearest north south "
    "east west up down forward backward clockwise counterclockwise facing towards away"
)
_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve first second third fourth "
    "half quarter 0 1 2 3 4 5 6 7 8 9 10 12 15 20 30 45 90 180 270 360 0.5 1.5 2.5"
)
_UNITS = "metre metres meter meters centimetres cm m degree degrees seconds second frame frames"
_SCENE = (
    "chair table sofa bed desk door window wall floor ceiling lamp shelf cabinet kitchen bedroom "
    "room camera person object objects scene picture photo video clip view views image images"
)
_QA = (
    "answer answers question questions option options choose select correct which what where how "
    "many much is are the a an of in it this that these those there and or not yes no true false "
    "you your I we they he she can could would should will do does did see seen shown visible "
    "from at by with for as be been was were if then than when while after before"
)

_SENTENCES = """\
You are a helpful assistant.
Look at the image and answer the question.
Which object is to the left of the red cube?
The blue sphere is behind the green cylinder.
The yellow cone is in front of the purple torus.
How far is the chair from the table, in metres?
The distance between the two objects is about 2.5 metres.
From the second view, which colour is on the right?
Answer with the letter of the correct option.
A. left B. right C. front D. behind
A. red B. green C. blue D. yellow E. none of the above
The answer is B.
If you turn left by 90 degrees, what will be in front of you?
The camera moves forward, then rotates clockwise.
How many cubes are there in the scene? There are three cubes.
Is the sphere closer to the camera than the cone? Yes.
The video shows a room with a sofa, a lamp and a desk.
Imagine standing at the door facing the window. Where is the bed?
The bed is on your right, about one metre away.
Question: What is the colour of the object nearest to the camera?
The first image and the second image show the same scene from two views.
Count the objects, then choose the closest option.
<think>The cube is left of the sphere, so the answer is A.</think>
<answer>A</answer>
"""


def training_corpus() -> list[str]:
    """Lines of the built-in English corpus, weighted so that the words of chat turns and of
    spatial questions end up as single tokens: mid-sentence forms (" cube") most, then
    capitalised and turn-initial forms ("Cube", "cube" right after a newline)."""
    lines = ["system\nuser\nassistant\nYou are a helpful assistant."] * 8
    lines += _SENTENCES.splitlines() * 3
    for words in (_COLOURS, _SHAPES, _SPATIAL, _NUMBERS, _UNITS, _SCENE, _QA):
        lines += [words] * 4 + [words.title(), words.replace(" ", "\n"), words.title().replace(" ", "\n")]
    lines += [f"{letter}. {letter}" for letter in "ABCDEFGH"] * 2
    return lines


def _chat_template(default_system: str | None) -> str:
    """Jinja chat template in the Qwen ChatML layout.

    Each turn is `<|im_start|>{role}\\n{content}<|im_end|>\\n`; an image part becomes
    `<|vision_start|><|image_pad|><|vision_end|>` and a video part
    `<|vision_start|><|video_pad|><|vision_end|>` (the processor expands the pads);
    `add_vision_id=True` prefixes "Picture k: " / "Video k: ". Qwen2-VL and Qwen2.5-VL insert a
    default system turn when the conversation has none; Qwen3-VL does not.
    """
    system = ""
    if default_system:
        system = (
            "{%- if messages[0]['role'] != 'system' -%}"
            "{{ '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' }}"
            "{%- endif -%}"
        )
    return (
        "{%- set seen = namespace(images=0, videos=0) -%}"
        + system
        + "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}"
        "{{ message['content'] }}"
        "{%- else -%}"
        "{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
        "{%- set seen.images = seen.images + 1 -%}"
        "{%- if add_vision_id -%}{{ 'Picture ' + seen.images|string + ': ' }}{%- endif -%}"
        "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
        "{%- elif part['type'] == 'video' or 'video' in part -%}"
        "{%- set seen.videos = seen.videos + 1 -%}"
        "{%- if add_vision_id -%}{{ 'Video ' + seen.videos|string + ': ' }}{%- endif -%}"
        "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
        "{%- elif 'text' in part -%}"
        "{{ part['text'] }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- endif -%}"
        "{{ '<|im_end|>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


# Each family's chat template is its own data (the processors expect these exact layouts), not shared code.
def _llava_chat_template() -> str:
    """Jinja chat template in the LLaVA-OneVision layout (ChatML turns, no default system turn).

    Parts are rendered in order: an image part becomes `<image>\\n`, a video part `<video>\\n`
    (the processor expands the placeholders), a text part its text.
    """
    return (
        "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}"
        "{{ message['content'] }}"
        "{%- else -%}"
        "{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
        "{{ '<image>\\n' }}"
        "{%- elif part['type'] == 'video' or 'video' in part -%}"
        "{{ '<video>\\n' }}"
        "{%- elif 'text' in part -%}"
        "{{ part['text'] }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- endif -%}"
        "{{ '<|im_end|>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


CHAT_TEMPLATES = {
    "llava_onevision": _llava_chat_template(),
    "qwen2_vl": _chat_template("You are a helpful assistant."),
    "qwen2_5_vl": _chat_template("You are a helpful assistant."),
    "qwen3_vl": _chat_template(None),
}


def train_bpe(vocab_size: int = BPE_VOCAB_SIZE) -> Tokenizer:
    """Byte-level BPE with Qwen's pre-tokenizer, trained on `training_corpus()`; no added tokens yet."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any text encodes
        show_progress=False,
    )
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    return tok


def build_tokenizer(family: str) -> Qwen2Tokenizer:
    """The tiny tokenizer of `family`: the real `Qwen2Tokenizer` class (a
    `PreTrainedTokenizerFast`) over the trained vocabulary, with Qwen's special tokens,
    eos/pad and the family's chat template.

    eos is `<|im_end|>` (end of a chat turn) and pad is `<|endoftext|>`, as in the Instruct
    checkpoints; there is no bos and no unk token. The special tokens follow the learned
    vocabulary, so their ids are never constants: read them from the tokenizer.
    """
    special_tokens, multimodal = FAMILY_TOKENS.get(family, (SPECIAL_TOKENS, MULTIMODAL_TOKENS))
    bpe = json.loads(train_bpe().to_str())["model"]
    vocab = dict(bpe["vocab"])
    n_learned = len(vocab)
    # Give the special tokens their Qwen order right after the learned vocabulary.
    vocab.update({token: n_learned + i for i, token in enumerate(special_tokens)})
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in bpe["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=dict(multimodal),
        chat_template=CHAT_TEMPLATES[family],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in special_tokens]
    tokenizer.add_tokens(specials, special_tokens=True)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in EXTRA_TOKENS[family]])
    return tokenizer
