"""``Ego3DBench``: Ego3D-Bench questions (ego-centric multi-camera driving scenes) as ``SpatialSample``s.

Reads the test split of the Hugging Face dataset ``vbdai/Ego3D-Bench`` as a jsonl export,
a parquet file (needs ``pyarrow`` or ``pandas``) or the dataset's own
``test/data-00000-of-00001.arrow`` (needs ``pyarrow``). Fields per row: ``idx``,
``question`` (holds one labelled ``<image>`` slot per view, "Front view: <image>"),
``options`` (``["A. yes", "B. no"]``, or empty for the numeric categories), ``answer``
(an option letter, or metres as text), ``category`` (one of the ten of
:data:`thinkspace.eval.ego3d.CATEGORIES`), ``source`` (nuscenes, waymo, argoverse) and
``images`` (view name -> image path relative to ``image_root``).

Table layout (upstream reads ``load_dataset("vbdai/Ego3D-Bench")["test"]`` and joins
``images[view]`` to its image root, ``models/qwen2.5_vl.py`` at 1c6342d): in the Arrow/parquet
file ``images`` is one struct column whose fields are every view name of every source, so a
Waymo row holds ``None`` for the nuScenes-only views; those are ignored (only the source's own
views must be present). A view may also hold a Hugging Face ``Image`` value
(``{"bytes": ..., "path": ...}``, a copy cast to that feature): its embedded bytes are decoded,
else its ``path`` is read under ``image_root``.

Frames: the views in the official fixed order per source (:data:`VIEW_ORDER`, upstream
``models/qwen2.5_vl.py`` after commit acbb767), as stored; the collator places view i at the
question's i-th ``<image>`` slot, right after its label (``meta["image_slots"]``), as
upstream's ``convert_to_qwen_input`` does. Resolution is the processor's: set the backbone's
``max_pixels`` to bound it (docs/benchmarks_data.md gives visual tokens per source).

Prompt (upstream's runner): the question, each option on its own line, then a line asking
for the thinking in ``<think>`` tags and the answer in ``<answer>`` tags: "(number only)" for
the two absolute-distance categories, "(only the letter of the choice)" for the others.
``yes_no_wording: true`` asks "(yes or no)" in the three categories where upstream does (a
bug there: their gold is a letter, so a "yes" scores 0; docs/parity.md).

No geometry or situation: the benchmark ships none.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from thinkspace.data.datasets.benchmark import BenchmarkDataset
from thinkspace.data.images import decode_image, load_image
from thinkspace.data.schema import IMAGE_SLOT, IMAGE_SLOTS, SpatialSample
from thinkspace.eval.ego3d import (
    CATEGORIES,
    NUMBER_CATEGORIES,
    YES_NO_CATEGORIES,
    processed_prediction,
)
from thinkspace.records import field, read_table

#: view names (keys of ``images``) in the order the question's slots list them, per source.
VIEW_ORDER = {
    "nuscenes": ("Front_Left", "Front", "Front_Right", "Back_Right", "Back", "Back_Left"),
    "waymo": ("Front", "Front_Left", "Side_Left", "Front_Right", "Side_Right"),
    "argoverse": ("Front_Left", "Front", "Front_Right", "Side_Right", "Back_Right", "Back_Left", "Side_Left"),
}
SUFFIX = "Output the thinking process in <think> </think> and final answer ({}) in <answer> </answer> tags."
NUMBER_WORDING, LETTER_WORDING, YES_NO_WORDING = "number only", "only the letter of the choice", "yes or no"
_OPTION_LETTER = re.compile(r"\s*([A-Za-z])\s*[.)]")


def ego3d_prompt(question: str, options: list[str] | None, category: str, yes_no_wording: bool = False) -> str:
    """Upstream's prompt: question, options one per line, the answer-format line of the category."""
    if category in NUMBER_CATEGORIES:
        wording = NUMBER_WORDING
    elif yes_no_wording and category in YES_NO_CATEGORIES:
        wording = YES_NO_WORDING
    else:
        wording = LETTER_WORDING
    return question + "".join(f"\n{option}" for option in options or []) + "\n" + SUFFIX.format(wording)


def _image_value(value: Any, where: str, idx: str, view: str) -> str | bytes | None:
    """A view's image as a path (relative to the image root) or embedded bytes; ``None`` when absent.

    Accepts a path string or a Hugging Face ``Image`` value ``{"bytes": ..., "path": ...}`` (bytes first,
    as ``datasets`` decodes it).
    """
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, dict) and set(value) <= {"bytes", "path"}:
        return value.get("bytes") or value.get("path") or None
    raise TypeError(f"{where}: image of view {view!r} of sample {idx!r} is {type(value).__name__} {value!r:.80}; "
                    "expected a path string or a Hugging Face Image value {'bytes': ..., 'path': ...}")


