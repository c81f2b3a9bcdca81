"""Atomic files: what the sweep, its jobs and its callbacks write (light: no torch import).

JSON (``write_json``) for run state and metrics; CSV (``write_questions``/``read_questions``)
for the per-question answers of an evaluate stage, ``questions_test_<stage>.csv``::

    id,correct,answer,prediction,task
    synthetic-situated-test-0-17,1,B,B,situated
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from thinkspace.data.datasets.synthetic_id import task_of_id
from thinkspace.utils.file_modes import atomic_write

#: the columns of a questions file, in order
QUESTION_COLUMNS = ("id", "correct", "answer", "prediction", "task")


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically: a temporary file in the same directory, then a rename."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically (:func:`~thinkspace.utils.file_modes.atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def questions_path(run_dir: str | Path, stage: str) -> Path:
    """Where the evaluate stage ``stage`` (``test_<name>``) of a run writes its answers."""
    return Path(run_dir) / f"questions_{stage}.csv"


def write_questions(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write one row per question (``id``, ``correct`` 0/1, ``answer``, ``prediction``, ``task``) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QUESTION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "correct": int(bool(row["correct"]))})
    write_text(path, buffer.getvalue())


def read_questions(path: str | Path) -> dict[str, int]:
    """Question id -> correct (0 or 1) of a questions file.

    Raises:
        ValueError: naming the file and line, for a missing column, a ``correct`` other
            than 0 or 1, or a repeated id (pairing by id needs each once).
    """
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("id", "correct") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing}; expected the header {','.join(QUESTION_COLUMNS)}")
        answers: dict[str, int] = {}
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if row["correct"] not in ("0", "1"):
                raise ValueError(f"{where}: 'correct' must be 0 or 1, got {row['correct']!r}")
            if row["id"] in answers:
                raise ValueError(f"{where}: question id {row['id']!r} repeats; each question must appear once")
            answers[row["id"]] = int(row["correct"])
    return answers


def read_tasks(path: str | Path) -> dict[str, str]:
    """Question id -> task (question family) of a questions file.

    The ``task`` column where a row fills it, else the family a synthetic id names
    (``synthetic-<task>-<split>-<seed>-<index>``); a question with neither (a file written
    before both, e.g. ids ``synthetic-test-0-17`` and no column) is left out, so such a file
    gives an empty mapping.
    """
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        tasks = {}
        for row in reader:
            task = row.get("task") or task_of_id(row["id"])
            if task:
                tasks[row["id"]] = task
        return tasks
