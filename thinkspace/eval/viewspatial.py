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
response, by default in ``prediction`` (what ``thinkspace test`` writes), or the official script's own
result CSV (``result/<model>/result_<model>.csv``: ``ID``, ``Question``, ``Question_Type``, ``Predicted
Answer``, ``Correct Answer``, ``IsCorrect``), read by :func:`read_viewspatial_predictions`. The CSV
lacks the records whose response raised in the official script (a ``null`` or non-text response),
which its printed totals count as wrong: scored from the CSV they are left out, and a row whose
``IsCorrect`` disagrees with this rule is named in an error.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.records import Located, field, read_table

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


#: the official result CSV's columns -> thinkspace's record fields.
CSV_COLUMNS = {"ID": "id", "Question_Type": "question_type", "Correct Answer": "answer",
               "Predicted Answer": "prediction", "Question": "question", "IsCorrect": "is_correct"}


def read_viewspatial_predictions(path: str | Path) -> list[Located]:
    """Records of a predictions file: the official result CSV (by its ``.csv`` suffix; locations name
    the line each row starts on), else a jsonl / json list / parquet table.

    Raises:
        ValueError: a CSV without the official columns, or a row whose ``IsCorrect`` is not what the
            official rule gives for its response (names file and line).
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return read_table(path)
    if not path.is_file():
        raise FileNotFoundError(f"file {path} not found")
    out: list[Located] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not the official result CSV: no column(s) {missing}; expected "
                             f"{list(CSV_COLUMNS)} (evaluate.py's header)")
        start = 2
        for row in reader:
            where = f"{path}:{start}"
            start = reader.line_num + 1
            record = {CSV_COLUMNS[c]: row[c] for c in CSV_COLUMNS}
            ours = viewspatial_correct(record["prediction"], record["answer"], where)
            if str(ours) != record["is_correct"]:
                raise ValueError(f"{where}: IsCorrect {record['is_correct']!r} but the official rule gives {ours} "
                                 f"for the response's last line {last_line(record['prediction'])!r}")
            out.append((where, record))
    return out


def csv_gaps(records: list[Located]) -> list[int]:
    """IDs below the largest one missing from records read from the official result CSV (``[]`` otherwise)."""
    if not records or not all("is_correct" in r for _, r in records):
        return []
    ids = {int(r["id"]) for _, r in records if str(r["id"]).isdigit()}
    return sorted(set(range(max(ids, default=-1) + 1)) - ids)


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
    gaps = csv_gaps(records)
    if gaps:
        shown = ", ".join(map(str, gaps[:5])) + (", ..." if len(gaps) > 5 else "")
        notes.append(f"{len(gaps)} ID(s) absent from the official result CSV ({shown}): responses that raised "
                     "there; its printed totals count them wrong, this score leaves them out")
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