class Ego3DBench(BenchmarkDataset):
    """Ego3D-Bench questions over 5 to 7 camera views of one moment.

    Args:
        path: the test split (``.jsonl``, ``.parquet`` or the dataset's ``.arrow`` file).
        image_root: directory the ``images`` paths are relative to (the unzipped
            ``raw_images.zip``; default: the file's directory).
        yes_no_wording: ask "(yes or no)" in the three categories where upstream's runner does
            (reproduces its bug; default: the letter wording).
        categories: keep only these categories (``None``: all ten).
        skip_missing, limit: as :class:`BenchmarkDataset`.
    """

    benchmark = "ego3d"

    def __init__(self, path: str, image_root: str | None = None, yes_no_wording: bool = False,
                 categories: list[str] | None = None, skip_missing: bool = False, limit: int | None = None) -> None:
        super().__init__(skip_missing, limit)
        self.path = Path(path)
        self.image_root = Path(image_root) if image_root is not None else self.path.parent
        self.yes_no_wording = yes_no_wording
        self.categories = categories

    def _build_index(self) -> list[dict[str, Any]]:
        entries, off_options = [], []
        for where, record in read_table(self.path):
            idx = str(field(record, "idx", where, "question index"))
            question = str(field(record, "question", where, "question text with <image> slots"))
            options = list(field(record, "options", where, "option list (empty for numeric categories)") or [])
            answer = field(record, "answer", where, "gold option letter or distance")
            category = field(record, "category", where, "Ego3D-Bench category")
            source = field(record, "source", where, "nuscenes, waymo or argoverse")
            images = field(record, "images", where, "view name -> image path")
            if category not in CATEGORIES:
                raise ValueError(f"{where}: unknown category {category!r} of sample {idx!r}; expected one of "
                                 f"{', '.join(CATEGORIES)}")
            if not isinstance(images, dict):
                raise TypeError(f"{where}: images of sample {idx!r} is a {type(images).__name__}; expected a "
                                 "mapping of view name to image path")
            images = {view: _image_value(value, where, idx, view) for view, value in images.items()}
            views = list(VIEW_ORDER.get(source, [k for k, v in images.items() if v]))
            missing = [v for v in views if not images.get(v)]
            if missing:
                raise ValueError(f"{where}: sample {idx!r} ({source}) has no image for view(s) {', '.join(missing)}; "
                                 f"expected the {len(views)} views {', '.join(views)}")
            if question.count(IMAGE_SLOT) != len(views):
                raise ValueError(f"{where}: the question of sample {idx!r} has {question.count(IMAGE_SLOT)} "
                                 f"{IMAGE_SLOT} slot(s) for the {len(views)} views of a {source} sample")
            if category in NUMBER_CATEGORIES:
                try:
                    float(answer)
                except (TypeError, ValueError):
                    raise ValueError(f"{where}: answer {answer!r} of {category} sample {idx!r} is not a "
                                     "distance in metres") from None
            else:
                letters = [m.group(1).upper() for m in map(_OPTION_LETTER.match, options) if m]
                if str(answer).upper() not in letters:
                    off_options.append(where)
            if self.categories is not None and category not in self.categories:
                continue
            entries.append({"where": where, "id": idx, "record": record, "options": options,
                            "category": category, "source": source, "views": views,
                            "images": [images[v] for v in views]})
        if off_options:  # scored as upstream scores them (never right); warn rather than refuse the file
            warnings.warn(f"{self.path}: {len(off_options)} multiple-choice answer(s) are not one of their "
                          f"options' letters (first: {off_options[0]}); they can never be scored right", stacklevel=2)
        return entries

    def _media(self, entry: dict[str, Any]) -> list[Path]:
        """Image files the sample reads (embedded images need none)."""
        return [self.image_root / p for p in entry["images"] if isinstance(p, str)]

    def _frames(self, entry: dict[str, Any]) -> list:
        return [load_image(self.image_root / p, entry["id"]) if isinstance(p, str)
                else decode_image(p, f"{entry['where']}: image of view {view} of sample {entry['id']!r}")
                for view, p in zip(entry["views"], entry["images"])]

    def prompt(self, entry: dict[str, Any]) -> str:
        return ego3d_prompt(entry["record"]["question"], entry["options"], entry["category"], self.yes_no_wording)

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        number = entry["category"] in NUMBER_CATEGORIES
        answer = entry["record"]["answer"]
        return SpatialSample(
            id=entry["id"], source="ego3d", task=entry["category"],
            frames=self._frames(entry),
            prompt=self.prompt(entry), response=str(answer),
            answer=float(answer) if number else str(answer), answer_type="number" if number else "choice",
            meta={IMAGE_SLOTS: True, "views": entry["views"], "source_dataset": entry["source"],
                  "options": entry["options"], "where": entry["where"]},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The official result row (``Question``, ``Question_Type``, ``Pred``, ``Processed_Pred``, ``GT``)
        plus ``category``, ``idx`` and ``source``, so one file holds every category."""
        entry = self.index[index]
        return {"Question": self.prompt(entry), "Question_Type": "multi_choice" if entry["options"] else "exact_number",
                "Pred": response, "Processed_Pred": processed_prediction(response), "GT": entry["record"]["answer"],
                "category": entry["category"], "idx": entry["record"]["idx"], "source": entry["source"]}
