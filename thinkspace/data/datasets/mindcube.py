"""``MindCube``: MindCube question files (limited-view image sets) as ``SpatialSample``s.

Reads the official jsonl (e.g. ``MindCube_tinybench.jsonl``, ``MindCube_train.jsonl``
from the Hugging Face dataset ``MLL-Lab/MindCube``), one question per line with fields
``id``, ``question`` (options inline as "A. ... B. ..."), ``images`` (paths relative
to ``image_root``) and ``gt_answer`` (an option letter); ``category``, ``type`` and
``meta_info`` are kept in ``meta``. The setting (around, among, rotation,
translation, other) comes from the ``id`` as MindCube's evaluator derives it.

Frames: the listed images in order, unordered views (``timestamps=None``), optionally
resized to a fixed (width, height) (``image_size``; 3DThinker's 480 x 640 portrait). MindCube
has no camera geometry, so ``geometry`` and ``situation`` are ``None`` and no world
frame conversion is needed.
"""

from __future__ import annotations

from typing import Any

from thinkspace.answers import option_letters
from thinkspace.data.datasets.image_set_file import ImageSetFile
from thinkspace.data.schema import SpatialSample
from thinkspace.eval.mindcube import LETTERS, setting_from_id
from thinkspace.records import field, read_jsonl


class MindCube(ImageSetFile):
    """MindCube questions from a jsonl file.

    Args:
        path: the jsonl file.
        image_root: directory the ``images`` paths are relative to (default: the
            jsonl's directory).
        instruction: text appended to each question on a new line (e.g. "Answer with
            the option's letter."); empty for none.
        image_size: resize every view to (width, height) pixels with LANCZOS first
            (3DThinker: ``[480, 640]``, portrait; see ``thinker_prompt``); ``None``: as stored.
        resave: with ``image_size``, write each resized view in its file's format with PIL's
            defaults and read it back, as 3DThinker's preprocessing does (JPEG quality 75).
        settings: keep only these settings (``None``: all).
        skip_missing: drop questions with missing images (count in ``skipped``)
            instead of failing when they are read.
        limit: keep the first ``limit`` questions.
    """

    benchmark = "mindcube"

    def __init__(
        self,
        path: str,
        image_root: str | None = None,
        instruction: str = "",
        image_size: list[int] | None = None,
        resave: bool = False,
        settings: list[str] | None = None,
        skip_missing: bool = False,
        limit: int | None = None,
    ) -> None:
        super().__init__(path, image_root, instruction, image_size, resave, skip_missing, limit)
        self.settings = settings

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for where, record in read_jsonl(self.path):
            sample_id = str(field(record, "id", where, "question id"))
            question = field(record, "question", where, "question text with options")
            images = field(record, "images", where, "list of image paths")
            gold = field(record, "gt_answer", where, "gold option letter")
            images = [images] if isinstance(images, str) else list(images)
            if not images:
                raise ValueError(f"{where}: sample {sample_id!r} lists no images")
            letters = option_letters(question)
            if gold not in LETTERS or (letters and gold not in letters):
                raise ValueError(f"{where}: gt_answer {gold!r} of sample {sample_id!r} is not one of the "
                                 f"question's options {letters or list(LETTERS)}")
            setting = setting_from_id(sample_id)
            if self.settings is not None and setting not in self.settings:
                continue
            entries.append({"where": where, "id": sample_id, "setting": setting, "record": record,
                            "images": images, "options": letters})
        return entries

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        return SpatialSample(
            id=entry["id"], source="mindcube", task=entry["setting"], frames=self.views(entry),
            prompt=self.prompt(record["question"]),
            response=record["gt_answer"], answer=record["gt_answer"], answer_type="choice",
            meta={"options": entry["options"], "category": record.get("category"), "type": record.get("type"),
                  "meta_info": record.get("meta_info"), "where": entry["where"]},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The official record with the response in ``answer`` (the evaluator's default field)."""
        record = {k: v for k, v in self.index[index]["record"].items() if k != "cogmap_gen_answer"}
        return record | {"answer": response}
