"""Runs that answer every question with one letter: flagged in ``results.md``.

A model that has collapsed onto one option scores the share of that letter among the gold answers
(e.g. ``0.281 ± 0.000`` over seeds that all picked "A"): a number that looks like a result and is
not one. Each finished run's per-question files (``questions_test_<stage>.csv``) are read; a run
whose predictions all read the same option letter (thinkspace's rule, as the accuracy reads them)
over at least two questions is named with its letter and the stage.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from thinkspace.answers import choice

#: fewer questions than this say nothing about collapse
MIN_QUESTIONS = 2


def constant_letter(path: str | Path) -> tuple[str, int] | None:
    """``(letter, questions)`` when every prediction of the questions file reads one option letter
    (``"no letter"`` as the letter when none reads any), else ``None``."""
    with Path(path).open(newline="") as handle:
        letters = [choice(row.get("prediction") or "") for row in csv.DictReader(handle)]
    if len(letters) < MIN_QUESTIONS or len(set(letters)) != 1:
        return None
    return letters[0] or "no letter", len(letters)


def constant_answer_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per finished run and evaluate stage whose answers are all one letter (rows as
    ``results.collect`` gives them)."""
    notes = []
    for row in rows:
        if row["state"] != "done":
            continue
        for path in sorted(Path(row["dir"]).glob("questions_test_*.csv")):
            found = constant_letter(path)
            if found is not None:
                stage = path.stem.removeprefix("questions_test_")
                letter, count = found
                notes.append(f"run {row['name']} ({row['group']}), stage `{stage}`: answered {letter!r} to all "
                             f"{count} questions")
    return notes


def constant_answer_section(rows: list[dict[str, Any]]) -> str:
    """The ``results.md`` section naming constant-answer runs, or ``""`` when there are none."""
    notes = constant_answer_notes(rows)
    if not notes:
        return ""
    return ("\n### Constant answers\n\nThese runs gave one option letter to every question: their accuracy is "
            "that letter's share among the gold answers, not evidence of what the setting learned (an interval "
            "of ± 0.000 over seeds that all collapsed onto the same letter says the same).\n\n"
            + "\n".join(f"- {note}" for note in notes) + "\n")
