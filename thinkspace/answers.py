"""The one place answers are read from model text: thinkspace's rule and each benchmark's official rule.

thinkspace's rule (what ``val/accuracy``, the GRPO answer reward and ``SpatialModel.ask`` use), per kind:

* :func:`answer_text`: the last ``<answer>...</answer>`` block, else the text without its latent slot and
  ``<think>`` block;
* :func:`choice`: the option letter MindCube's extractor reads from :func:`answer_text`;
* :func:`number`: VSI-Bench's first token of :func:`answer_text`, parsed as a float;
* :func:`same_text`: equal after SQA3D's normalisation.

Official rules (kept bit-for-bit; tests replay released records through them):

* :func:`mindcube_choice` follows MindCube's ``src/evaluation/core/extractors.py``
  (``extract_answer``, as revised on 2025-06-23, which dropped a bare "X before a space"
  pattern): a fixed priority of patterns, the last match of the first pattern that
  matches wins. ``thinkspace score mindcube`` applies it to the *whole* response, so a
  "B." inside a think block can change the official letter but not thinkspace's.
* :func:`vsibench_token` follows VSI-Bench's ``fuzzy_matching`` (lmms-eval task
  ``vsibench/utils.py``): the text before the first space, trailing dots removed.
* :func:`sqa3d_normalise` follows SQA3D's answer cleaning (``LLM/eval_sqa3d_llm.py``, the same
  ``clean_answer`` as LEO's and MSR3D's): lower case, collapsed spaces, punctuation dropped, numbers
  0-20 spelt out; :func:`sqa3d_refined_match` is LEO's refined exact match (EM-R).
* :func:`first_answer_block` is 3DThinker's evaluation engine's ``answer`` field: the first ``<answer>``
  block's content, ``""`` without one.
* :func:`thinker_stage2_choice` is 3DThinker's stage-2 GRPO answer rule (``open_r1/vlm_modules/qwen_module.py``,
  ``response_text_reward``): MindCube's extractor on the *first* ``<answer>`` block, nothing without one.

Questions: :func:`option_letters` (the letters a question lists as options).
Gold answers: :func:`gold_choice` (a stored letter, upper-cased) and :func:`gold_letter` (a letter in a
released record's answer string such as ``"C. left"``).
"""

from __future__ import annotations

import re

from thinkspace.slot_tokens import END, PAD, START

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_GOLD_LETTER = re.compile(r"^\(?([A-E])(?:[\.\):]|$)")
# an option in a question: "A." or "A)" starting a line, or "A. " after a space (MindCube lists options inline)
_QUESTION_OPTION = re.compile(r"(?:^[ \t]*([A-E])[.)]\s|(?:^|\s)([A-E])\.\s)", re.M)

_LETTER_DOT = re.compile(r"([A-E])\.")
_ANSWER_SECTION = re.compile(r"<Answer>(.*?)(?:<|$)", re.DOTALL)
_IN_SECTION = [
    re.compile(r"[Mm]y answer is ([A-E])"),
    re.compile(r"[Tt]he answer is ([A-E])"),
    re.compile(r"(?:Answer: )?([A-E])\."),
    re.compile(r"\b([A-E])\b"),
]
_DESCRIPTION = r"[A-Za-z0-9 \-\(\)\'\"]"
_GENERAL = [
    re.compile(r"(?:Answer: )?([A-E])\. [A-Za-z0-9 \-\(\)\'\",]+(?=(?:\n|$|\.|\"))"),
    re.compile(r"(?:Answer: )?([A-E])\. " + _DESCRIPTION + "+"),
    re.compile(r"(?:^|\n)(?:Answer: )?([A-E])(?:\.|$|\s)"),
    re.compile(r"[\*\"]([A-E])[\*\"]"),
    re.compile(r"\bAnswer:?\s*([A-E])\b"),
    re.compile(r"[Mm]y answer is ([A-E])"),
    re.compile(r"answer is ([A-E])"),
]
_LINE_DESCRIBED = re.compile(r"([A-E])\. [A-Za-z0-9 \-\(\)\'\",]+")
_LINE_LETTER = re.compile(r"\b([A-E])\b")


