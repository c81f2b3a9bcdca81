"""Whether a predictions file holds each question once and all of them: duplicate question ids
are refused (they would be scored twice), and the count scored is set against the count expected
(the benchmark's known size, or the questions of a gold file), with a line naming what is missing.

Known sizes (docs/benchmarks_data.md, "Scoring"): MindCube-Tiny 1,050 questions, SQA3D's test
split 3,519, VSI-Bench 5,130 (its only split), ScanQA's val split 4,675 (ScanQA_v1.0_val.json),
ViewSpatial-Bench 5,712. Ego3D-Bench's size is not checked here (its
dataset is not available offline), so only a gold file gives its expected count. ViewSpatial-Bench's
records carry no id: thinkspace's predictions number them by position in the released
``eval/ViewSpatial-Bench.json`` (``id``, as the official result CSV's ``ID``), and that file as
``--gold`` gives its positions.
"""

from __future__ import annotations

from pathlib import Path

from thinkspace.records import (
    Located,
    read_json,
    read_json_list,
    read_table,
    refuse_duplicate_ids,
)

#: benchmark -> the field holding a record's question id (Ego3D-Bench: thinkspace's own records;
#: upstream's result logs carry none).
ID_FIELDS = {"mindcube": "id", "vsibench": "id", "sqa3d": "question_id", "ego3d": "idx", "scanqa": "question_id",
             "viewspatial": "id", "spbench": "id"}
#: benchmark -> (name of the known set, its number of questions).
KNOWN_SIZES = {"mindcube": ("MindCube-Tiny", 1050), "sqa3d": ("SQA3D's test split", 3519),
               "vsibench": ("VSI-Bench", 5130), "scanqa": ("ScanQA's val split", 4675),
               "viewspatial": ("ViewSpatial-Bench", 5712)}


def question_ids(benchmark: str, records: list[Located]) -> list[str] | None:
    """The question ids of ``records`` in order (``None`` when the records carry none).

    Raises:
        ValueError: an id appears twice, ``"{file}: question id 'x' at line 3 and again at line 7; ..."``.
    """
    key = ID_FIELDS[benchmark]
    located = [(where, str(record[key])) for where, record in records if key in record]
    if not located:
        return None
    refuse_duplicate_ids(located, "question id")
    return [qid for _, qid in located]


def gold_ids(benchmark: str, path: str | Path) -> list[str]:
    """Question ids of a gold file: the benchmark's question file (SQA3D: ``{"questions": [...]}``;
    others: a jsonl, json list or parquet table of records with the id field).

    Raises:
        ValueError: the file holds no such ids, or an id twice (file and positions named).
    """
    path = Path(path)
    if benchmark == "sqa3d" and path.suffix.lower() == ".json" and isinstance(read_json(path), dict):
        rows = read_json_list(path, "questions")
    else:
        rows = read_table(path)
    if benchmark == "viewspatial" and rows and all(ID_FIELDS[benchmark] not in r for _, r in rows):
        return [str(i) for i in range(len(rows))]  # the released file: ids are positions
    ids = question_ids(benchmark, rows)
    if ids is None:
        raise ValueError(f"gold file {path}: no record has a {ID_FIELDS[benchmark]!r} field; expected the "
                         f"benchmark's questions with their ids")
    return ids


def coverage_note(benchmark: str, ids: list[str] | None, n: int, gold: list[str] | None = None) -> str:
    """One line: the count scored, the count expected and, when short, how many and which are missing.

    ``ids``: the scored records' question ids (``None`` if they carry none); ``n``: records scored;
    ``gold``: the gold file's ids, which take precedence over the benchmark's known size.
    """
    if gold is not None:
        if ids is None:
            return f"scored {n} records; the gold file has {len(gold)} questions (records carry no ids to match)"
        scored = set(ids)
        missing = [g for g in gold if g not in scored]
        extra = len(set(ids) - set(gold))
        line = f"scored {n} records of the gold file's {len(gold)} questions"
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            line += f"; MISSING {len(missing)}: {shown}"
        if extra:
            line += f"; {extra} record(s) not in the gold file"
        return line
    if benchmark not in KNOWN_SIZES:
        return f"scored {n} records (no known size for {benchmark}: give --gold FILE to check for missing ones)"
    name, size = KNOWN_SIZES[benchmark]
    if n < size:
        return (f"scored {n} records; {name} has {size}: MISSING {size - n} (if this file is {name}; "
                f"--gold FILE names them)")
    if n == size:
        return f"scored {n} of {name}'s {size} questions"
    return f"scored {n} records (more than {name}'s {size}: another split or set)"
