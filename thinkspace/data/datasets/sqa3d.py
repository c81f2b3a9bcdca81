"""``SQA3D``: situated questions on ScanNet scenes, joined with their posed RGB-D frames.

Reads SQA3D's two official files of a split, ``v1_balanced_questions_{split}_scannetv2.json``
(``{"questions": [{question_id, scene_id, situation, alternative_situation, question}]}``)
and ``v1_balanced_sqa_annotations_{split}_scannetv2.json`` (``{"annotations":
[{question_id, scene_id, answers: [{answer, ...}], answer_type, position {x, y, z},
rotation {_x, _y, _z, _w}}]}``), joined on ``question_id``. Frames come from the scene's
ScanNet export ``{scannet_root}/{scene_id}/`` (``color/``, ``depth/``, ``pose/``,
``intrinsic/``; see :mod:`thinkspace.data.datasets.scannet`), or from
``{scannet_root}/{sequence}`` when the question record has a ``sequence`` field (the
synthetic world's).

Situation frame (:mod:`thinkspace.data.datasets.sqa3d_frame`): with ``frame="sqa3d"``
(SQA3D's files) positions are relative to the bounding-box centre of the scene mesh
``{mesh_root}/{scene_id}/{scene_id}_vh_clean_2.ply`` and the agent faces -x at rotation 0,
as the official visualiser draws it; with ``frame="scene"`` (the synthetic world's files)
positions are in the poses' frame and the agent faces +x at rotation 0. Either way the
situation is moved into the world frame of the selected frames (origin at the first
camera, +x along its heading), the frame ``geometry`` uses too; ``Situation.yaw`` is the
direction the agent faces there. ``meta["scene_position"]`` and ``meta["scene_yaw"]``
keep the file's position and rotation-vector z.

The prompt holds the situation text once, before the question; the ``Situation``
objective puts ``<Pos><Ori>`` right after it. :meth:`SQA3D.prediction_record` maps a
predicted world-frame situation back to SQA3D's frame as ``agent_pos`` / ``agent_rot``.

Frames enter as a video by default (``as_video``): timestamps of the scan's capture (frame
number / ``fps``), so every backbone with a video path encodes them as one (LLaVA-OneVision:
196 pooled tokens per 384 px frame instead of 730 per image). ``as_video: false`` gives an
unordered image set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkspace.data.datasets.benchmark import BenchmarkDataset
from thinkspace.data.datasets.scannet import SCANNET_FPS, PosedFrames, axis_alignment, load_posed_frames
from thinkspace.data.datasets.scannet_mesh import MeshCentres
from thinkspace.data.datasets.sqa3d_frame import SituationFrame, situation_frame
from thinkspace.data.schema import VIDEO_DURATION, SpatialSample, Situation
from thinkspace.data.video import FrameSampling
from thinkspace.eval.sqa3d import question_kind
from thinkspace.geometry import as_position, as_quaternion, quaternion_yaw
from thinkspace.records import field, read_json_list, refuse_duplicate_ids


class SQA3D(BenchmarkDataset):
    """SQA3D questions with their situation, answer and scene frames.

    Args:
        questions: the questions json file.
        annotations: the annotations json file.
        scannet_root: directory of ScanNet scene folders (default: the questions file's directory).
        num_frames: frames per scene, spread uniformly over its valid frames.
        axis_align: apply each scene's ``axisAlignment`` to the poses. With ``frame="sqa3d"``
            the situation is aligned with them (its world-frame target does not change); with
            ``frame="scene"`` the file's positions are read in the axis-aligned frame.
        with_options: append the record's ``options`` (if any) to the prompt.
        skip_missing: drop questions whose scene folder is missing (count in ``skipped``).
        limit: keep the first ``limit`` questions.
        as_video: the frames as a video with timestamps (default) or as an image set.
        frame_sampling: ``segment_centres`` or ``linspace`` (both ends; VSI-Bench's rule).
        fps: the capture's frame rate, which times the frames (ScanNet: 30).
        frame: ``"sqa3d"`` (positions relative to the scene mesh's bounding-box centre, the
            agent facing -x at rotation 0: SQA3D's files) or ``"scene"`` (the poses' frame,
            facing +x at rotation 0: the synthetic world's files).
        mesh_root: folder of ScanNet scene folders with ``{scene}_vh_clean_2.ply``
            (default: ``scannet_root``); used with ``frame="sqa3d"``.
        mesh_centres: JSON file caching the meshes' bounding-box centres (default: memory only).
        localization: SQA3D's ``v1_balanced_localization_{split}_scannetv2.json``, the gold
            of the per-situation localization score (default: the annotations' situations).
    """

    benchmark = "sqa3d"
    localizes = True  # prediction_record takes a predicted situation
    FRAMES = ("sqa3d", "scene")

    def __init__(
        self,
        questions: str,
        annotations: str,
        scannet_root: str | None = None,
        num_frames: int = 8,
        axis_align: bool = False,
        with_options: bool = False,
        skip_missing: bool = False,
        limit: int | None = None,
        as_video: bool = True,
        frame_sampling: FrameSampling = "segment_centres",
        fps: float = SCANNET_FPS,
        frame: str = "sqa3d",
        mesh_root: str | None = None,
        mesh_centres: str | None = None,
        localization: str | None = None,
    ) -> None:
        super().__init__(skip_missing, limit)
        self.as_video = as_video
        self.frame_sampling = frame_sampling
        self.fps = fps
        self.questions = Path(questions)
        self.annotations = Path(annotations)
        self.scannet_root = Path(scannet_root) if scannet_root is not None else self.questions.parent
        self.num_frames = num_frames
        self.axis_align = axis_align
        self.with_options = with_options
        if frame not in self.FRAMES:
            raise ValueError(f"SQA3D frame: expected one of {list(self.FRAMES)}, got {frame!r}")
        self.frame = frame
        self.centres = MeshCentres(mesh_root if mesh_root is not None else self.scannet_root, mesh_centres)
        self.localization = localization
        self._frames: dict[Path, SituationFrame] = {}  # per scene folder, for prediction_record

    def _build_index(self) -> list[dict[str, Any]]:
        located = [(where, str(field(note, "question_id", where, "question id")), note)
                   for where, note in read_json_list(self.annotations, "annotations")]
        refuse_duplicate_ids([(where, qid) for where, qid, _ in located], "question_id")  # else the last wins
        notes = {qid: (where, note) for where, qid, note in located}
        entries = []
        for where, question in read_json_list(self.questions, "questions"):
            qid = str(field(question, "question_id", where, "question id"))
            for key in ("scene_id", "situation", "question"):
                field(question, key, where)
            if qid not in notes:
                raise KeyError(f"{where}: question_id {qid} has no annotation in {self.annotations}")
            note_where, note = notes[qid]
            answers = field(note, "answers", note_where, "reference answers")
            if not answers or "answer" not in answers[0]:
                raise ValueError(f"{note_where}: answers of question {qid} must be a non-empty list of {{'answer'}}")
            xy = as_position(field(note, "position", note_where), note_where)
            yaw = quaternion_yaw(*as_quaternion(field(note, "rotation", note_where), note_where))
            entries.append({"where": where, "id": qid, "question": question, "note": note, "xy": xy, "yaw": yaw})
        return entries

    def scene_dir(self, question: dict[str, Any]) -> Path:
        if question.get("sequence"):
            return self.scannet_root / question["sequence"]
        return self.scannet_root / str(question["scene_id"])

    def _media(self, entry: dict[str, Any]) -> list[Path]:
        return [self.scene_dir(entry["question"])]

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        question, note = entry["question"], entry["note"]
        scene = self.scene_dir(question)
        if not scene.is_dir():
            raise FileNotFoundError(
                f"ScanNet scene folder {scene} not found (sample {entry['id']!r}, {entry['where']})")
        posed = load_posed_frames(scene, self.num_frames, entry["id"], self.axis_align, self.frame_sampling, self.fps)
        xy, yaw = self.situation_frame(question, posed, entry["id"]).to_world(entry["xy"], entry["yaw"])
        prompt = f"{question['situation']} {question['question']}"
        if self.with_options and question.get("options"):
            prompt += "\n" + "\n".join(question["options"])
        answer = str(note["answers"][0]["answer"])
        return SpatialSample(
            id=entry["id"], source="sqa3d", task=question_kind(question["question"]), frames=posed.frames,
            prompt=prompt, response=answer, answer=answer, answer_type="text", geometry=posed.geometry,
            timestamps=posed.timestamps if self.as_video else None,
            situation=Situation(position=xy, yaw=yaw, text=question["situation"]),
            meta={"scene_id": question["scene_id"], "scan": scene.relative_to(self.scannet_root).as_posix(),
                  "scene_position": entry["xy"], "scene_yaw": entry["yaw"], "frame_indices": posed.indices,
                  "answer_type": note.get("answer_type"), "where": entry["where"],
                  **({VIDEO_DURATION: posed.duration} if self.as_video else {})},
        )

    def situation_frame(self, question: dict[str, Any], posed: PosedFrames, sample_id: str) -> SituationFrame:
        """The map from the file's situation frame to the world frame of ``posed``."""
        if self.frame == "scene":
            return situation_frame(posed.world_from_scene, None, None, facing_at_zero=0.0)
        scene = self.scene_dir(question)
        align = axis_alignment(scene) if self.axis_align else None
        return situation_frame(posed.world_from_scene, self.centres(str(question["scene_id"]), sample_id), align)

    def prediction_record(self, index: int, response: str,
                          situation: tuple[float, float, float] | None = None) -> dict[str, Any]:
        """Question and annotation fields merged, with the response in ``answer``; with a
        predicted ``situation`` (world x, y metres and facing yaw radians) also ``agent_pos``
        ``[x, y, z]`` and ``agent_rot`` ``[x, y, z, w]`` in the file's frame."""
        entry = self.index[index]
        record = dict(entry["question"]) | dict(entry["note"]) | {"answer": response}
        if situation is not None:
            scene = self.scene_dir(entry["question"])
            if scene not in self._frames:  # every question of a scene sees the same frames
                posed = load_posed_frames(scene, self.num_frames, entry["id"], self.axis_align,
                                          self.frame_sampling, self.fps)
                self._frames[scene] = self.situation_frame(entry["question"], posed, entry["id"])
            x, y, yaw = situation
            record["agent_pos"], record["agent_rot"] = self._frames[scene].to_sqa3d((x, y), yaw)
        return record

    def score_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`thinkspace.eval.sqa3d.score_sqa3d` for this split."""
        return {"localization": self.localization}
