"""Write synthetic scenes to disk in the formats the real dataset adapters read.

Tree under ``OUT`` (paths inside records are relative to ``OUT``)::

    meta.json                      # settings, frame conventions, counts
    splits.json                    # scene names per split: train, val, test, test_viewpoint
    scenes/sceneNNNNN/
      scene.json                   # room + objects, room frame (see thinkspace.synth.scene)
      questions.json               # this scene's records of every format below
      views/<setting>[_hv]/        # one image set (ScanNet conventions, N = 0..S-1)
        color/N.png  depth/N.png  instance/N.png  pose/N.txt  intrinsic.txt
      video/                       # one walk: the same per-frame files plus video.mp4
    mindcube/<split>.jsonl         # image-set questions (MindCube fields)
    vsibench/<split>.jsonl         # video questions (VSI-Bench fields)
    sqa3d/v1_balanced_questions_<split>_synthetic.json        # situations + questions
    sqa3d/v1_balanced_sqa_annotations_<split>_synthetic.json  # answers, position, rotation
    ego3d/<split>.jsonl            # --kind ego: camera-rig questions (Ego3D-Bench fields), views in scenes/*/ego/

``depth/N.png``: uint16 millimetres, 0 = no hit. ``pose/N.txt``: 4x4 camera-to-room
(OpenCV camera axes). ``intrinsic.txt``: 4x4 (pinhole in the top-left 3x3).
``instance/N.png``: uint8 object id from ``scene.json`` (0 = room). Splits go by scene
index: ``i % 10 == 8`` is val, ``i % 10 == 9`` test, the rest train; ``test_viewpoint``
asks about train scenes from camera heights never used in training (``_hv`` sets).

Each scene is written into a temporary directory and renamed into place, so a crash
never leaves a half-written scene; a rerun with the same settings skips finished scenes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from thinkspace.synth.cameras import yaw_quaternion
from thinkspace.synth.episodes import Episode, rig_episode, video_episode, view_episode
from thinkspace.synth.render import Renderer
from thinkspace.synth.rig import RIG
from thinkspace.synth.scene import FRAME_DOC, Scene, generate_scene
from thinkspace.synth.video_questions import VIDEO_TASKS
from thinkspace.synth.views import SETTINGS
from thinkspace.utils.file_modes import atomic_write

SPLITS = ("train", "val", "test", "test_viewpoint")
PNG_LEVEL = 1  # zlib level: 2-3x faster to write than the default 6, files about 25% larger
FORMATS = {"views": ("mindcube",), "video": ("vsibench", "sqa3d"), "all": ("mindcube", "vsibench", "sqa3d"),
           "ego": ("ego3d",)}


@dataclass(frozen=True)
class SynthConfig:
    """What a synthetic set is made from; the same config and seed give the same bytes.

    Attributes:
        seed: base seed; scene ``i`` depends on ``(seed, i)`` only.
        size: image width = height (pixels, even for the video encoder).
        kind: ``"views"``, ``"video"``, ``"all"`` (both) or ``"ego"`` (a camera rig, Ego3D-Bench-style).
        frames: frames per video walk.
        fps: video frame rate.
        num_objects: inclusive range of objects per room.
    """

    seed: int = 0
    size: int = 224
    kind: str = "all"
    frames: int = 32
    fps: float = 4.0
    num_objects: tuple[int, int] = (3, 8)


def scene_name(index: int) -> str:
    return f"scene{index:05d}"


def scene_split(index: int) -> str:
    """``val`` for ``index % 10 == 8``, ``test`` for ``9``, else ``train``."""
    return {8: "val", 9: "test"}.get(index % 10, "train")


def build_scene(index: int, config: SynthConfig, threads: int = 0) -> tuple[Scene, list[tuple[str, str, Episode]]]:
    """Generate scene ``index`` and its episodes as ``(sequence path, split, episode)``.

    The scene, its image sets, held-out-viewpoint sets and video each draw from their
    own child seed, so ``--kind views`` and ``--kind all`` agree on the shared parts.
    ``threads`` is the ray-casting thread count (0 = all cores); it never changes the output.
    """
    streams = np.random.SeedSequence([config.seed, index]).spawn(5)  # child i does not depend on the count
    scene_rng, views_rng, held_rng, video_rng, rig_rng = (np.random.default_rng(s) for s in streams)
    name = scene_name(index)
    scene = generate_scene(scene_rng, name, config.num_objects, [config.seed, index])
    renderer = Renderer(scene, threads)
    split = scene_split(index)
    episodes: list[tuple[str, str, Episode]] = []
    if config.kind in ("views", "all"):
        for setting in SETTINGS:
            n = int(views_rng.integers(2, 5))
            ep = view_episode(scene, renderer, setting, views_rng, n, config.size, num_questions=2)
            if ep is not None:
                episodes.append((f"views/{setting}", split, ep))
            if split == "train":
                n = int(held_rng.integers(2, 5))
                ep = view_episode(scene, renderer, setting, held_rng, n, config.size, 1, viewpoint="held_out")
                if ep is not None:
                    episodes.append((f"views/{setting}_hv", "test_viewpoint", ep))
    if config.kind in ("video", "all"):
        tasks = VIDEO_TASKS + ("situation", "situation")
        ep = video_episode(scene, renderer, video_rng, config.frames, config.size, tasks, config.fps)
        episodes.append(("video", split, ep))
    if config.kind == "ego":
        ep = rig_episode(scene, renderer, rig_rng, config.size)
        if ep is not None:
            episodes.append(("ego", split, ep))
    return scene, episodes


def write_sequence(directory: Path, episode: Episode) -> None:
    """Per-frame ``color``/``depth``/``instance`` PNGs, ``pose`` txt and ``intrinsic.txt``."""
    for sub in ("color", "depth", "instance", "pose"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    K4 = np.eye(4)
    K4[:3, :3] = episode.K
    np.savetxt(directory / "intrinsic.txt", K4, fmt="%.8f")
    for k, (frame, cam) in enumerate(zip(episode.frames, episode.cams)):
        Image.fromarray(frame.rgb).save(directory / "color" / f"{k}.png", compress_level=PNG_LEVEL)
        mm = np.clip(np.round(frame.depth.astype(np.float64) * 1000.0), 0, 65535).astype(np.uint16)
        Image.fromarray(mm).save(directory / "depth" / f"{k}.png", compress_level=PNG_LEVEL)
        Image.fromarray(frame.instance).save(directory / "instance" / f"{k}.png", compress_level=PNG_LEVEL)
        np.savetxt(directory / "pose" / f"{k}.txt", np.linalg.inv(cam), fmt="%.8f")


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """MPEG-4 (part 2) ``yuv420p`` video in an mp4 container of ``[H, W, 3]`` uint8 frames.

    FFmpeg's own MPEG-4 encoder with bit-exact flags gives the same bytes on every run;
    libx264 was seen to vary between runs here even single-threaded. decord, PyAV and
    torchvision all decode it.
    """
    import av

    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        stream.options = {"qscale": "2", "flags": "+bitexact"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def records(index: int, scene: Scene, episodes: list[tuple[str, str, Episode]]) -> list[dict[str, Any]]:
    """Question records of one scene: ``{"format", "split", "record"}`` (plus ``annotation`` for sqa3d)."""
    out: list[dict[str, Any]] = []
    base = f"scenes/{scene.name}"
    number = 0
    for path, split, ep in episodes:
        for j, q in enumerate(ep.questions):
            number += 1
            if ep.setting == "ego":
                q.id = str(index * 100 + number)
                out.append({"format": "ego3d", "split": split, "record": {
                    "idx": index * 100 + number,
                    "question": q.question,
                    "options": q.option_lines(),
                    "answer": q.response(),
                    "category": q.task,
                    "source": "synthetic",
                    "images": {name: f"{base}/{path}/color/{k}.png" for k, (name, _) in enumerate(RIG)},
                    "sequence": f"{base}/{path}",
                    "facts": q.facts,
                }})
            elif not ep.is_video:
                tag = "_hv" if ep.viewpoint == "held_out" else ""
                q.id = f"{ep.setting}_{scene.name}{tag}_q{j}"
                out.append({"format": "mindcube", "split": split, "record": {
                    "id": q.id,
                    "category": [ep.setting],
                    "type": q.task,
                    "question": "\n".join([q.question] + q.option_lines()),
                    "images": [f"{base}/{path}/color/{k}.png" for k in range(len(ep.frames))],
                    "gt_answer": q.answer,
                    "meta_info": {"scene": scene.name, "sequence": f"{base}/{path}", "viewpoint": ep.viewpoint,
                                  "options": q.options, "facts": q.facts},
                }})
            elif q.situation is None:
                q.id = str(index * 100 + number)
                out.append({"format": "vsibench", "split": split, "record": {
                    "id": index * 100 + number,
                    "dataset": "synthetic",
                    "scene_name": scene.name,
                    "question_type": q.task,
                    "question": q.question,
                    "options": q.option_lines() or None,
                    "ground_truth": q.response(),
                    "video": f"{base}/{path}/video.mp4",
                    "sequence": f"{base}/{path}",
                    "facts": q.facts,
                }})
            else:
                qid = index * 100 + number
                q.id = str(qid)
                by, face = q.facts["by"], q.facts["facing"]
                x, y = q.situation["position"]
                out.append({"format": "sqa3d", "split": split, "record": {
                    "alternative_situation": [f"I am next to the {by} and the {face} is in front of me."],
                    "question": q.question,
                    "question_id": qid,
                    "scene_id": scene.name,
                    "situation": q.situation["text"],
                    "options": q.option_lines(),
                    "video": f"{base}/{path}/video.mp4",
                    "sequence": f"{base}/{path}",
                }, "annotation": {
                    "answer_type": "other",
                    "answers": [{"answer": q.answer_text(), "answer_confidence": "yes", "answer_id": 1}],
                    "gt_answer": q.answer,
                    "position": {"x": x, "y": y, "z": 0.0},
                    "rotation": yaw_quaternion(q.situation["yaw"]),
                    "question_id": qid,
                    "question_type": q.task,
                    "scene_id": scene.name,
                    "facts": q.facts,
                }})
    return out


def write_scene(out: Path, index: int, config: SynthConfig, threads: int = 0) -> bool:
    """Write scene ``index`` under ``out/scenes`` atomically; ``False`` if it already exists."""
    final = out / "scenes" / scene_name(index)
    if final.exists():
        return False
    scene, episodes = build_scene(index, config, threads)
    tmp = out / "scenes" / f".partial-{scene_name(index)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        (tmp / "scene.json").write_text(scene.dumps())
        for path, _, ep in episodes:
            write_sequence(tmp / path, ep)
            if ep.is_video:
                write_mp4(tmp / path / "video.mp4", [f.rgb for f in ep.frames], config.fps)
        _write_json(tmp / "questions.json", records(index, scene, episodes))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _write_json(path: Path, data: Any, lines: bool = False) -> None:
    """Write JSON (or JSON lines) atomically (:func:`~thinkspace.utils.file_modes.atomic_write`)."""
    text = "".join(json.dumps(r) + "\n" for r in data) if lines else json.dumps(data, indent=1) + "\n"
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_index(out: Path, num_scenes: int, config: SynthConfig) -> dict[str, int]:
    """Gather the scenes' records into the per-format split files, ``splits.json`` and ``meta.json``.

    Returns:
        Number of questions per split.
    """
    formats = FORMATS[config.kind]
    gathered: dict[str, dict[str, list]] = {f: {s: [] for s in SPLITS} for f in formats}
    notes: dict[str, list] = {s: [] for s in SPLITS}
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for index in range(num_scenes):
        name = scene_name(index)
        splits[scene_split(index)].append(name)
        if scene_split(index) == "train" and config.kind in ("views", "all"):
            splits["test_viewpoint"].append(name)
        for item in json.loads((out / "scenes" / name / "questions.json").read_text()):
            gathered[item["format"]][item["split"]].append(item["record"])
            if item["format"] == "sqa3d":
                notes[item["split"]].append(item["annotation"])
    counts = {s: 0 for s in SPLITS}
    for fmt in formats:
        (out / fmt).mkdir(exist_ok=True)
        for split, rows in gathered[fmt].items():
            if split == "test_viewpoint" and fmt != "mindcube":
                continue  # held-out viewpoints are image sets only
            counts[split] += len(rows)
            if fmt in ("mindcube", "ego3d") or fmt == "vsibench":
                _write_json(out / fmt / f"{split}.jsonl", rows, lines=True)
            else:
                _write_json(out / fmt / f"v1_balanced_questions_{split}_synthetic.json", {"questions": rows})
                name = f"v1_balanced_sqa_annotations_{split}_synthetic.json"
                _write_json(out / fmt / name, {"annotations": notes[split]})
    _write_json(out / "splits.json", splits)
    _write_json(out / "meta.json", meta(config, num_scenes, counts))
    return counts


def meta(config: SynthConfig, num_scenes: int, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "generator": "thinkspace.synth",
        "format_version": 1,
        "config": asdict(config) | {"num_objects": list(config.num_objects)},
        "scenes": num_scenes,
        "questions": counts,
        "frame": FRAME_DOC,
        "depth": "depth/N.png: uint16 millimetres along the camera z axis, 0 = no hit",
        "pose": "pose/N.txt: 4x4 camera-to-room, OpenCV camera axes (x right, y down, z forward)",
        "intrinsic": "intrinsic.txt: 4x4, pinhole matrix in pixels in the top-left 3x3, pixel centres at integers",
        "instance": "instance/N.png: uint8 object id of scene.json, 0 = room surfaces or no hit",
    }


def check_config(out: Path, config: SynthConfig) -> None:
    """Fail if ``out`` already holds a set made with other settings, or files synth did not write.

    Without ``meta.json`` (written last) the folder may hold only what an interrupted run leaves:
    ``scenes/`` with finished scenes and temporary ``.partial-*``/``.probe-*`` entries. Anything
    else (a user's ``mindcube/train.jsonl``, ...) would be overwritten: refused, named.
    """
    path = out / "meta.json"
    if not path.exists():
        foreign = [p for p in out.iterdir() if p.name != "scenes"] if out.is_dir() else []
        if (out / "scenes").is_dir():
            foreign += [p for p in (out / "scenes").iterdir() if not _written_by_synth(p.name)]
        if foreign:
            shown = ", ".join(str(p) for p in sorted(foreign)[:3]) + (" ..." if len(foreign) > 3 else "")
            raise ValueError(f"--out {out} holds files thinkspace synth did not write ({shown}); expected an empty "
                             "folder or one synth wrote; choose another --out")
        return
    old = json.loads(path.read_text()).get("config", {})
    new = meta(config, 0, {})["config"]
    diff = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
    if diff:
        details = ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in diff.items())
        raise ValueError(
            f"--out {out} already holds a synthetic set made with {details}; choose another --out or delete it"
        )


def _written_by_synth(name: str) -> bool:
    """A name synth writes under ``scenes/``: a scene, or a temporary entry of one."""
    return name.startswith((".partial-", ".probe-")) or (name.startswith("scene") and name[5:].isdigit())


def clean_partials(out: Path) -> None:
    """Remove scene directories left half-written by an interrupted run (one writer per ``out``)."""
    for stale in (out / "scenes").glob(".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
