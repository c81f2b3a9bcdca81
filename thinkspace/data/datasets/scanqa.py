"""``ScanQA``: questions about ScanNet scenes, joined with their posed RGB-D frames.

Reads ScanQA's released files (ATR-DBI/ScanQA, ``docs/dataset.md``; read by
``lib/dataset.py``): ``ScanQA_v1.0_{train,val,test_w_obj,test_wo_obj}.json``, one JSON list of
records ``{question_id, question, answers: [str, ...], object_ids: [int, ...], object_names:
[str, ...], scene_id}``; the test files carry no ``answers`` (and ``test_wo_obj`` no
objects). Frames come from the scene's ScanNet export ``{scannet_root}/{scene_id}/``
(:mod:`thinkspace.data.datasets.scannet`), as a video timed by the capture by default.

The first answer is the training response; all of them are kept in ``meta["answers"]``
(ScanQA's exact match accepts any). ScanQA questions have no situation. No world frame
conversion beyond the frames' own (the records hold no coordinates).

As a benchmark (``benchmark = "scanqa"``), ``thinkspace test`` writes each question's record with
``answer_top10``: thinkspace decodes one answer per question, so the list holds that one answer
(surrounding whitespace removed) and EM@10 equals EM@1 (:mod:`thinkspace.eval.scanqa`). It also
writes them in the layout of ScanQA's ``scripts/predict.py`` (one JSON list of ``scene_id``,
``question_id``, ``answer_top10``) and under its name, ``pred.{split}.json`` (``split`` from
``ScanQA_v1.0_{split}.json``, else the questions file's stem). The test files carry no answers:
their predictions are written, not scored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from thinkspace.data.datasets.scannet_questions import ScanNetQuestions
from thinkspace.data.schema import SpatialSample
from thinkspace.records import field, read_json_list


class ScanQA(ScanNetQuestions):
    """ScanQA questions with their answers and scene frames; scored by ``thinkspace score scanqa``.

    Args:
        path: a ``ScanQA_v1.0_{split}.json`` file.
        scannet_root: directory of ScanNet scene exports (default: the file's directory).
        num_frames: frames per scene, spread over its valid frames.
        as_video: the frames as a video with timestamps (default) or as an image set.
        frame_sampling: ``segment_centres`` or ``linspace`` (both ends).
        fps: the capture's frame rate, which times the frames (ScanNet: 30).
        axis_align: apply each scene's ``axisAlignment`` to the poses.
        skip_missing: drop questions whose scene folder is missing (count in ``skipped``).
        limit: keep the first ``limit`` questions.
    """

    benchmark = "scanqa"

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for where, record in read_json_list(self.path, None):
            qid = str(field(record, "question_id", where, "question id"))
            field(record, "question", where, "question text")
            field(record, "scene_id", where, "ScanNet scene id")
            answers = record.get("answers")
            if answers is not None and (not isinstance(answers, list) or not all(isinstance(a, str) for a in answers)):
                raise ValueError(f"{where}: answers of question {qid} must be a list of strings, got {answers!r}")
            entries.append({"where": where, "id": qid, "record": record})
        return entries

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        posed = self.posed_frames(entry)
        answers = record.get("answers") or []
        answer = answers[0] if answers else None
        return SpatialSample(
            id=entry["id"], source="scanqa", task="scanqa", frames=posed.frames, prompt=record["question"],
            response=answer, answer=answer, answer_type="text", geometry=posed.geometry,
            timestamps=self.timestamps(posed),
            meta={"scene_id": record["scene_id"], "scan": str(record["scene_id"]), "answers": answers,
                  "object_ids": record.get("object_ids"), "object_names": record.get("object_names"),
                  "frame_indices": posed.indices, "where": entry["where"], **self.video_meta(posed)},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The question's own record with ``answer_top10``: the one decoded answer, as a list."""
        return dict(self.index[index]["record"]) | {"answer_top10": [response.strip()]}

    @property
    def scorable(self) -> bool:
        """Whether the questions carry reference answers (val and train do; the test files do not)."""
        return all(entry["record"].get("answers") for entry in self.index)

    def write_official(self, records: list[dict[str, Any]], directory: Path, stage: str) -> Path:
        """``records`` as ScanQA's ``pred.{split}.json`` (``scene_id``, ``question_id``, ``answer_top10``);
        a stage other than ``test`` writes ``pred.{split}.{stage}.json``, so a predict run does not
        overwrite what the test run wrote (as ``predictions_{stage}_scanqa.jsonl`` beside it)."""
        name = self.path.name
        split = name[len("ScanQA_v1.0_"):-len(".json")] if name.startswith("ScanQA_v1.0_") and name.endswith(".json") \
            else self.path.stem
        path = Path(directory) / (f"pred.{split}.json" if stage == "test" else f"pred.{split}.{stage}.json")
        keep = ("scene_id", "question_id", "answer_top10")
        path.write_text(json.dumps([{k: r[k] for k in keep} for r in records], indent=1) + "\n")
        return path