def mindcube_choice(text: str | None) -> str | None:
    """The option letter (A-E) MindCube's evaluator reads from ``text``, or ``None``.

    Priority: (1) the last "X." anywhere; (2) inside an ``<Answer>`` section: "my
    answer is X", "the answer is X", "X.", a standalone X; (3) a list of general
    patterns ("X. description", "X" at the start of the text or a line, "*X*",
    "Answer: X", "answer is X"); (4) line by line: the last line with "X. description", else the
    first standalone capital letter A-E of the last line that has one. Lower-case
    letters are never answers.
    """
    if not text:
        return None
    found = _LETTER_DOT.findall(text)
    if found:
        return found[-1]
    section = _ANSWER_SECTION.search(text)
    if section:
        for pattern in _IN_SECTION:
            found = pattern.findall(section.group(1))
            if found:
                return found[-1]
    for pattern in _GENERAL:
        found = pattern.findall(text)
        if found:
            return found[-1]
    lines = text.split("\n")
    described = [m.group(1) for line in lines if (m := _LINE_DESCRIBED.search(line))]
    if described:
        return described[-1]
    for line in reversed(lines):
        match = _LINE_LETTER.search(line)
        if match:
            return match.group(1)
    return None


def vsibench_token(text: str | None) -> str:
    """VSI-Bench's reading of a prediction: text before the first space, then trailing
    dots removed, then surrounding whitespace stripped (``"B. sofa"`` -> ``"B"``,
    ``"3.5 metres"`` -> ``"3.5"``). Only a space splits: a newline does not."""
    return (text or "").split(" ")[0].rstrip(".").strip()


