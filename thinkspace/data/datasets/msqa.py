"""``MSQA``: MSQA's ScanNet part, situated questions joined with the scenes' posed RGB-D frames.

Reads the released ``msqa_scannet_{split}.json`` (MSR3D/MSR3D; the loader
``data/datasets/msr3d.py`` ``MSQAScanNet.load_lang`` and ``__getitem__``) in either layout
(:func:`msqa_records`): one JSON list of
records with ``scan_id``, ``question``, ``answers`` (list of str), ``situation`` (text),
``location`` ``[x, y, z]`` metres, ``orientation`` ``[fx, fy, fz]`` (the facing vector in the
floor plane, "face pt"), ``type`` (question category) and ``index``, plus fields this
adapter does not need (``raw_thought``, ``query_type``, ``mode``, ...); or the 2024 grouped layout
``{scan_id: {"response": [{"Q", "A", "situation", "location", "orientation", "type", ...}]}}``
(the format documented above ``MSQAScanNet`` in ``msr3d.py``), where ``Q`` is the question, ``A``
the answers, and a record's ``index`` is its position in its scan's ``response``. Objects may appear as
image placeholders ``<label-instance-IMG>`` in the situation and question; as in MSR3D's
text-only mode (``replace_all_imgs_with_txt``) each becomes its ``label``.

Frame: the location and facing vector are in the scan's axis-aligned frame (MSR3D reads
the scene from ``pcd_with_global_alignment``, ScanNet's mesh with its ``axisAlignment``;
``tools/situation_visualization.py`` rotates SQA3D situations by that matrix to match),
so the poses are axis-aligned too (``axis_align``, default on). The yaw is
``atan2(fy, fx)`` (``data_utils.face_vector_in_xy_to_quaternion``); position and yaw are
moved into the world frame of the selected frames (origin at the first camera, +x along its
heading); ``meta["scene_position"]`` and ``meta["scene_yaw"]`` keep the originals.

The situation text goes to ``Situation.text``; the ``Situation`` objective places it
(video, situation, ``<Pos><Ori>``, question). ``situation_in_prompt`` also writes it before
the question, for stacks without that objective.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from thinkspace.data.datasets.scannet import SCANNET_FPS
from thinkspace.data.datasets.scannet_questions import ScanNetQuestions
from thinkspace.data.schema import SpatialSample, Situation
from thinkspace.data.video import FrameSampling
from thinkspace.records import Located, field, read_json

#: ``<label-instance-IMG>``: an object shown by an image in MSQA's interleaved input.
IMAGE_PLACEHOLDER = re.compile(r"<([^<>-]+)-\d+-IMG>")


def as_text(text: str) -> str:
    """MSQA text with every ``<label-id-IMG>`` placeholder replaced by its label."""
    return IMAGE_PLACEHOLDER.sub(lambda m: m.group(1), text)


class MSQA(ScanNetQuestions):
    """MSQA (ScanNet part) situated questions with their scene frames.

    Args:
        path: the ``msqa_scannet_{split}.json`` file.
        scannet_root: directory of ScanNet scene exports (default: the file's directory).
        num_frames: frames per scene, spread over its valid frames.
        as_video: the frames as a video with timestamps (default) or as an image set.
        frame_sampling: ``segment_centres`` or ``linspace`` (both ends).
        fps: the capture's frame rate, which times the frames (ScanNet: 30).
        axis_align: apply each scene's ``axisAlignment`` to the poses (MSQA's frame; keep on).
        situation_in_prompt: also write the situation before the question.
        skip_missing: drop questions whose scene folder is missing (count in ``skipped``).
        limit: keep the first ``limit`` questions.
    """

    scene_field = "scan_id"

    def __init__(self, path: str, scannet_root: str | None = None, num_frames: int = 32, as_video: bool = True,
                 frame_sampling: FrameSampling = "segment_centres", fps: float = SCANNET_FPS, axis_align: bool = True,
                 situation_in_prompt: bool = False, skip_missing: bool = False, limit: int | None = None) -> None:
        super().__init__(path, scannet_root, num_frames, as_video, frame_sampling, fps, axis_align, skip_missing, limit)
        self.situation_in_prompt = situation_in_prompt

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for i, (where, record) in enumerate(msqa_records(self.path)):
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object (an MSQA record), got {type(record).__name__}")
            scan = str(field(record, "scan_id", where, "ScanNet scene id"))
            field(record, "question", where, "question text")
            field(record, "situation", where, "situation text")
            answers = field(record, "answers", where, "reference answers")
            if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
                raise ValueError(f"{where}: answers ('A' in the grouped layout) must be a non-empty list of strings, "
                                 f"got {answers!r}")
            location = _numbers(field(record, "location", where, "[x, y, z] metres"), 3, where, "location")
            facing = _numbers(field(record, "orientation", where, "facing vector [fx, fy, fz]"), 3, where,
                              "orientation")
            if math.hypot(facing[0], facing[1]) == 0:
                raise ValueError(f"{where}: orientation {facing} has no component in the floor plane; expected a "
                                 "facing vector [fx, fy, fz] with fx or fy non-zero")
            sample_id = f"{scan}-{record.get('index', i)}"
            entries.append({"where": where, "id": sample_id, "record": record, "xy": (location[0], location[1]),
                            "yaw": math.atan2(facing[1], facing[0])})
        return entries

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        posed = self.posed_frames(entry)
        xy, yaw = posed.to_world(entry["xy"], entry["yaw"])
        situation, question = as_text(record["situation"]), as_text(record["question"])
        answer = record["answers"][0]
        return SpatialSample(
            id=entry["id"], source="msqa", task=str(record.get("type", "msqa")), frames=posed.frames,
            prompt=f"{situation} {question}" if self.situation_in_prompt else question,
            response=answer, answer=answer, answer_type="text", geometry=posed.geometry,
            timestamps=self.timestamps(posed),
            situation=Situation(position=xy, yaw=yaw, text=situation),
            meta={"scene_id": record["scan_id"], "scan": str(record["scan_id"]), "answers": record["answers"],
                  "scene_position": entry["xy"], "scene_yaw": entry["yaw"], "frame_indices": posed.indices,
                  "where": entry["where"], **self.video_meta(posed)},
        )


def msqa_records(path: str | Path) -> list[Located]:
    """``(location, record)`` of an MSQA file, list or grouped layout, as list-layout records.

    A grouped record ``{"Q", "A", ...}`` under scan ``S`` at position ``i`` of its ``response``
    becomes ``{"scan_id": S, "question": Q, "answers": A, "index": i, ...}`` (its other fields kept),
    located as ``path:S.response#i``.

    Raises:
        ValueError: the file is neither a JSON list nor ``{scan: {"response": [...]}}``, or a grouped
            record is not an object with ``Q`` and ``A`` (message names file, scan and position).
    """
    data = read_json(path)
    if isinstance(data, list):
        return [(f"{path}:#{i}", record) for i, record in enumerate(data)]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON list of MSQA records or {{scan_id: {{'response': [...]}}}}, "
                         f"got {type(data).__name__}")
    out: list[Located] = []
    for scan, group in data.items():
        responses = group.get("response") if isinstance(group, dict) else None
        if not isinstance(responses, list):
            raise ValueError(f"{path}:{scan}: expected {{'response': [records]}} (MSQA's grouped layout), got "
                             f"{str(group)[:80]}")
        for i, item in enumerate(responses):
            where = f"{path}:{scan}.response#{i}"
            if not isinstance(item, dict):
                raise ValueError(f"{where}: expected a JSON object (an MSQA record), got {type(item).__name__}")
            question = field(item, "Q", where, "question text (grouped MSQA layout)")
            answers = field(item, "A", where, "list of reference answers (grouped MSQA layout)")
            rest = {k: v for k, v in item.items() if k not in ("Q", "A")}
            out.append((where, {"scan_id": scan, "index": i, **rest, "question": question, "answers": answers}))
    return out


def _numbers(value: Any, count: int, where: str, key: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != count or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{where}: {key} must be a list of {count} numbers, got {value!r}")
    return [float(v) for v in value]
