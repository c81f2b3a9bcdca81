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
"""

from __future__ import annotations

from typing import Any

from thinkspace.data.datasets.scannet_questions import ScanNetQuestions
from thinkspace.data.schema import SpatialSample
from thinkspace.records import field, read_json_list


class ScanQA(ScanNetQuestions):
    """ScanQA questions with their answers and scene frames.

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
            meta={"scene_id": record["scene_id"], "answers": answers, "object_ids": record.get("object_ids"),
                  "object_names": record.get("object_names"), "frame_indices": posed.indices,
                  "where": entry["where"]},
        )
