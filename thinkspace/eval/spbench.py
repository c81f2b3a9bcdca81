"""SPBench scoring (SPBench-SI single image, SPBench-MV multi-view), equal to SpatialLadder's evaluator.

The official code (ZJU-REAL/SpatialLadder ``eval_spld``) scores both splits with its VSI-Bench
functions (``data_utils/vsibench.py`` ``vsibench_eval``, rules in ``data_utils/vsi_utils.py``):

- Answer tags: with the ``thinking`` prompt (``run_eval.sh``'s default) a response containing
  ``<answer>`` is replaced by the text between the first ``<answer>`` and the next ``</answer>``,
  stripped, or by the string ``"None"`` when no closing tag follows. With the ``default`` prompt the
  response is read as it is.
- Multiple choice (``object_rel_direction``, ``object_rel_distance``): ``"Answer:"`` removed, then the
  text before the first space, stripped, if it is one capital A-D with an optional dot (``"B."``,
  ``"C"``), that letter, else the whole response stripped; correct when equal to ``ground_truth``
  ignoring case (so ``"b"`` alone is right, ``"(B)"`` or ``"The answer is B"`` wrong).
- Numbers (``object_abs_distance`` metres, ``object_size_estimation`` centimetres, ``object_counting``):
  the response lower-cased; the first of the number words one..twenty, thirty..ninety, zero, "a",
  "an" (in that order, not in the order they occur) found as a whole word gives its value, else the
  first ``\\d+(\\.\\d+)?`` (so "a 2 m gap" reads 1, "-3" reads 3); scored by Mean Relative Accuracy
  (:func:`thinkspace.eval.vsibench.mean_relative_accuracy`: ten thresholds 0.50..0.95,
  ``|pred - gt| / gt <= 1 - theta``), 0 without a number.

Aggregation: the mean per question type; when no ``object_rel_direction`` record is present the
official code adds an ``object_rel_direction`` entry of 0 (it tries to merge VSI-Bench's easy /
medium / hard levels and falls back to 0), kept and noted. Overall is the mean of the entries (SI:
four types, MV: five), ``mca_accuracy`` the mean of the multiple-choice entries and ``na_accuracy``
of the numeric ones (``extra``), all in percent here (the official dict holds fractions).

Predictions file: the official result jsonl (``<task>_results.jsonl``: ``id``, ``dataset``,
``scene_name``, ``question``, ``ground_truth``, ``predicted_answer``, ``question_type``, ``prompt``),
which is also what ``thinkspace test`` writes; the response is read from ``predicted_answer``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from thinkspace.answers import parse_float
from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.eval.vsibench import mean_relative_accuracy
from thinkspace.records import Located, field

#: the question types of the released splits: SI has the first four, MV all five.
CHOICE_TYPES = ("object_rel_direction", "object_rel_distance")
NUMBER_TYPES = ("object_abs_distance", "object_size_estimation", "object_counting")
#: the official lists (``vsi_utils.py``) also hold VSI-Bench's types; scored the same way, noted.
OTHER_CHOICE_TYPES = ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard",
                      "route_planning", "obj_appearance_order")
OTHER_NUMBER_TYPES = ("room_size_estimation",)
#: SPBench-SI 1,009 questions, SPBench-MV 319 (the dataset card; docs/benchmarks_data.md).
SPLIT_SIZES = {"SPBench-SI": 1009, "SPBench-MV": 319}
PROMPT_TYPES = ("thinking", "default")

#: number words in the official dictionary's order: the first one present wins, wherever it is.
_UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_TENS = ("thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_NUMBER_WORDS = ({w: str(v) for v, w in enumerate(_UNITS, 1)} | {w: str(v) for v, w in zip(range(30, 91, 10), _TENS)}
                 | {"zero": "0", "a": "1", "an": "1"})
_WORD_PATTERNS = [(re.compile(rf"\b{w}\b"), d) for w, d in _NUMBER_WORDS.items()]
_DIGITS = re.compile(r"(\d+(\.\d+)?)")
_TAGGED = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_LETTER = re.compile(r"^[A-D]\.?$")


def answer_text(response: str, prompt_type: str = "thinking") -> str:
    """What the official scorer reads of a response: under ``thinking``, the ``<answer>`` content
    (stripped; ``"None"`` when the tag is not closed) if the response has an ``<answer>`` tag."""
    if prompt_type not in PROMPT_TYPES:
        raise ValueError(f"SPBench prompt_type {prompt_type!r}; expected one of {PROMPT_TYPES}")
    if prompt_type == "thinking" and "<answer>" in response:
        match = _TAGGED.search(response)
        return match.group(1).strip() if match else "None"
    return response


def spbench_choice(text: str) -> str:
    """The official multiple-choice reading: ``"Answer:"`` removed, the first space-separated token
    if it is ``A``-``D`` with an optional dot (dot dropped), else the whole text stripped."""
    text = text.replace("Answer:", "")
    if _LETTER.match(text.split(" ")[0].strip()):
        return text.split(" ")[0].strip().rstrip(".").strip()
    return text.strip()


def spbench_number(text: str) -> float | None:
    """The official number reading (``fuzzy_matching_num``, see the module docstring); ``None`` without one."""
    text = text.strip().lower()
    for pattern, digits in _WORD_PATTERNS:
        if pattern.search(text):
            return float(digits)
    match = _DIGITS.search(text)
    return parse_float(match.group(1)) if match else None


def positive_number(value: float | None) -> bool:
    """Whether a numeric ground truth can be scored by relative accuracy: finite and above 0 (0 divides
    by zero; a negative one makes the relative error negative, so every answer would score 1; NaN scores
    nothing)."""
    return value is not None and math.isfinite(value) and value > 0


def score_record(question_type: str, response: str, truth: object, where: str = "",
                 prompt_type: str = "thinking") -> float:
    """One record's score in [0, 1]: exact letter match or Mean Relative Accuracy."""
    text = answer_text(response, prompt_type)
    if question_type in CHOICE_TYPES + OTHER_CHOICE_TYPES:
        return float(spbench_choice(text).lower() == str(truth).lower())
    if question_type in NUMBER_TYPES + OTHER_NUMBER_TYPES:
        gold = parse_float(str(truth))
        if not positive_number(gold):
            raise ValueError(f"{where}: ground_truth {truth!r} of a {question_type} question is not a positive "
                             "number; relative accuracy needs one (a count, a length or a size)")
        return mean_relative_accuracy(spbench_number(text), gold)
    known = ", ".join(CHOICE_TYPES + OTHER_CHOICE_TYPES + NUMBER_TYPES + OTHER_NUMBER_TYPES)
    raise ValueError(f"{where}: unknown SPBench question_type {question_type!r}; expected one of {known}")


