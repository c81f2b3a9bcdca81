"""Ego3D-Bench scoring, equivalent to the official ``utils/eval.py`` (fanyunfeng-bit/EGO3D-BENCH @ 1c6342d).

Ten categories; two are numeric (:data:`NUMBER_CATEGORIES`, decided by the category's name
as upstream's runner decides it), the other eight multiple choice.

- Multiple choice: the text between the first ``<answer>`` and the first ``</answer>``
  (upstream slices ``text[start + 8:end]``, so with an opening tag and no closing one the
  last character is cut off), else the whole text; every literal ``/n`` removed, stripped,
  lower-cased; correct when it equals the lower-cased gold. Accuracy per category.
- Numeric: the first match of ``[-+]?\\d*\\.?\\d+`` in the whole text; rows without a
  number, or whose number is 0, are dropped (upstream's ``if pred:``); predictions are
  capped at 100 (never floored); RMSE in metres over the rows kept, per category.

Overall (thinkspace's definition; upstream prints no overall): the mean of the
multiple-choice categories' accuracies present, in percent. 3DThinker reports one
Ego3D-Bench number; the mean of the 8 accuracies is the likely reading (not stated there).

Records: the official result files' fields ``Question``, ``Question_Type``, ``Pred``,
``Processed_Pred``, ``GT``; the response read is ``Processed_Pred`` (what upstream scores)
unless ``response_field`` names another (``Pred``: the raw response). The category is the
record's ``category`` field, which :func:`read_ego3d_results` fills in from the file name
(``<category>.jsonl`` or ``<category>-results.jsonl``, as the released logs are named).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from thinkspace.eval.benchmark_score import BenchmarkScore
from thinkspace.records import Located, field, read_jsonl
from thinkspace.utils.file_modes import atomic_write

CHOICE_CATEGORIES = (
    "Ego_Centric_Absolute_Distance_MultiChoice",
    "Ego_Centric_Motion_Reasoning",
    "Ego_Centric_Relative_Distance",
    "Localization",
    "Object_Centric_Absolute_Distance_MultiChoice",
    "Object_Centric_Motion_Reasoning",
    "Object_Centric_Relative_Distance",
    "Travel_Time",
)
NUMBER_CATEGORIES = ("Ego_Centric_Absolute_Distance", "Object_Centric_Absolute_Distance")
CATEGORIES = CHOICE_CATEGORIES + NUMBER_CATEGORIES
#: upstream's runner asks "(yes or no)" in these three letter-answer categories (docs/parity.md).
YES_NO_CATEGORIES = ("Ego_Centric_Relative_Distance", "Ego_Centric_Motion_Reasoning", "Object_Centric_Motion_Reasoning")
#: predictions above this many metres count as this many (upstream's ``min(pred, 100)``).
DISTANCE_CAP = 100.0
NUMBER = re.compile(r"[-+]?\d*\.?\d+")
OPEN, CLOSE = "<answer>", "</answer>"
RESULTS_SUFFIX = "-results"
#: the fields of upstream's result rows, in its order.
RESULT_FIELDS = ("Question", "Question_Type", "Pred", "Processed_Pred", "GT")


def choice_text(response: str) -> str:
    """The answer text upstream compares to the gold letter (already lower-cased).

    Between ``<answer>`` and ``</answer>`` with upstream's exact slicing (``find`` of each
    tag, so a missing closing tag cuts the last character), else the whole response;
    literal ``/n`` (not newlines) removed, whitespace stripped.
    """
    start, end = response.find(OPEN), response.find(CLOSE)
    inner = response[start + len(OPEN):end] if start != -1 else response
    return inner.replace("/n", "").strip().lower()


def first_number(response: str) -> float | None:
    """The first number in ``response`` (``[-+]?\\d*\\.?\\d+``), or ``None`` without one."""
    match = NUMBER.search(response)
    return float(match.group()) if match else None


def processed_prediction(response: str) -> str:
    """``Processed_Pred`` as upstream's runner writes it: after the last ``<answer>``, before
    the next ``</answer>``, newlines removed, stripped."""
    return response.split(OPEN)[-1].split(CLOSE)[0].replace("\n", "").strip()


def category_of_file(path: str | Path) -> str:
    """The category a result file's name gives: its name up to the first dot, less ``-results``."""
    stem = Path(path).name.split(".")[0]
    return stem.removesuffix(RESULTS_SUFFIX)


