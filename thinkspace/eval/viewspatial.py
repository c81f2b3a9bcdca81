"""ViewSpatial-Bench scoring, equal to the official ``evaluate.py`` (ZJU-REAL/ViewSpatial-Bench).

Per record, the response's *last line* (the text after its last ``"\\n"``) and the gold ``answer``
(``"A. right"``) are each read by :func:`viewspatial_option`: the first standalone letter A-D, any
case, upper-cased (``re.search(r"\\b([A-D])\\b", text, re.IGNORECASE)``). The record is correct when
the two letters are equal. So "The answer is B" scores B, but "a chair, so B" scores A (the article
"a"), and an answer on the first of two lines is not read at all: official behaviour, kept.

Accuracy per ``question_type`` (five types: camera / person perspective x relative direction,
object view orientation; person perspective also scene simulation relative direction) and overall
accuracy over all records (micro: correct / total, as the official script prints), in percent. The
``extra`` entries ``camera_perspective`` and ``person_perspective`` are thinkspace's: the same micro
accuracy over the types whose name starts with "Camera perspective" / "Person perspective" (the
official script prints none; the paper's table has such columns).

Deviation on malformed files only: a gold ``answer`` without a letter A-D is refused (the official
code would count it correct whenever the response has no letter either, None == None); a record
missing a field is refused naming file and line (the official code skips it silently).

Predictions file: the benchmark's records (``question_type``, ``answer``, ...) plus the model's
response, by default in ``prediction``.
"""

from __future__ import annotations

import re
from collections import defaultdict

from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.records import Located, field

_OPTION = re.compile(r"\b([A-D])\b", re.IGNORECASE)
#: the official prompt's suffix (``evaluate.py``'s ``prompt_format``).
PROMPT_SUFFIX = "\nReply only to the corresponding option.\nAnswer:"
#: the five question types of the released ``eval/ViewSpatial-Bench.json`` (5,712 questions).
QUESTION_TYPES = (
    "Camera perspective - Relative Direction",
    "Camera perspective - Object View Orientation",
    "Person perspective - Object View Orientation",
    "Person perspective - Relative Direction",
    "Person perspective - Scene Simulation Relative Direction",
)
#: ``extra`` key -> the question-type prefix it aggregates (thinkspace's, see the module docstring).
PERSPECTIVES = {"camera_perspective": "Camera perspective", "person_perspective": "Person perspective"}


def viewspatial_option(text: str | None) -> str | None:
    """The official ``extract_option``: the first standalone A-D (any case), upper-cased; ``None`` without one."""
    match = _OPTION.search(text or "")
    return match.group(1).upper() if match else None


def last_line(response: object) -> str:
    """What the official script reads of a response: ``response.split("\\n")[-1]`` (``None``: empty)."""
    return "" if response is None else str(response).split("\n")[-1]


def viewspatial_correct(response: object, answer: str, where: str = "") -> bool:
    """Whether a response's last line names the gold ``answer``'s letter (``"A. right"`` -> A).

    Raises:
        ValueError: the gold answer holds no letter A-D (names ``where``).
    """
    gold = viewspatial_option(str(answer))
    if gold is None:
        raise ValueError(f"{where}: gold answer {answer!r} holds no option letter A-D; expected e.g. 'A. right'")
    return viewspatial_option(last_line(response)) == gold


def score_viewspatial(records: list[Located], response_field: str | None = None) -> BenchmarkScore:
    """Accuracy (percent) per question type and overall (correct / total) of ViewSpatial-Bench predictions.

    Raises:
        KeyError: a record lacks ``question_type``, ``answer`` or the response (names file and line).
        ValueError: a gold answer without a letter A-D.
    """
    response_field = response_field or "prediction"
    correct: dict[str, list[bool]] = defaultdict(list)
    unread = 0
    for where, record in records:
        kind = str(field(record, "question_type", where, "ViewSpatial-Bench question type; is this its file?"))
        answer = field(record, "answer", where, "ViewSpatial-Bench gold answer such as 'A. right'")
        response = field(record, response_field, where, "the model's response; choose it with --response-field")
        unread += viewspatial_option(last_line(response)) is None
        correct[kind].append(viewspatial_correct(response, answer, where))
    order = [k for k in QUESTION_TYPES if k in correct] + sorted(k for k in correct if k not in QUESTION_TYPES)
    groups = {k: 100.0 * sum(correct[k]) / len(correct[k]) for k in order}
    extra = {}
    for key, prefix in PERSPECTIVES.items():
        hits = [c for k in order if k.startswith(prefix) for c in correct[k]]
        if hits:
            extra[key] = 100.0 * sum(hits) / len(hits)
    notes = []
    unknown = [k for k in order if k not in QUESTION_TYPES]
    if unknown:
        notes.append(f"question types not in the released benchmark: {', '.join(map(repr, unknown))}")
    if unread:
        notes.append(f"{unread} response(s) without a letter A-D on their last line, scored wrong")
    total = sum(len(v) for v in correct.values())
    return BenchmarkScore(
        benchmark="viewspatial",
        n=total,
        overall=100.0 * sum(sum(v) for v in correct.values()) / total,
        groups=groups,
        group_key="by_type",
        counts={k: len(correct[k]) for k in order},
        extra=extra,
        notes=notes,
    )