def parse_float(text: str | None) -> float | None:
    """``float(text)`` or ``None`` when Python cannot parse it (``"3m"``, ``""``)."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_TYPOS = {"letf": "left", "let": "left", "tehre": "there", "rigth": "right", "rght": "right",
          "behine": "behind", "chai": "chair", "wasing": "washing", "waslked": "walked"}


def sqa3d_normalise(text: str | None) -> str:
    """An answer in SQA3D's cleaned form, as SQA3D's ``clean_answer`` (``LLM/eval_sqa3d_llm.py``;
    the same function in LEO's and MSR3D's ``data/data_utils.py``): lower case, spaces (only spaces)
    trimmed at both ends and collapsed, characters other than letters, digits, ``, ' - :`` and
    whitespace removed, common typos fixed, ``oclock`` and ``o'  clock`` as ``o'clock``, ``tv`` as
    ``TV``, ``none`` and whole numbers 0-20 (and 23) as words, digits glued to a word dropped
    (``mat2``), then ``a``, ``an``, ``the`` before a word dropped, in that order. Bit for bit: no
    final strip, so ``"table ."`` keeps its trailing space (``"table "``), as officially."""
    s = (text or "").lower()
    s = re.sub(r"[ ]+$", "", s)
    s = re.sub(r"^[ ]+", "", s)
    s = re.sub(r" {2,}", " ", s)
    s = re.sub(r"\.[ ]{2,}", ". ", s)
    s = re.sub(r"[^a-zA-Z0-9,'\s\-:]+", "", s)  # also removes "ç" and "’", so their official rewrites never fire
    for wrong, right in _TYPOS.items():
        s = re.sub(rf"\b{wrong}\b", right, s)
    s = re.sub(r"\btv\b", "TV", s)
    s = re.sub(r"\boclock\b", "o'clock", s)
    s = re.sub(r"\bo'[ ]+clock\b", "o'clock", s)  # "o' clock" (the official rule after "oclock")
    s = re.sub(r"\bnone\b", "zero", s)
    for value, word in enumerate(_NUMBER_WORDS):
        s = re.sub(rf"\b{value}\b", word, s)
    s = re.sub(r"\b23\b", "twenty-three", s)
    s = re.sub(r"\b([a-zA-Z]+)([0-9])\b", r"\g<1>", s)  # "mat2" -> "mat"
    for article in ("a", "an", "the"):  # one pass each, as officially: "the a chair" -> "chair"
        s = re.sub(rf"\b{article}\b ([a-zA-Z]+)", r"\g<1>", s)
    return re.sub(r"\bbackwards\b", "backward", s)


def sqa3d_refined_match(response: str | None, references: list[str]) -> tuple[bool, bool]:
    """LEO's SQA3D/ScanQA answer match (``evaluator/scanqa_eval.py`` ``answer_match``): (EM, EM-R).

    Both sides go through :func:`sqa3d_normalise`; the references are tried in order and the first
    that matches decides: equal gives (True, True); one contained in the other with all whitespace
    removed gives (False, True). So an empty response is an EM-R hit (``"" in gold``), as officially,
    and a later reference equal to the response is not reached when an earlier one matched loosely.
    """
    pred = sqa3d_normalise(response)
    squeezed = "".join(pred.split())
    for gold in (sqa3d_normalise(r) for r in references):
        if pred == gold:
            return True, True
        gold_squeezed = "".join(gold.split())
        if squeezed in gold_squeezed or gold_squeezed in squeezed:
            return False, True
    return False, False


def answer_text(completion: str) -> str:
    """The part of a completion that holds the answer: the last ``<answer>`` block (stripped), else the
    completion without its latent slot tokens and its ``<think>`` block (an unclosed one runs to the end)."""
    found = _ANSWER_BLOCK.findall(completion)
    if found:
        return found[-1].strip()
    text = completion.replace(START, "").replace(PAD, "").replace(END, "")
    return _THINK_BLOCK.sub("", text).strip()


def choice(completion: str) -> str | None:
    """thinkspace's option letter (A-E) of a completion: MindCube's extractor on :func:`answer_text`."""
    return mindcube_choice(answer_text(completion))


def number(completion: str) -> float | None:
    """thinkspace's number of a completion: VSI-Bench's first token of :func:`answer_text` as a float
    (``"<answer>3.5 metres</answer>"`` -> ``3.5``), ``None`` when it does not parse."""
    return parse_float(vsibench_token(answer_text(completion)))


def same_text(completion: str, gold: str) -> bool:
    """Whether :func:`answer_text` equals ``gold`` after SQA3D's normalisation, both ends then stripped
    (thinkspace's rule: ``"table ."`` counts; the official exact match keeps the trailing space)."""
    return sqa3d_normalise(answer_text(completion)).strip() == sqa3d_normalise(str(gold)).strip()


def gold_choice(answer: object) -> str:
    """A stored gold option letter as compared: ``str``, stripped, upper case (``" b"`` -> ``"B"``)."""
    return str(answer).strip().upper()


def gold_letter(answer: object) -> str | None:
    """The letter of a released record's gold answer: ``"C"``, ``"C. left"``, ``"(C)"`` -> ``"C"``; else the
    letter MindCube's extractor reads, or ``None``."""
    text = str(answer).strip()
    match = _GOLD_LETTER.match(text)
    return match.group(1) if match else mindcube_choice(text)


def first_answer_block(completion: str) -> str:
    """The content of the first ``<answer>`` block, stripped; ``""`` without one: what 3DThinker's evaluation
    engine writes as a record's ``answer`` (``eval/src/inference/engines/qwen_engine.py``, ``extract_answer``)."""
    found = _ANSWER_BLOCK.search(completion)
    return found.group(1).strip() if found else ""


def thinker_stage2_choice(completion: str) -> str | None:
    """3DThinker's stage-2 answer rule: MindCube's extractor on the *first* ``<answer>`` block (stripped);
    ``None`` without a block (no fallback to untagged text)."""
    found = _ANSWER_BLOCK.search(completion)
    return mindcube_choice(found.group(1).strip()) if found else None


def option_letters(question: str) -> list[str]:
    """The option letters a question lists, sorted: ``"A."`` or ``"A)"`` starting a line, or ``"A. "`` after a
    space (``"Which? A. left B. right"`` -> ``["A", "B"]``); empty for an open question."""
    return sorted({a or b for a, b in _QUESTION_OPTION.findall(question)})