def read_ego3d_results(path: str | Path) -> list[Located]:
    """Records of one result file, or of every ``*.jsonl`` in a folder (sorted by name).

    A record without a ``category`` gets the file name's (``Localization-results.jsonl`` ->
    ``Localization``); one with a ``category`` keeps it (``thinkspace test`` writes one file
    for all categories).

    Raises:
        FileNotFoundError: no such file or folder, or a folder without ``.jsonl`` files.
        ValueError: a record has no ``category`` and the file name is not a category.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(f"{path}: no .jsonl result files in this folder; expected <category>.jsonl "
                                    f"or <category>-results.jsonl files")
    else:
        files = [path]
    out: list[Located] = []
    for file in files:
        named = category_of_file(file)
        for where, record in read_jsonl(file):
            if "category" not in record:
                if named not in CATEGORIES:
                    raise ValueError(f"{where}: no 'category' field and the file name {file.name!r} names no "
                                     f"Ego3D-Bench category; expected <category>.jsonl or <category>-results.jsonl "
                                     f"with category one of {', '.join(CATEGORIES)}")
                record = {**record, "category": named}
            out.append((where, record))
    return out


def write_category_files(records: list[Located], directory: str | Path) -> list[Path]:
    """Write ``<category>.jsonl`` per category under ``directory`` (upstream's layout, which its
    ``utils/eval.py`` reads): the rows' :data:`RESULT_FIELDS` only, in the records' order.

    Raises:
        KeyError: a record lacks ``category`` or one of the result fields (names file and line).
    """
    rows: dict[str, list[str]] = defaultdict(list)
    for where, record in records:
        category = field(record, "category", where, "Ego3D-Bench category")
        row = {key: field(record, key, where, "a field of upstream's result rows") for key in RESULT_FIELDS}
        rows[str(category)].append(json.dumps(row) + "\n")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for category, lines in sorted(rows.items()):
        path = directory / f"{category}.jsonl"
        with atomic_write(path) as tmp:  # upstream's eval.py never reads half a file
            tmp.write_text("".join(lines))
        written.append(path)
    return written


def rmse(truths: list[float], predictions: list[float]) -> float:
    """Root mean squared error (metres) of paired lists; needs at least one pair."""
    diff = np.asarray(truths, dtype=np.float64) - np.asarray(predictions, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def score_ego3d(records: list[Located], response_field: str | None = None) -> BenchmarkScore:
    """Accuracy (percent) per multiple-choice category, RMSE (metres) per numeric one, overall.

    ``groups`` holds the accuracies, ``extra`` the RMSEs under ``<category>_rmse_m``; a numeric
    category with no row kept has no RMSE (upstream's ``mean_squared_error`` raises) and a note.

    Raises:
        KeyError: a record lacks ``category``, ``GT`` or the response field (names file and line).
        ValueError: an unknown category, a multiple-choice ``GT`` that is not text, or a numeric
            ``GT`` that is not a number.
    """
    response_field = response_field or "Processed_Pred"
    correct: dict[str, list[bool]] = defaultdict(list)
    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    numeric_rows: dict[str, int] = defaultdict(int)
    for where, record in records:
        category = field(record, "category", where, "Ego3D-Bench category; read result files with "
                                                    "read_ego3d_results, which takes it from the file name")
        gold = field(record, "GT", where, "Ego3D-Bench gold answer; is this an Ego3D-Bench result file?")
        response = field(record, response_field, where, "the model's response; choose it with --response-field")
        response = "" if response is None else str(response)
        if category in CHOICE_CATEGORIES:
            if not isinstance(gold, str):
                raise ValueError(f"{where}: GT {gold!r} of a {category} row is not text; expected an option letter")
            correct[category].append(choice_text(response) == gold.lower())
        elif category in NUMBER_CATEGORIES:
            numeric_rows[category] += 1
            try:
                truth = float(gold)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: GT {gold!r} of a {category} row is not a number") from None
            prediction = first_number(response)
            if prediction:  # upstream's `if pred:` drops None and 0 alike
                pairs[category].append((truth, min(prediction, DISTANCE_CAP)))
        else:
            raise ValueError(f"{where}: unknown Ego3D-Bench category {category!r}; expected one of "
                             f"{', '.join(CATEGORIES)}")
    groups = {c: 100.0 * sum(correct[c]) / len(correct[c]) for c in CHOICE_CATEGORIES if correct[c]}
    counts = {c: len(correct[c]) for c in groups}
    extra, notes = {}, []
    for category in NUMBER_CATEGORIES:
        if not numeric_rows[category]:
            continue
        kept = pairs[category]
        notes.append(f"{category}: RMSE over {len(kept)} of {numeric_rows[category]} rows (rows without a "
                     f"number or with 0 dropped, as upstream)")
        if kept:
            extra[f"{category}_rmse_m"] = rmse([t for t, _ in kept], [p for _, p in kept])
        else:
            notes.append(f"{category}: no row kept, RMSE undefined")
    if groups:
        overall = sum(groups.values()) / len(groups)
        if len(groups) < len(CHOICE_CATEGORIES):
            notes.append(f"overall is the mean of {len(groups)} of the {len(CHOICE_CATEGORIES)} multiple-choice "
                         "categories (the others have no rows)")
    else:
        overall = math.nan
        notes.append("no multiple-choice rows: overall undefined (NaN)")
    return BenchmarkScore(benchmark="ego3d", n=len(records), overall=overall, groups=groups,
                          group_key="by_category", counts=counts, extra=extra, notes=notes)
