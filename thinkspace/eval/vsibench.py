"""VSI-Bench scoring, equivalent to the official lmms-eval task (``vsibench/utils.py``).

Per record, the prediction is read as :func:`~thinkspace.answers.vsibench_token`
(text before the first space, trailing dots removed). Multiple-choice types score 1
when it equals ``ground_truth`` ignoring case. Numeric types score the Mean Relative
Accuracy: the share of the ten thresholds theta = 0.50, 0.55, ..., 0.95 with
``|pred - gt| / gt <= 1 - theta``; a prediction that is not a number scores 0.
Per question type the mean is taken; when ``object_rel_direction_easy`` is present the
three ``object_rel_direction_*`` levels are averaged into one ``object_rel_direction``
entry (a file with easy but without medium or hard is an error, as it is for the
official code); without easy the levels stay separate entries (official behaviour,
noted in the output). Overall is the mean of the entries, all in percent. This is the
official code as of 2025-07-02 (the 2024 release always added the merged entry,
counting missing levels as 0).

Predictions file: VSI-Bench's records (``id``, ``question_type``, ``ground_truth``,
...) plus the model's response, by default in ``prediction``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from thinkspace.answers import parse_float, vsibench_token
from thinkspace.records import Located, field
from thinkspace.eval.benchmark_score import BenchmarkScore

CHOICE_TYPES = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
NUMBER_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")
DIRECTION_LEVELS = CHOICE_TYPES[:3]
#: the ten thresholds theta of Mean Relative Accuracy.
THRESHOLDS = np.linspace(0.50, 0.95, 10)


def mean_relative_accuracy(prediction: float | None, truth: float) -> float:
    """Share (0-1) of thresholds theta in 0.50..0.95 with ``|prediction - truth| / truth <= 1 - theta``.

    ``None`` (an unparseable prediction), NaN and infinities score 0. ``truth`` must be
    non-zero: the relative error is undefined at 0.
    """
    if truth == 0:
        raise ZeroDivisionError("mean relative accuracy is undefined for a ground truth of 0")
    if prediction is None:
        return 0.0
    relative = abs(prediction - truth) / truth
    return float(np.mean(relative <= 1 - THRESHOLDS))


def score_record(question_type: str, response: str, truth: object, where: str = "") -> float:
    """One record's score in [0, 1]: exact match for choice types, MRA for numeric types."""
    token = vsibench_token(response)
    if question_type in CHOICE_TYPES:
        return float(token.lower() == str(truth).lower())
    if question_type in NUMBER_TYPES:
        gold = parse_float(str(truth))
        if gold is None:
            raise ValueError(f"{where}: ground_truth {truth!r} of a {question_type} question is not a number")
        if gold == 0:
            raise ValueError(f"{where}: ground_truth 0 of a {question_type} question: relative accuracy undefined")
        return mean_relative_accuracy(parse_float(token), gold)
    known = ", ".join(CHOICE_TYPES + NUMBER_TYPES)
    raise ValueError(f"{where}: unknown VSI-Bench question_type {question_type!r}; expected one of {known}")


def score_vsibench(records: list[Located], response_field: str | None = None) -> BenchmarkScore:
    """Per-type and overall scores (percent) of VSI-Bench predictions.

    Raises:
        KeyError: a record lacks ``question_type``, ``ground_truth`` or the response (names file and line).
        ValueError: an unknown question type (e.g. a MindCube file) or a non-numeric numeric truth.
    """
    response_field = response_field or "prediction"
    scores: dict[str, list[float]] = defaultdict(list)
    unparsed = 0
    for where, record in records:
        kind = field(record, "question_type", where, "VSI-Bench question type; is this a VSI-Bench file?")
        truth = field(record, "ground_truth", where, "VSI-Bench gold answer")
        response = field(record, response_field, where, "the model's response; choose it with --response-field")
        response = "" if response is None else str(response)
        if kind in NUMBER_TYPES and parse_float(vsibench_token(response)) is None:
            unparsed += 1
        scores[kind].append(score_record(kind, response, truth, where))
    by_type = {k: float(np.mean(scores[k])) for k in CHOICE_TYPES + NUMBER_TYPES if k in scores}
    counts = {k: len(scores[k]) for k in by_type}
    notes = []
    present = [k for k in DIRECTION_LEVELS if k in by_type]
    if DIRECTION_LEVELS[0] in by_type:
        if len(present) < 3:
            missing = ", ".join(k for k in DIRECTION_LEVELS if k not in present)
            raise ValueError(f"{records[0][0].rsplit(':', 1)[0]}: object_rel_direction_easy records but no "
                             f"{missing} records; the official aggregation cannot merge the levels")
        by_type["object_rel_direction"] = sum(by_type.pop(k) for k in DIRECTION_LEVELS) / 3.0
        counts["object_rel_direction"] = sum(counts.pop(k) for k in DIRECTION_LEVELS)
    elif present:
        notes.append(f"no object_rel_direction_easy records: {', '.join(present)} kept as separate types "
                     "(official aggregation)")
    if unparsed:
        notes.append(f"{unparsed} numeric prediction(s) not a number, scored 0")
    overall = sum(by_type.values()) / len(by_type)
    return BenchmarkScore(
        benchmark="vsibench",
        n=len(records),
        overall=100.0 * overall,
        groups={k: 100.0 * v for k, v in by_type.items()},
        group_key="by_type",
        counts=counts,
        notes=notes,
    )
