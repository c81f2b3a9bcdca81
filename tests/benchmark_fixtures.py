"""Tiny hand-made files in each benchmark's official format (written into a temp dir)."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

#: camera 0 of the ScanNet fixture: at (2, 1, 1.5) in the scene frame, level, looking along +y.
CAM0_CENTRE = np.array([2.0, 1.0, 1.5])
LOOK_ALONG_Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # columns: right, down, forward


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def mindcube(root: Path) -> Path:
    """Three questions (among, around, translation) over two shared images."""
    image(root / "other_all_image" / "among" / "v0.jpg", (200, 0, 0))
    image(root / "other_all_image" / "among" / "v1.jpg", (0, 200, 0))
    views = ["other_all_image/among/v0.jpg", "other_all_image/among/v1.jpg"]
    return write_jsonl(root / "raw" / "MindCube_tinybench.jsonl", [
        {"id": "among_group001_q1_1_2", "category": ["among"], "type": "rotation",
         "question": "From view 2, where is the sofa? A. Left B. Right C. Behind", "images": views, "gt_answer": "B"},
        {"id": "around_scene_q3", "question": "Which is nearer?\nA. lamp\nB. desk", "images": views[:1],
         "gt_answer": "A"},
        {"id": "translation_x_q2", "question": "Did I move left? A. Yes B. No", "images": views, "gt_answer": "B"},
    ])


def thinker_cot(root: Path) -> Path:
    image(root / "imgs" / "a.png", (10, 20, 30))
    image(root / "imgs" / "b.png", (30, 20, 10))
    return write_jsonl(root / "cot.jsonl", [
        {"idx": "among_007", "text_input": "Where is the cup? A. left B. right",
         "image_input": ["imgs/a.png", "imgs/b.png"],
         "text_output": "<output_3D><think>The cup is right of the desk.</think><answer>B</answer>",
         "answer": "B. right"},
        {"idx": 8, "text_input": "Q?", "image_input": "imgs/a.png", "text_output": "<output_3D> A", "answer": "A"},
    ])


def video(path: Path, frames: int = 8, fps: float = 4.0, size: int = 32) -> Path:
    """An mp4 whose frame k is a flat grey of level 20 + 25 k (decodable by decord)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 + 25 * k, np.uint8), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def vsibench(root: Path) -> Path:
    video(root / "scannet" / "scene0000_00.mp4")
    return write_jsonl(root / "test.jsonl", [
        {"id": 1, "dataset": "scannet", "scene_name": "scene0000_00", "question_type": "object_counting",
         "question": "How many chair(s) are in this room?", "options": None, "ground_truth": "4"},
        {"id": 2, "dataset": "scannet", "scene_name": "scene0000_00", "question_type": "object_rel_direction_easy",
         "question": "Is the sofa left or right of the bed?", "options": ["A. left", "B. right"], "ground_truth": "B"},
    ])


