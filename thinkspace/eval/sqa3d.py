"""SQA3D scoring: answer exact match and situation localization accuracy.

Localization follows SQA3D's ``utils/localization_metric.py``: position error is the
distance in the xy plane (metres); yaw is the z component of each quaternion's rotation
vector (angle in [0, pi] about its axis, so a pure turn about z gives its yaw in
(-pi, pi]), and the yaw error is ``min(|a - b|, 2 pi - |a - b|)`` in degrees; with
several predictions (at most 3) for one record the closest one counts; thresholds are
strict (< 0.5 m, < 1.0 m, < 15 deg, < 30 deg). It is scored once per situation, as the
official localization file lists them (:mod:`thinkspace.eval.sqa3d_localization`).

Exact match compares :func:`~thinkspace.answers.sqa3d_normalise` of the response
with that of the first reference answer (``answers[0].answer``, SQA3D's own choice).
SQA3D's LLM script also counts a response contained in, or sharing a word with, the
reference; that lenient variant is not the exact-match number papers report.

Predictions file (jsonl, one record per question): SQA3D's question fields
(``question_id``, ``scene_id``, ``situation``, ``question``) and annotation fields
(``answers``, ``position`` ``{x, y, z}``, ``rotation`` ``{_x, _y, _z, _w}``) plus the
model's response, by default in ``answer``; optionally ``agent_pos`` (one ``{x, y, z}``
or ``[x, y, z]``, or a list of up to 3) and ``agent_rot`` (quaternions x, y, z, w, same
forms) for localization, in SQA3D's frame (what ``thinkspace test`` writes).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from thinkspace.answers import sqa3d_normalise
from thinkspace.records import Located, field
from thinkspace.eval.benchmark_score import BenchmarkScore

QUESTION_KINDS = ("what", "is", "how", "can", "which")


def question_kind(question: str) -> str:
    """SQA3D's breakdown: the question's first word if one of what/is/how/can/which, else "others"."""
    words = question.split()
    first = words[0].lower() if words else ""
    return first if first in QUESTION_KINDS else "others"


def score_sqa3d(records: list[Located], response_field: str | None = None,
                localization: str | Path | None = None) -> BenchmarkScore:
    """Exact match per question kind (first word) and overall, plus localization accuracies
    per situation (percent) when records carry ``agent_pos`` and ``agent_rot``.

    Args:
        records: located prediction records.
        response_field: the field with the response (default ``answer``).
        localization: SQA3D's ``v1_balanced_localization_{split}_scannetv2.json``, the gold
            situations (default: the records' own ``position`` / ``rotation``).

    Raises:
        KeyError: a record lacks ``answers`` or the response (names file and line).
        ValueError: a record carries more than 3 localization predictions.
    """
    from thinkspace.eval.sqa3d_localization import localization_by_situation

    response_field = response_field or "answer"
    hits: dict[str, list[bool]] = defaultdict(list)
    for where, record in records:
        answers = field(record, "answers", where, "SQA3D reference answers; is this an SQA3D file?")
        if not isinstance(answers, list) or not answers or "answer" not in answers[0]:
            raise ValueError(f"{where}: answers must be a non-empty list of {{'answer': ...}}, got {answers!r}")
        response = field(record, response_field, where, "the model's response; choose it with --response-field")
        match = sqa3d_normalise(str(response or "")) == sqa3d_normalise(str(answers[0]["answer"]))
        hits[question_kind(str(record.get("question", "")))].append(match)
    n = sum(len(v) for v in hits.values())
    extra, notes = localization_by_situation(records, localization)
    return BenchmarkScore(
        benchmark="sqa3d",
        n=n,
        overall=100.0 * sum(sum(v) for v in hits.values()) / n if n else 0.0,
        groups={k: 100.0 * sum(hits[k]) / len(hits[k]) for k in (*QUESTION_KINDS, "others") if hits[k]},
        group_key="by_setting",
        counts={k: len(hits[k]) for k in (*QUESTION_KINDS, "others") if hits[k]},
        extra=extra,
        notes=notes,
    )
