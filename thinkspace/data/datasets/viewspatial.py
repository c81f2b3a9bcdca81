"""``ViewSpatialBench``: ViewSpatial-Bench's perspective-taking questions as ``SpatialSample``s.

Reads the released ``eval/ViewSpatial-Bench.json`` (ZJU-REAL/ViewSpatial-Bench; a JSON list of
5,712 records; a jsonl or parquet export of it, or a predictions file, read the same) with fields
``question_type`` (five types, :data:`~thinkspace.eval.viewspatial.QUESTION_TYPES`), ``image_path``
(a list of paths relative to the repository root, ``ViewSpatial-Bench/scannetv2_val/<scene>/
original_images/<n>.jpg`` or ``ViewSpatial-Bench/val2017/<coco>.jpg``: 1 image for most questions,
up to 32 ScanNet frames for scene simulation), ``question``, ``choices`` (``"A. right\\nB. ..."``, two
to four options) and ``answer`` (``"A. right"``). Records carry no id: a sample's id is its position
in the file (``"0"``, ``"1"``, ...; the official result CSV's ``ID``), or the record's own ``id``
when it has one (a thinkspace predictions file).

Prompt: the official ``evaluate.py`` text, ``question + choices + "\\nReply only to the corresponding
option.\\nAnswer:"`` (the question and the first option are joined with nothing between them, as
upstream does). Frames: the listed images in order, unordered views (``timestamps=None``), as stored
or resized to ``image_size`` (upstream's Qwen2.5-VL branch: 420 x 280; docs/parity.md). No camera
geometry (``geometry=None``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from thinkspace.data.datasets.image_set_file import ImageSetFile
from thinkspace.data.schema import SpatialSample
from thinkspace.eval.viewspatial import (
    PROMPT_SUFFIX,
    QUESTION_TYPES,
    viewspatial_option,
)
from thinkspace.records import field, read_table

_CHOICE_LETTER = re.compile(r"^([A-D])\.", re.MULTILINE)


def viewspatial_prompt(question: str, choices: str) -> str:
    """The official prompt: ``question + choices + PROMPT_SUFFIX`` (no separator after the question)."""
    return question + choices + PROMPT_SUFFIX


class ViewSpatialBench(ImageSetFile):
    """ViewSpatial-Bench questions from the released json.

    Args:
        path: ``eval/ViewSpatial-Bench.json`` (or a jsonl / parquet export).
        image_root: directory the ``image_path`` entries are relative to (default: the directory above
            the json's, the repository root in the released layout, where the Hugging Face images go).
        image_size: resize every view to (width, height) pixels with LANCZOS; ``None``: as stored.
        question_types: keep only these types (``None``: all).
        skip_missing: drop questions with missing images (count in ``skipped``).
        limit: keep the first ``limit`` questions.
    """

    benchmark = "viewspatial"

    def __init__(
        self,
        path: str,
        image_root: str | None = None,
        image_size: list[int] | None = None,
        question_types: list[str] | None = None,
        skip_missing: bool = False,
        limit: int | None = None,
    ) -> None:
        root = image_root if image_root is not None else str(Path(path).parent.parent)
        super().__init__(path, root, "", image_size, False, skip_missing, limit)
        unknown = [t for t in question_types or [] if t not in QUESTION_TYPES]
        if unknown:
            raise ValueError(f"ViewSpatialBench.question_types: unknown {unknown}; expected some of {list(QUESTION_TYPES)}")
        self.question_types = question_types

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for position, (where, record) in enumerate(read_table(self.path)):
            sample_id = str(record.get("id", position))
            kind = field(record, "question_type", where, "question type such as 'Camera perspective - Relative "
                         "Direction'")
            field(record, "question", where, "question text")
            choices = field(record, "choices", where, "options, one a line: 'A. right\\nB. left'")
            answer = field(record, "answer", where, "gold answer such as 'A. right'")
            images = field(record, "image_path", where, "list of image paths")
            images = [images] if isinstance(images, str) else list(images)
            if not images:
                raise ValueError(f"{where}: sample {sample_id!r} lists no images")
            letters = _CHOICE_LETTER.findall(str(choices))
            gold = viewspatial_option(str(answer))
            if gold is None or gold not in letters:
                raise ValueError(f"{where}: answer {answer!r} of sample {sample_id!r} is not one of the options "
                                 f"{letters} of its choices {choices!r}")
            if self.question_types is not None and kind not in self.question_types:
                continue
            entries.append({"where": where, "id": sample_id, "record": record, "images": images,
                            "options": letters, "gold": gold})
        return entries

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        return SpatialSample(
            id=entry["id"], source="viewspatial", task=record["question_type"], frames=self.views(entry),
            prompt=viewspatial_prompt(record["question"], record["choices"]),
            response=str(record["answer"]), answer=entry["gold"], answer_type="choice",
            meta={"options": entry["options"], "image_path": entry["images"], "where": entry["where"]},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The released record with its ``id`` (position in the file) and the response in ``prediction``."""
        entry = self.index[index]
        return {"id": entry["id"]} | dict(entry["record"]) | {"prediction": response}
