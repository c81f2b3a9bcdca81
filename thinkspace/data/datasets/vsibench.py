"""``VSIBench``: VSI-Bench video questions as ``SpatialSample``s.

Reads the official table (``test.jsonl`` or the Hugging Face ``nyu-visionx/VSI-Bench``
parquet; parquet needs ``pyarrow`` or ``pandas``) with fields ``id``, ``dataset``
(arkitscenes, scannet, scannetpp), ``scene_name``, ``question_type``, ``question``,
``options`` (``["A. ...", ...]`` or null) and ``ground_truth``. The video of a record is
``{video_root}/{dataset}/{scene_name}.mp4`` (the official layout), or
``{video_root}/{video}`` when the record has a ``video`` field (the synthetic world's).

Frames: ``num_frames`` sampled with decord, by segment centres or (``frame_sampling:
linspace``) by the official evaluation's ``np.linspace(0, M - 1, N)`` rounded down, both
ends included (``lmms_eval/models/llava_vid.py``); ``timestamps`` in seconds from the start
of the video; ``meta["video_duration"]`` is the video's length in seconds, its frame count / fps as
decord reports them (an export's: its capture's frame count / ``fps``). The prompt is the official one: "These are frames of a video.", the
question, then for multiple choice "Options:" with one option per line and "Answer with
the option's letter from the given choices directly.", else "Please answer the question
using a single word or phrase.".

Geometry: VSI-Bench ships none. With ``scannet_root``, a record of a ScanNet scene
(``dataset`` ``scannet``) whose export ``{scannet_root}/{scene_name}/`` exists is read from
that export instead of the mp4: the same sampling over the scan's valid frames, timed by
the capture (frame number / ``fps``), with intrinsics, poses and depth in the world frame
of :mod:`thinkspace.data.datasets.scannet`, so layout reconstruction has targets. A record
with a ``sequence`` field (the synthetic world's: its walk's per-frame colour, depth and pose
files in ScanNet's layout, whatever its ``dataset``) is read from
``{scannet_root}/{sequence}`` the same way (set ``fps`` to the synthetic set's, 4 by default). Every
other record (ARKitScenes, ScanNet++, or no export) has no geometry: ``LayoutReconstruction``
gives its tokens no target with ``require_depth: false`` and fails naming the sample
otherwise in training; the test and predict loaders compute no training targets, so
answering needs no geometry (except for a cue built from it, such as ground-truth camera
tokens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkspace.answers import parse_float
from thinkspace.data.datasets.benchmark import BenchmarkDataset
from thinkspace.data.datasets.scannet import SCANNET_FPS, load_posed_frames
from thinkspace.data.schema import VIDEO_DURATION, SpatialSample
from thinkspace.data.video import FrameSampling, read_video
from thinkspace.eval.vsibench import CHOICE_TYPES, NUMBER_TYPES
from thinkspace.records import field, read_table

PRE_PROMPT = "These are frames of a video."
CHOICE_POST_PROMPT = "Answer with the option's letter from the given choices directly."
NUMBER_POST_PROMPT = "Please answer the question using a single word or phrase."


def vsibench_prompt(question: str, options: list[str] | None) -> str:
    """The official VSI-Bench prompt of a question (options for multiple choice)."""
    if options:
        return "\n".join([PRE_PROMPT, question, "Options:\n" + "\n".join(options), CHOICE_POST_PROMPT])
    return "\n".join([PRE_PROMPT, question, NUMBER_POST_PROMPT])


class VSIBench(BenchmarkDataset):
    """VSI-Bench questions over videos.

    Args:
        path: the jsonl (or parquet) file.
        video_root: directory holding ``{dataset}/{scene_name}.mp4`` (default: the file's directory).
        num_frames: N, frames sampled per video (fewer if the video is shorter).
        question_types: keep only these types (``None``: all).
        skip_missing: drop questions whose video is missing (count in ``skipped``).
        limit: keep the first ``limit`` questions.
        frame_sampling: ``segment_centres`` or ``linspace`` (the official evaluation's rule).
        scannet_root: directory of ScanNet exports (``{scene}/color, depth, pose, intrinsic``):
            ScanNet records are read from there, with depth and poses; so are records with a
            ``sequence`` (``{scannet_root}/{sequence}``; the synthetic folder for its walks).
        fps: the ScanNet capture's frame rate, which times the exported frames.
    """

    benchmark = "vsibench"

    def __init__(
        self,
        path: str,
        video_root: str | None = None,
        num_frames: int = 16,
        question_types: list[str] | None = None,
        skip_missing: bool = False,
        limit: int | None = None,
        frame_sampling: FrameSampling = "segment_centres",
        scannet_root: str | None = None,
        fps: float = SCANNET_FPS,
    ) -> None:
        super().__init__(skip_missing, limit)
        self.frame_sampling = frame_sampling
        self.scannet_root = Path(scannet_root) if scannet_root is not None else None
        self.fps = fps
        self.path = Path(path)
        self.video_root = Path(video_root) if video_root is not None else self.path.parent
        self.num_frames = num_frames
        self.question_types = question_types

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for where, record in read_table(self.path):
            sample_id = str(field(record, "id", where, "question id"))
            kind = field(record, "question_type", where, "question type")
            field(record, "question", where, "question text")
            truth = field(record, "ground_truth", where, "gold answer")
            if kind in CHOICE_TYPES:
                options = field(record, "options", where, "multiple-choice options")
                letters = [str(o).strip()[:1] for o in options or []]
                if str(truth).strip().upper() not in letters:
                    raise ValueError(f"{where}: ground_truth {truth!r} of sample {sample_id!r} is not one of the "
                                     f"option letters {letters}")
            elif kind in NUMBER_TYPES:
                if parse_float(str(truth)) is None:
                    raise ValueError(f"{where}: ground_truth {truth!r} of sample {sample_id!r} is not a number")
            else:
                raise ValueError(f"{where}: unknown question_type {kind!r} of sample {sample_id!r}; expected "
                                 f"one of {list(CHOICE_TYPES + NUMBER_TYPES)}")
            if self.question_types is not None and kind not in self.question_types:
                continue
            entries.append({"where": where, "id": sample_id, "record": record})
        return entries

    def video_path(self, record: dict[str, Any]) -> Path:
        if record.get("video"):
            return self.video_root / record["video"]
        return self.video_root / str(record["dataset"]) / f"{record['scene_name']}.mp4"

    def scan_dir(self, record: dict[str, Any]) -> Path | None:
        """The ScanNet export of a ScanNet record, or a record's ``sequence`` folder (the synthetic
        world's posed frames), when ``scannet_root`` holds it."""
        if self.scannet_root is None:
            return None
        if record.get("sequence"):
            sequence = self.scannet_root / str(record["sequence"])
            return sequence if sequence.is_dir() else None
        if str(record.get("dataset")) != "scannet":
            return None
        scene = self.scannet_root / str(record["scene_name"])
        return scene if scene.is_dir() else None

    def _media(self, entry: dict[str, Any]) -> list[Path]:
        return [self.scan_dir(entry["record"]) or self.video_path(entry["record"])]

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        scan, geometry = self.scan_dir(record), None
        if scan is not None:
            posed = load_posed_frames(scan, self.num_frames, entry["id"], sampling=self.frame_sampling, fps=self.fps)
            frames, timestamps, indices, geometry = posed.frames, posed.timestamps, posed.indices, posed.geometry
            duration = posed.duration
            # the ScanNet export (the same frames as SQA3D's, ScanQA's, MSQA's of that scan) or the synthetic
            # walk's folder, relative to scannet_root: one name per scan, the camera cache's key
            source = scan.relative_to(self.scannet_root).as_posix()
        else:
            path = self.video_path(record)
            if not path.is_file():
                raise FileNotFoundError(f"video file {path} not found (sample {entry['id']!r}, {entry['where']})")
            clip = read_video(path, self.num_frames, allow_fewer=True, sampling=self.frame_sampling)
            frames, timestamps, indices, duration = clip.frames, clip.timestamps, clip.indices, clip.duration
            source = str(path.relative_to(self.video_root))
        kind = record["question_type"]
        choice = kind in CHOICE_TYPES
        truth = str(record["ground_truth"]).strip()
        return SpatialSample(
            id=entry["id"], source="vsibench", task=kind, frames=frames, geometry=geometry,
            prompt=vsibench_prompt(record["question"], record.get("options") if choice else None),
            response=truth, answer=truth if choice else float(truth), answer_type="choice" if choice else "number",
            timestamps=timestamps,
            meta={"scene_name": record.get("scene_name"), "scan": source, "dataset": record.get("dataset"),
                  "options": record.get("options"), "frame_indices": indices, "where": entry["where"],
                  VIDEO_DURATION: duration},
        )

    def prediction_record(self, index: int, response: str) -> dict[str, Any]:
        """The official record with the response in ``prediction``."""
        return dict(self.index[index]["record"]) | {"prediction": response}