def scannet_scene(root: Path, name: str = "scene0000_00") -> Path:
    """Four frames: 0, 1 and 3 posed (1 m steps along +y), 2 lost (-inf pose); depth 2 m."""
    scene = root / name
    for sub in ("color", "depth", "pose", "intrinsic"):
        (scene / sub).mkdir(parents=True, exist_ok=True)
    K = np.array([[30.0, 0, 16, 0], [0, 30.0, 12, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.savetxt(scene / "intrinsic" / "intrinsic_depth.txt", K)
    for k in range(4):
        image(scene / "color" / f"{k}.jpg", (40 * k, 80, 120), size=(64, 48))  # resized to depth's 32x24
        Image.fromarray(np.full((24, 32), 2000, np.uint16)).save(scene / "depth" / f"{k}.png")
        pose = np.eye(4)
        pose[:3, :3] = LOOK_ALONG_Y
        pose[:3, 3] = CAM0_CENTRE + np.array([0.0, float(k), 0.0])
        if k == 2:
            pose[:] = -np.inf
        np.savetxt(scene / "pose" / f"{k}.txt", pose)
    return scene


def sqa3d(root: Path) -> tuple[Path, Path]:
    """One situation 2 m ahead of camera 0, facing 0.5 rad left of the camera's heading."""
    scannet_scene(root / "scans")
    yaw = math.pi / 2 + 0.5
    questions = {"questions": [{"scene_id": "scene0000_00", "situation": "I am facing the window.",
                                "alternative_situation": [], "question": "What is on my left?",
                                "question_id": 220602000002}]}
    notes = {"annotations": [{"scene_id": "scene0000_00", "question_type": "N/A", "answer_type": "other",
                              "question_id": 220602000002,
                              "answers": [{"answer": "table", "answer_confidence": "yes", "answer_id": 1}],
                              "rotation": {"_x": 0, "_y": 0, "_z": math.sin(yaw / 2), "_w": math.cos(yaw / 2)},
                              "position": {"x": 2.0, "y": 3.0, "z": 0}}]}
    q = root / "v1_balanced_questions_test_scannetv2.json"
    a = root / "v1_balanced_sqa_annotations_test_scannetv2.json"
    q.write_text(json.dumps(questions))
    a.write_text(json.dumps(notes))
    return q, a


#: real SQA3D test records (scene0050_00), with their source and licence inside the file
SQA3D_RELEASED = Path(__file__).parent / "fixtures" / "sqa3d_test_scene0050_00.json"


def scannet_mesh(scene: Path, low: tuple[float, float, float], high: tuple[float, float, float]) -> Path:
    """``{scene}/{scene}_vh_clean_2.ply``: a box spanning ``low`` to ``high`` (m), written by open3d."""
    import open3d as o3d

    size = np.subtract(high, low)
    box = o3d.geometry.TriangleMesh.create_box(*size.tolist())
    box.translate(np.asarray(low, dtype=np.float64))
    path = scene / f"{scene.name}_vh_clean_2.ply"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert o3d.io.write_triangle_mesh(str(path), box)
    return path


def sqa3d_released(root: Path, ids: list[int] | None = None) -> tuple[Path, Path]:
    """SQA3D's released test records of scene0050_00 (``ids`` of them, default all five) in the
    official file layout, with a ScanNet-layout scene (:func:`scannet_scene`) whose mesh box spans
    (1, 2, 0) to (5, 4, 3) m: bounding-box centre (3, 3, 1.5) in the poses' frame."""
    released = json.loads(SQA3D_RELEASED.read_text())
    keep = lambda rows: [r for r in rows if ids is None or r["question_id"] in ids]  # noqa: E731
    scene = scannet_scene(root / "scans", "scene0050_00")
    scannet_mesh(scene, (1.0, 2.0, 0.0), (5.0, 4.0, 3.0))
    q = root / "v1_balanced_questions_test_scannetv2.json"
    a = root / "v1_balanced_sqa_annotations_test_scannetv2.json"
    q.write_text(json.dumps({"questions": keep(released["questions"])}))
    a.write_text(json.dumps({"annotations": keep(released["annotations"])}))
    return q, a


def sqa3d_localization(path: Path) -> Path:
    """The released records as SQA3D's localization file: one record per situation, in the
    format of the official ``assets/localization.md`` (rotation keys ``_w`` first, as there)."""
    released = json.loads(SQA3D_RELEASED.read_text())
    notes = {n["question_id"]: n for n in released["annotations"]}
    situations = {}
    for q in released["questions"]:
        n = notes[q["question_id"]]
        r = n["rotation"]
        situations.setdefault((q["scene_id"], q["situation"]), {
            "scene_id": q["scene_id"], "situation": q["situation"],
            "alternative_situation": q["alternative_situation"], "position": n["position"],
            "rotation": {"_w": r["_w"], "_x": r["_x"], "_y": r["_y"], "_z": r["_z"]}})
    path.write_text(json.dumps({"annotations": list(situations.values())}))
    return path


#: Ego3D-Bench views of the fixture, in the official order, each a distinct flat colour.
EGO3D_NUSCENES = {"Front_Left": (250, 0, 0), "Front": (0, 250, 0), "Front_Right": (0, 0, 250),
                  "Back_Right": (250, 250, 0), "Back": (0, 250, 250), "Back_Left": (250, 0, 250)}
EGO3D_WAYMO = {"Front": (10, 10, 10), "Front_Left": (60, 60, 60), "Side_Left": (110, 110, 110),
               "Front_Right": (160, 160, 160), "Side_Right": (210, 210, 210)}


def ego3d(root: Path) -> Path:
    """Two Ego3D-Bench rows in the dataset's layout (``images`` keys deliberately out of order):
    a nuScenes Localization question and a Waymo absolute-distance one."""
    def views(source: str, colours: dict) -> dict:
        return {v: str(image(root / "images" / f"{source}_{v}.png", c, (56, 28)).relative_to(root / "images"))
                for v, c in reversed(colours.items())}

    nuscenes_labels = "".join(f"{v.replace('_', ' ')} view: <image>\n" for v in EGO3D_NUSCENES)
    waymo_labels = "".join(f"{v.replace('_', ' ')} view: <image>\n" for v in EGO3D_WAYMO)
    return write_jsonl(root / "test.jsonl", [
        {"idx": 7, "question": "These are six camera views mounted on an ego car\n\n" + nuscenes_labels
         + "\nIf I stand at the location of the red bus in the front view facing north, is the ego car to my "
           "left, right, front, or back?",
         "options": ["A.Front", "B.Back", "C.Right", "D.Left"], "answer": "B", "category": "Localization",
         "source": "nuscenes", "images": views("nuscenes", EGO3D_NUSCENES)},
        {"idx": 8, "question": "These are five camera views mounted on an ego car\n\n" + waymo_labels
         + "How far, in meters, is the white suv in the front left view from the ego car?",
         "options": [], "answer": "27.29", "category": "Ego_Centric_Absolute_Distance", "source": "waymo",
         "images": views("waymo", EGO3D_WAYMO)},
    ])
