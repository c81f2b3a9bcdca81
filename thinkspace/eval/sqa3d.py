"""SQA3D scoring: answer exact match and situation localization accuracy.

Localization follows SQA3D's ``utils/localization_metric.py``: position error is the
distance in the xy plane (metres); yaw is the z component of each quaternion's rotation
vector (angle in [0, pi] about its axis, so a pure turn about z gives its yaw in
(-pi, pi]), and the yaw error is ``min(|a - b|, 2 pi - |a - b|)`` in degrees; with
several predictions (at most 3) for one record the closest one counts; thresholds are
strict (< 0.5 m, < 1.0 m, < 15 deg, < 30 deg). It is scored once per situation, as the
official localization file lists them (:mod:`thinkspace.eval.sqa3d_localization`).

Exact match (EM) compares :func:`~thinkspace.answers.sqa3d_normalise` of the response
with that of the first reference answer (``answers[0].answer``, SQA3D's own choice).
EM-R, the refined exact match LEO and MSR3D report, is a second column: LEO's
``answer_match`` (:func:`~thinkspace.answers.sqa3d_refined_match`) over all reference answers,
which also counts a response contained in the reference or containing it, spaces removed
(every released SQA3D record has one reference, so EM over ``answers[0]`` equals LEO's EM).

Question types: MSR3D's and LEO's ``get_sqa_question_type`` (``data/data_utils.py``) by
default, a prefix rule on the question without its leading spaces (``"What's ..."`` is a
"what" question); ``question_types="first_word"`` is SQA3D's ClipBERT conversion
(``utils/sqa_data_2_ClipBERT.py``: the first space-separated word, so ``"What's"`` is "others").
On SQA3D's 3,519 released test questions the two differ on three "What's ..." questions.

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

from thinkspace.answers import sqa3d_normalise, sqa3d_refined_match
from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.records import Located, field

QUESTION_KINDS = ("what", "is", "how", "can", "which")
#: how a question's type is read: ``prefix`` (MSR3D / LEO, default) or ``first_word`` (SQA3D's ClipBERT)
QUESTION_TYPE_RULES = ("prefix", "first_word")


def question_kind(question: str, rule: str = "prefix") -> str:
    """A question's SQA3D type: one of what/is/how/can/which, else "others".

    ``prefix``: the question without leading spaces starts with the type's word, any case, checked
    in the order what, is, how, can, which (MSR3D's ``get_sqa_question_type``; "What's" -> what,
    also "Isn't" -> is). ``first_word``: the text before the first space, lower-cased, is the word
    (SQA3D's ClipBERT conversion; "What's" -> others).
    """
    if rule == "prefix":
        text = question.lstrip()
        return next((kind for kind in QUESTION_KINDS if text[:len(kind)].lower() == kind), "others")
    if rule == "first_word":
        first = question.split(" ")[0].lower()
        return first if first in QUESTION_KINDS else "others"
    raise ValueError(f"question_types must be one of {QUESTION_TYPE_RULES}, got {rule!r}")


def score_sqa3d(records: list[Located], response_field: str | None = None,
                localization: str | Path | None = None, question_types: str = "prefix") -> BenchmarkScore:
    """Exact match per question type and overall, EM-R in the column ``em_refined``, plus
    localization accuracies per situation (percent) when records carry ``agent_pos`` and ``agent_rot``.

    Args:
        records: located prediction records.
        response_field: the field with the response (default ``answer``).
        localization: SQA3D's ``v1_balanced_localization_{split}_scannetv2.json``, the gold
            situations (default: the records' own ``position`` / ``rotation``).
        question_types: ``prefix`` (MSR3D / LEO, default) or ``first_word`` (SQA3D's ClipBERT).

    Raises:
        KeyError: a record lacks ``answers`` or the response (names file and line).
        ValueError: a record carries more than 3 localization predictions, or an unknown
            ``question_types``.
    """
    from thinkspace.eval.sqa3d_localization import localization_by_situation

    if question_types not in QUESTION_TYPE_RULES:
        raise ValueError(f"question_types must be one of {QUESTION_TYPE_RULES}, got {question_types!r}")
    response_field = response_field or "answer"
    hits: dict[str, list[bool]] = defaultdict(list)
    refined: dict[str, list[bool]] = defaultdict(list)
    for where, record in records:
        answers = field(record, "answers", where, "SQA3D reference answers; is this an SQA3D file?")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, dict) and "answer" in a
                                                                   for a in answers):
            raise ValueError(f"{where}: answers must be a non-empty list of {{'answer': ...}}, got {answers!r}")
        response = field(record, response_field, where, "the model's response; choose it with --response-field")
        match = sqa3d_normalise(str(response or "")) == sqa3d_normalise(str(answers[0]["answer"]))
        kind = question_kind(str(record.get("question", "")), question_types)
        hits[kind].append(match)
        refined[kind].append(sqa3d_refined_match(str(response or ""), [str(a["answer"]) for a in answers])[1])
    n = sum(len(v) for v in hits.values())
    kinds = [k for k in (*QUESTION_KINDS, "others") if hits[k]]
    extra, notes = localization_by_situation(records, localization)
    return BenchmarkScore(
        benchmark="sqa3d",
        n=n,
        overall=100.0 * sum(sum(v) for v in hits.values()) / n if n else 0.0,
        groups={k: 100.0 * sum(hits[k]) / len(hits[k]) for k in kinds},
        group_key="by_setting",
        counts={k: len(hits[k]) for k in kinds},
        columns={"em_refined": {**{k: 100.0 * sum(refined[k]) / len(refined[k]) for k in kinds},
                                "overall": 100.0 * sum(sum(v) for v in refined.values()) / n if n else 0.0}},
        extra=extra,
        notes=notes,
    )
