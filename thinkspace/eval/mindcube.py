"""MindCube scoring, equivalent to MindCube's basic evaluator (``src/evaluation``).

Per record: the setting comes from the ``id`` (the first of "around", "rotation",
"translation", "among" found in it, lower-cased; else "other"); the response's letter
comes from :func:`~thinkspace.answers.mindcube_choice`; it is correct when it
equals ``gt_answer`` exactly. Overall accuracy counts every setting but translation
(which is still reported on its own). Records with an empty ``gt_answer`` are skipped,
as the official code does, and counted in a note.

Predictions file: MindCube's own records (``id``, ``gt_answer``, ...) plus the model's
response, by default in ``cogmap_gen_answer`` when present, else ``answer`` (the
official lookup); ``--response-field`` names another field.
"""

from __future__ import annotations

from collections import Counter

from thinkspace.answers import mindcube_choice
from thinkspace.records import Located, field
from thinkspace.eval.benchmark_score import BenchmarkScore

SETTINGS = ("around", "rotation", "translation", "among", "other")
EXCLUDED_FROM_OVERALL = ("translation",)
LETTERS = ("A", "B", "C", "D", "E")


def setting_from_id(sample_id: str) -> str:
    """``"around"``, ``"rotation"``, ``"translation"``, ``"among"`` or ``"other"``,
    tested in that order as substrings of the lower-cased id."""
    lowered = str(sample_id or "").lower()
    for setting in SETTINGS[:-1]:
        if setting in lowered:
            return setting
    return "other"


def response_of(record: dict, where: str, response_field: str | None) -> str:
    """The model's response text of one record (``response_field`` or the official default)."""
    if response_field is None:
        response_field = "cogmap_gen_answer" if "cogmap_gen_answer" in record else "answer"
    value = field(record, response_field, where, "the model's response; choose it with --response-field")
    return "" if value is None else str(value)


def score_mindcube(records: list[Located], response_field: str | None = None) -> BenchmarkScore:
    """Accuracy per setting and overall (percent) of MindCube predictions.

    Raises:
        KeyError: a record lacks ``id``, ``gt_answer`` or the response field (names file and line).
        ValueError: a gold answer is not one of A-E, e.g. a VSI-Bench or SQA3D file.
    """
    total: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    skipped = unparsed = 0
    for where, record in records:
        gold = field(record, "gt_answer", where, "MindCube's gold option letter; is this a MindCube file?")
        sample_id = field(record, "id", where, "MindCube question id")
        if not gold:
            skipped += 1
            continue
        if gold not in LETTERS:
            raise ValueError(f"{where}: gt_answer {gold!r} of {sample_id!r} is not an option letter A-E")
        setting = setting_from_id(sample_id)
        letter = mindcube_choice(response_of(record, where, response_field))
        unparsed += letter is None
        total[setting] += 1
        correct[setting] += letter == gold
    kept = [s for s in SETTINGS if total[s]]
    n_overall = sum(total[s] for s in kept if s not in EXCLUDED_FROM_OVERALL)
    c_overall = sum(correct[s] for s in kept if s not in EXCLUDED_FROM_OVERALL)
    notes = []
    if skipped:
        notes.append(f"{skipped} record(s) with an empty gt_answer skipped (as the official evaluator does)")
    if unparsed:
        notes.append(f"{unparsed} response(s) with no extractable letter, scored wrong")
    if total["translation"]:
        notes.append(f"{total['translation']} translation record(s) excluded from overall")
    return BenchmarkScore(
        benchmark="mindcube",
        n=sum(total.values()),
        overall=100.0 * c_overall / n_overall if n_overall else 0.0,
        groups={s: 100.0 * correct[s] / total[s] for s in kept},
        group_key="by_setting",
        counts={s: total[s] for s in kept},
        notes=notes,
    )