def _merged_levels(groups: dict[str, float], counts: dict[str, int]) -> float:
    """The official fallback for a file without ``object_rel_direction``: the mean of VSI-Bench's easy,
    medium and hard entries, removed as they are read; at the first one missing, 0 (levels read
    before it stay removed, later ones stay, as the official ``try: sum([pop, pop, pop])`` does)."""
    values = []
    for level in OTHER_CHOICE_TYPES[:3]:
        if level not in groups:
            return 0.0
        values.append(groups.pop(level))
        counts.pop(level)
    return sum(values) / 3


def score_spbench(records: list[Located], response_field: str | None = None,
                  prompt_type: str = "thinking") -> BenchmarkScore:
    """Per-type, overall, ``mca_accuracy`` and ``na_accuracy`` (percent) of SPBench predictions.

    Args:
        records: (location, record) pairs of an official result file or ``thinkspace test``'s.
        response_field: the response's field (default ``predicted_answer``).
        prompt_type: ``thinking`` (read ``<answer>`` tags; the official default) or ``default``.

    Raises:
        KeyError: a record lacks ``question_type``, ``ground_truth`` or the response (names file and line).
        ValueError: an unknown question type or a numeric ground truth that is not a non-zero number.
    """
    response_field = response_field or "predicted_answer"
    scores: dict[str, list[float]] = defaultdict(list)
    unread = 0
    for where, record in records:
        kind = str(field(record, "question_type", where, "SPBench question type; is this an SPBench file?"))
        truth = field(record, "ground_truth", where, "SPBench gold answer (a letter or a number)")
        response = field(record, response_field, where, "the model's response; choose it with --response-field")
        response = "" if response is None else str(response)
        scores[kind].append(score_record(kind, response, truth, where, prompt_type))
        if kind in NUMBER_TYPES + OTHER_NUMBER_TYPES:
            unread += spbench_number(answer_text(response, prompt_type)) is None
    order = [k for k in CHOICE_TYPES + NUMBER_TYPES + OTHER_CHOICE_TYPES + OTHER_NUMBER_TYPES if k in scores]
    groups = {k: sum(scores[k]) / len(scores[k]) for k in order}
    counts = {k: len(scores[k]) for k in order}
    notes = []
    if "object_rel_direction" not in groups:
        merged = _merged_levels(groups, counts)
        groups = {"object_rel_direction": merged} | groups
        if not merged:
            notes.append("no object_rel_direction records: the official aggregation counts object_rel_direction "
                         "as 0 in the overall (kept)")
    others = [k for k in order if k in OTHER_CHOICE_TYPES + OTHER_NUMBER_TYPES]
    if others:
        notes.append(f"question types not in SPBench (VSI-Bench's, scored by the same rules): {', '.join(others)}")
    if unread:
        notes.append(f"{unread} numeric response(s) without a number, scored 0")
    sizes = ", ".join(f"{k} {v}" for k, v in SPLIT_SIZES.items())
    notes.append(f"{len(records)} records ({sizes} questions); prompt_type {prompt_type}")
    choice = [v for k, v in groups.items() if k in CHOICE_TYPES + OTHER_CHOICE_TYPES]
    number = [v for k, v in groups.items() if k in NUMBER_TYPES + OTHER_NUMBER_TYPES]
    extra = {"mca_accuracy": 100.0 * sum(choice) / len(choice) if choice else 0.0,
             "na_accuracy": 100.0 * sum(number) / len(number) if number else 0.0}
    return BenchmarkScore(
        benchmark="spbench",
        n=len(records),
        overall=100.0 * sum(groups.values()) / len(groups),
        groups={k: 100.0 * v for k, v in groups.items()},
        group_key="by_type",
        counts=counts,
        extra=extra,
        notes=notes,
    )
