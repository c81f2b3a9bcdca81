"""``SPBench``: SpatialLadder's SPBench questions (SPBench-SI single image, SPBench-MV multi-view) as
``SpatialSample``s.

Reads a released split, ``SPBench-SI.parquet`` (1,009 questions) or ``SPBench-MV.parquet`` (319) of
the Hugging Face ``hongxingli/SPBench`` (ScanNet validation scenes; a jsonl export of it read the
same), with the columns the official evaluator (ZJU-REAL/SpatialLadder ``eval_spld/data_utils/
spbench.py``) reads: ``id``, ``dataset``, ``scene_name``, ``question_type`` (SI: object_abs_distance,
object_size_estimation, object_rel_distance, object_rel_direction; MV also object_counting),
``question``, ``options`` (``["A. left", ...]``, or null/empty for numeric questions),
``ground_truth`` (a letter or a number as text) and ``images`` (frame file names, one for SI, several
for MV). An image is ``{image_root}/{scene_name}/{frame}``, as upstream joins them (its layout:
``SPBench-SI/SPBench-SI.parquet`` beside ``SPBench-SI/images/``; the default ``image_root`` is that
``images`` directory).

Prompt: the official text. The question, then for a record with options ``"\\nOptions:\\n"`` and one
option a line; that in the template of ``prompt_type`` (``vsi_utils.py`` ``PROMPT_TEMPLATES``):
``thinking`` (``run_eval.sh``'s default: think in ``<think>``, answer in ``<answer>`` tags) or
``default`` (answer directly); then a newline and the instruction for a letter or for a number.
Frames: the listed images in order, as separate images before the text (upstream's message), each
as stored (the processor's ``min_pixels``/``max_pixels`` size them, as upstream's 16..512 x 28 x 28);
unordered views (``timestamps=None``), no camera geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkspace.answers import parse_float
from thinkspace.data.datasets.image_set_file import ImageSetFile
from thinkspace.data.schema import SpatialSample
from thinkspace.eval.spbench import (
    CHOICE_TYPES,
    NUMBER_TYPES,
    PROMPT_TYPES,
    positive_number,
)
from thinkspace.records import field, read_table

#: the official templates (``vsi_utils.py``): text before the question's instruction, then the instruction.
_THINKING = ("Question: {question}\n"
             "Please think about this question as if you were a human pondering deeply. "
             "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
             "'let's break it down', etc, or other natural language thought expressions "
             "It's encouraged to include self-reflection or verification in the reasoning process. \n")
_TAGS = "Please provide your detailed reasoning between the <think> </think> tags, and then answer the question with "
TEMPLATES = {
    "thinking": (_THINKING,
                 _TAGS + "the option's letter from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags.",
                 _TAGS + "a numerical value (e.g., 42 or 3.1) within the <answer> </answer> tags."),
    "default": ("Question: {question}\n",
                "Please answer with the option's letter from the given choices (e.g., A, B, etc.) directly.",
                "Please answer the question using a numerical value (e.g., 42 or 3.1) directly."),
}


def spbench_prompt(question: str, options: list[str] | None, choice: bool, prompt_type: str = "thinking") -> str:
    """The official prompt of a question (``options`` appended when given; ``choice`` picks the instruction)."""
    if options:
        question = question + "\nOptions:\n" + "\n".join(options)
    before, letter, number = TEMPLATES[prompt_type]
    return before.format(question=question) + "\n" + (letter if choice else number)


class SPBench(ImageSetFile):
    """SPBench-SI or SPBench-MV questions from the released parquet (or a jsonl export).

    Args:
        path: ``SPBench-SI.parquet`` / ``SPBench-MV.parquet`` (reading parquet needs pyarrow or pandas).
        image_root: directory holding ``{scene_name}/{frame}`` (default: ``images`` beside the file).
        prompt_type: ``thinking`` (official default) or ``default``; the scorer reads answers to match.
        question_types: keep only these types (``None``: all).
        skip_missing: drop questions with missing images (count in ``skipped``).
        limit: keep the first ``limit`` questions.
    """

    benchmark = "spbench"

    def __init__(
        self,
        path: str,
        image_root: str | None = None,
        prompt_type: str = "thinking",
        question_types: list[str] | None = None,
        skip_missing: bool = False,
        limit: int | None = None,
    ) -> None:
        root = image_root if image_root is not None else str(Path(path).parent / "images")
        super().__init__(path, root, "", None, False, skip_missing, limit)
        if prompt_type not in PROMPT_TYPES:
            raise ValueError(f"SPBench.prompt_type: {prompt_type!r}; expected one of {list(PROMPT_TYPES)}")
        unknown = [t for t in question_types or [] if t not in CHOICE_TYPES + NUMBER_TYPES]
        if unknown:
            raise ValueError(f"SPBench.question_types: unknown {unknown}; expected some of "
                             f"{list(CHOICE_TYPES + NUMBER_TYPES)}")
        self.prompt_type = prompt_type
        self.question_types = question_types

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for where, record in read_table(self.path):
            sample_id = str(field(record, "id", where, "question id"))
            kind = field(record, "question_type", where, "question type such as 'object_abs_distance'")
            field(record, "question", where, "question text")
            truth = str(field(record, "ground_truth", where, "gold answer: a letter or a number")).strip()
            scene = field(record, "scene_name", where, "ScanNet scene such as 'scene0011_00'")
            frames = field(record, "images", where, "list of frame file names such as ['200.jpg']")
            frames = [frames] if isinstance(frames, str) else list(frames or [])
            if not frames:
                raise ValueError(f"{where}: sample {sample_id!r} lists no images")
            odd = next((f for f in frames if not isinstance(f, str)), None)
            if odd is not None:  # e.g. an Image feature's {"bytes", "path"}: upstream joins names to paths
                raise TypeError(f"{where}: images of sample {sample_id!r} hold a {type(odd).__name__} "
                                f"({odd!r:.60}); expected frame file names such as '200.jpg'")
            options = list(record.get("options") or [])
            if kind in CHOICE_TYPES:
                letters = [str(o).strip()[:1] for o in options]
                if truth.upper() not in letters:
                    raise ValueError(f"{where}: ground_truth {truth!r} of sample {sample_id!r} is not one of the "
                                     f"option letters {letters}")
            elif kind in NUMBER_TYPES:
                if not positive_number(parse_float(truth)):  # refused here, not after the whole test run
                    raise ValueError(f"{where}: ground_truth {truth!r} of sample {sample_id!r} is not a positive "
                                     "number")
            else:
                raise ValueError(f"{where}: unknown question_type {kind!r} of sample {sample_id!r}; expected one "
                                 f"of {list(CHOICE_TYPES + NUMBER_TYPES)}")
            if self.question_types is not None and kind not in self.question_types:
                continue
            entries.append({"where": where, "id": sample_id, "record": record, "options": options,
                            "images": [f"{scene}/{frame}" for frame in frames]})
        return entries

    def prompt_of(self, entry: dict[str, Any]) -> str:
        record = entry["record"]
        return spbench_prompt(record["question"], entry["options"], record["question_type"] in CHOICE_TYPES,
                              self.prompt_type)

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        choice = record["question_type"] in CHOICE_TYPES
        truth = str(record["ground_truth"]).strip()
        return SpatialSample(
            id=entry["id"], source="spbench", task=record["question_type"], frames=self.views(entry),
            prompt=self.prompt_of(entry), response=truth, answer=truth if choice else float(truth),
            answer_type="choice" if choice else "number",
            meta={"scene_name": record["scene_name"], "options": entry["options"], "images": entry["images"],
                  "where": entry["where"]},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The official result record (``id``, ``dataset``, ``scene_name``, ``question``, ``ground_truth``,
        ``predicted_answer``, ``question_type``, ``prompt``), which upstream's ``vsibench_eval`` reads."""
        entry = self.index[index]
        record = entry["record"]
        return {"id": record["id"], "dataset": record.get("dataset"), "scene_name": record["scene_name"],
                "question": record["question"], "ground_truth": record["ground_truth"],
                "predicted_answer": response, "question_type": record["question_type"],
                "prompt": self.prompt_of(entry)}

    def score_options(self) -> dict[str, Any]:
        """The scorer reads ``<answer>`` tags only under the ``thinking`` prompt, as upstream."""
        return {"prompt_type": self.prompt_type}
