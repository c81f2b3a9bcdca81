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

from typing import Any, Literal

from thinkspace.answers import first_answer_block, option_letters
from thinkspace.data.datasets.image_set_file import ImageSetFile
from thinkspace.data.schema import SpatialSample
from thinkspace.eval.mindcube import LETTERS, setting_from_id
from thinkspace.records import field, read_jsonl
from thinkspace.utils.choices import check_choice

PromptField = Literal["question", "input_prompt"]
PredictionAnswer = Literal["response", "first_block"]


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
        prompt_field: the record's text the prompt starts with: ``question`` (the question with its
            options, what 3DThinker's engine sends after cutting ``input_prompt`` at ``[Question]``) or
            ``input_prompt`` (the prompt files' whole MindCube prompt, task and answer format included, as
            that engine sends it to a model whose directory name lacks ``3dthinker``); the instruction
            follows either.
        prediction_answer: what a prediction record's ``answer`` (the field MindCube's evaluator scores)
            holds: the whole ``response``, or its ``first_block`` (the first ``<answer>`` block's content,
            ``""`` without one), as 3DThinker's engine writes it for its own models and the plain prompt.
            The whole response is in ``reasoning_chain`` either way.
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
        prompt_field: PromptField = "question",
        prediction_answer: PredictionAnswer = "response",
    ) -> None:
        super().__init__(path, image_root, instruction, image_size, resave, skip_missing, limit)
        check_choice("MindCube.prompt_field", prompt_field, PromptField)
        check_choice("MindCube.prediction_answer", prediction_answer, PredictionAnswer)
        self.settings, self.prompt_field, self.prediction_answer = settings, prompt_field, prediction_answer

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for where, record in read_jsonl(self.path):
            sample_id = str(field(record, "id", where, "question id"))
            question = field(record, "question", where, "question text with options")
            if self.prompt_field == "input_prompt":
                field(record, "input_prompt", where, "MindCube's whole prompt (prompt_field: input_prompt; the "
                      "prompt files such as data/prompts/general/MindCube_tinybench_raw_qa.jsonl carry it)")
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
            prompt=self.prompt(record[self.prompt_field]),
            response=record["gt_answer"], answer=record["gt_answer"], answer_type="choice",
            meta={"options": entry["options"], "category": record.get("category"), "type": record.get("type"),
                  "meta_info": record.get("meta_info"), "where": entry["where"]},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The official record with the whole response in ``reasoning_chain`` and, in ``answer`` (the
        evaluator's default field), the response or its first ``<answer>`` block (``prediction_answer``)."""
        record = {k: v for k, v in self.index[index]["record"].items() if k != "cogmap_gen_answer"}
        answer = first_answer_block(response) if self.prediction_answer == "first_block" else response
        return record | {"reasoning_chain": response, "answer": answer}
