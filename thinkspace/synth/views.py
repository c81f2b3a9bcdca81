"""Limited-view image sets in the style of MindCube's settings, with choice questions.

Settings (``S`` = 2 to 4 views, all ``size x size`` pixels, 60 degree field of view):

* ``around``: cameras on a circle about a central object, 90 degrees apart
  (counter-clockwise seen from above), all looking at it. Asks what is left of, right
  of or behind the central object as seen from view k.
* ``among``: one spot near the room's middle, the camera turning 90 degrees to the left
  between views. Asks: facing object A, what is behind / left / right of you.
* ``rotation``: one spot, the camera turning 90 degrees to the right between views.
  Asks: facing as in view k, after turning left / right / around, what is in front.
* ``leftmost``: views around the group of objects; asks which object is furthest to
  the left in view k. The simplest family, learnable by tiny models.

Two families that need 3D, each with fixed options and an answer drawn before the scene
(``want``) so the letters are balanced: ``perspective`` (cross-view, on the ``around``
cameras: :mod:`thinkspace.synth.perspective`) and ``situated`` (relative direction from a
described position and heading, on the ``leftmost`` cameras:
:mod:`thinkspace.synth.situated`); and, balanced the same way, the positive control
``camera_turn`` (did the camera turn left or right between views 1 and 2, on cameras of
its own: :mod:`thinkspace.synth.camera_turn`). They are not in :data:`SETTINGS`, which the
``thinkspace synth`` writer iterates.

Answers come from the room-frame geometry (:mod:`thinkspace.synth.relations`), and an
answer object must be visible (enough pixels in its instance mask) in at least one view.
``viewpoint="held_out"`` raises the cameras to 1.9-2.2 m (standard: 1.2-1.6 m) for
the held-out-viewpoint test split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from thinkspace.synth.camera_turn import TURN_SIDES, ask_camera_turn, turn_cameras
from thinkspace.synth.cameras import centre_of, heading_of, intrinsics, look_along, look_at
from thinkspace.synth.perspective import SIDES, ask_perspective
from thinkspace.synth.question import Question, absent_names, make_choice
from thinkspace.synth.relations import bearing, behind_of, facing, in_direction, side_of
from thinkspace.synth.render import Frame, Renderer
from thinkspace.synth.scene import Scene
from thinkspace.synth.situated import DIRECTIONS, ask_situated, situated_possible

SETTINGS = ("around", "among", "rotation", "leftmost")
#: families with a wanted answer: name -> (the cameras they use, the answers drawn from).
BALANCED = {"perspective": ("around", SIDES), "situated": ("leftmost", DIRECTIONS),
            "camera_turn": ("camera_turn", TURN_SIDES)}
FOV_DEG = 60.0
EYE_HEIGHT = {"standard": (1.2, 1.6), "held_out": (1.9, 2.2)}
Viewpoint = Literal["standard", "held_out"]


@dataclass
class ViewSet:
    """Cameras of one image set.

    Attributes:
        setting: one of :data:`SETTINGS`.
        cams: ``[S, 4, 4]`` camera-from-room transforms (OpenCV axes).
        K: ``[3, 3]`` intrinsics shared by the views (pixels).
        size: image width = height (pixels).
        info: setting details (central object, spot, turn direction).
        frames: the rendered views, once rendered.
    """

    setting: str
    cams: np.ndarray
    K: np.ndarray
    size: int
    info: dict[str, Any] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)


def _inside(scene: Scene, xy: np.ndarray, margin: float) -> bool:
    return bool(np.all(np.abs(xy) <= scene.half - margin))


def _clear(scene: Scene, xy: np.ndarray, gap: float, skip: int = -1) -> bool:
    return all(np.linalg.norm(xy - o.xy) >= o.radius + gap for o in scene.objects if o.id != skip)


def _around(scene: Scene, rng: np.random.Generator, n: int, size: int, viewpoint: Viewpoint) -> ViewSet | None:
    centre = scene.objects[int(rng.integers(len(scene.objects)))]
    radius = centre.radius + rng.uniform(1.3, 2.2)
    start = rng.uniform(-np.pi, np.pi)
    height = rng.uniform(*EYE_HEIGHT[viewpoint])
    cams = []
    for k in range(n):
        theta = start + k * np.pi / 2
        xy = centre.xy + radius * np.array([np.cos(theta), np.sin(theta)])
        if not (_inside(scene, xy, 0.25) and _clear(scene, xy, 0.35, skip=centre.id)):
            return None
        cams.append(look_at(np.array([xy[0], xy[1], height]), np.asarray(centre.centre)))
    return ViewSet("around", np.stack(cams), intrinsics(size, size, FOV_DEG), size, {"central": centre.name})


def _leftmost(scene: Scene, rng: np.random.Generator, n: int, size: int, viewpoint: Viewpoint) -> ViewSet | None:
    target = np.mean([o.xy for o in scene.objects], axis=0)
    distance = rng.uniform(2.2, 3.6)
    start = rng.uniform(-np.pi, np.pi)
    height = rng.uniform(*EYE_HEIGHT[viewpoint])
    cams = []
    for k in range(n):
        theta = start + k * np.pi / 2
        xy = target + distance * np.array([np.cos(theta), np.sin(theta)])
        if not (_inside(scene, xy, 0.25) and _clear(scene, xy, 0.35)):
            return None
        cams.append(look_at(np.array([xy[0], xy[1], height]), np.array([target[0], target[1], 0.25])))
    return ViewSet("leftmost", np.stack(cams), intrinsics(size, size, FOV_DEG), size, {})


def _spot(
    scene: Scene, rng: np.random.Generator, setting: str, n: int, size: int, viewpoint: Viewpoint
) -> ViewSet | None:
    xy = scene.draw_clear_spot(rng)
    if xy is None:
        return None
    height = rng.uniform(*EYE_HEIGHT[viewpoint])
    pitch = np.radians(rng.uniform(20, 30)) + (np.radians(10) if viewpoint == "held_out" else 0.0)
    aim = scene.objects[int(rng.integers(len(scene.objects)))]
    start = facing(xy, aim.xy) + np.radians(rng.uniform(-15, 15))  # view 1 shows an object
    turn = np.pi / 2 if setting == "among" else -np.pi / 2
    eye = np.array([xy[0], xy[1], height])
    cams = np.stack([look_along(eye, start + k * turn, pitch) for k in range(n)])
    return ViewSet(setting, cams, intrinsics(size, size, FOV_DEG), size, {"turn": "left" if turn > 0 else "right"})


def sample_cameras(
    scene: Scene, setting: str, rng: np.random.Generator, num_views: int, size: int, viewpoint: Viewpoint = "standard",
    want: str | None = None,
) -> ViewSet | None:
    """One random camera arrangement for ``setting`` (``None`` if this draw does not fit the room);
    ``want``: the turn of ``camera_turn``'s view 2 (its cameras are made to give the answer)."""
    if setting == "camera_turn":
        pitch = np.radians(rng.uniform(20, 30)) + (np.radians(10) if viewpoint == "held_out" else 0.0)
        made = turn_cameras(scene, rng, num_views, size, EYE_HEIGHT[viewpoint], pitch, want, FOV_DEG)
        return None if made is None else ViewSet("camera_turn", made[0], made[1], size, {})
    if setting in BALANCED:
        view = sample_cameras(scene, BALANCED[setting][0], rng, num_views, size, viewpoint)
        if view is not None:
            view.setting = setting
        return view
    if setting == "around":
        return _around(scene, rng, num_views, size, viewpoint)
    if setting == "leftmost":
        return _leftmost(scene, rng, num_views, size, viewpoint)
    if setting in ("among", "rotation"):
        return _spot(scene, rng, setting, num_views, size, viewpoint)
    raise ValueError(f"unknown view setting {setting!r}; expected one of {SETTINGS + tuple(BALANCED)}")


def visibility(frames: list[Frame], scene: Scene) -> dict[str, list[int]]:
    """Object name -> indices of the views where its mask has enough pixels to be seen."""
    h, w = frames[0].instance.shape
    need = max(6, int(0.0015 * h * w))
    seen: dict[str, list[int]] = {o.name: [] for o in scene.objects}
    for k, frame in enumerate(frames):
        counts = np.bincount(frame.instance.ravel(), minlength=len(scene.objects) + 1)
        for o in scene.objects:
            if counts[o.id] >= need:
                seen[o.name].append(k)
    return seen


def _project(view: ViewSet, k: int, point: np.ndarray) -> tuple[float, float, float]:
    """``(u, v, z)`` of a room-frame point in view ``k``."""
    p = view.cams[k][:3, :3] @ np.asarray(point) + view.cams[k][:3, 3]
    uvw = view.K @ p
    return float(uvw[0] / p[2]), float(uvw[1] / p[2]), float(p[2])


def _q_around(scene, view, seen, rng, k) -> Question | None:
    central = scene.by_name(view.info["central"])
    if k not in seen[central.name]:
        return None
    eye, heading = centre_of(view.cams[k])[:2], heading_of(view.cams[k])
    others = [o for o in scene.objects if o.id != central.id]
    relation = str(rng.choice(["left", "right", "behind"]))
    if relation == "behind":
        label = {o.name: behind_of(eye, heading, central.xy, o.xy) for o in others}
        yes, no = [n for n, v in label.items() if v is True], [n for n, v in label.items() if v is False]
        text = f"Standing where view {k + 1} was taken, which object is behind the {central.name}?"
    else:
        label = {o.name: side_of(eye, heading, central.xy, o.xy) for o in others}
        yes = [n for n, v in label.items() if v == relation]
        no = [n for n, v in label.items() if v is not None and v != relation]
        text = f"Standing where view {k + 1} was taken, which object is to the {relation} of the {central.name}?"
    yes = [n for n in yes if seen[n]]
    if not yes:
        return None
    correct = str(yes[int(rng.integers(len(yes)))])
    options, letter = make_choice(rng, correct, no, absent_names(scene, rng))
    facts = {"view": k, "anchor": central.name, "relation": relation, "correct": correct}
    return Question("", "around", text, options, letter, "choice", facts)


def _q_among(scene, view, seen, rng, k) -> Question | None:
    eye = centre_of(view.cams[0])[:2]
    heading = heading_of(view.cams[k])
    anchors = [o for o in scene.objects if k in seen[o.name] and abs(bearing(eye, heading, o.xy)) <= np.radians(25)]
    if not anchors:
        return None
    anchor = anchors[int(rng.integers(len(anchors)))]
    face = facing(eye, anchor.xy)
    direction = str(rng.choice(["back", "left", "right"]))
    others = [o for o in scene.objects if o.id != anchor.id]
    yes = [o.name for o in others if seen[o.name] and in_direction(bearing(eye, face, o.xy), direction, np.radians(30))]
    no = [o.name for o in others if not in_direction(bearing(eye, face, o.xy), direction, np.radians(60))]
    if not yes:
        return None
    correct = str(yes[int(rng.integers(len(yes)))])
    where = {"back": "behind you", "left": "on your left", "right": "on your right"}[direction]
    text = (
        "These views were taken from one spot, turning 90 degrees to the left between consecutive views. "
        f"When you face the {anchor.name}, which object is {where}?"
    )
    options, letter = make_choice(rng, correct, no, absent_names(scene, rng))
    facts = {"anchor": anchor.name, "direction": direction, "correct": correct}
    return Question("", "among", text, options, letter, "choice", facts)


TURNS = {"left": np.pi / 2, "right": -np.pi / 2, "around": np.pi}


def _q_rotation(scene, view, seen, rng, k) -> Question | None:
    eye = centre_of(view.cams[0])[:2]
    turn = str(rng.choice(list(TURNS)))
    heading = heading_of(view.cams[k]) + TURNS[turn]
    angle = {o.name: abs(bearing(eye, heading, o.xy)) for o in scene.objects}
    yes = [n for n, a in angle.items() if a <= np.radians(20) and seen[n]]
    if len(yes) != 1 or any(np.radians(20) < a < np.radians(40) for a in angle.values()):
        return None
    no = [n for n, a in angle.items() if a >= np.radians(40)]
    how = {
        "left": "turn 90 degrees to the left",
        "right": "turn 90 degrees to the right",
        "around": "turn around (180 degrees)",
    }[turn]
    text = (
        "These views were taken from one spot, turning 90 degrees to the right between consecutive views. "
        f"Facing as in view {k + 1}, if you {how}, which object will be in front of you?"
    )
    options, letter = make_choice(rng, yes[0], no, absent_names(scene, rng))
    facts = {"view": k, "turn": turn, "correct": yes[0]}
    return Question("", "rotation", text, options, letter, "choice", facts)


def _q_leftmost(scene, view, seen, rng, k) -> Question | None:
    inside = []
    for o in scene.objects:
        u, v, z = _project(view, k, np.asarray(o.centre))
        in_frame = z > 0.3 and 0.04 * view.size <= u <= 0.96 * view.size and 0 <= v <= view.size
        if k in seen[o.name] and not in_frame:
            return None  # partly visible object with its centre outside: ambiguous
        if in_frame and k in seen[o.name]:
            inside.append((u, o.name))
    if len(inside) < 2:
        return None
    inside.sort()
    if inside[1][0] - inside[0][0] < 0.08 * view.size:
        return None
    correct = inside[0][1]
    options, letter = make_choice(rng, correct, [n for _, n in inside[1:]], absent_names(scene, rng))
    text = f"In view {k + 1}, which object is furthest to the left?"
    return Question("", "leftmost", text, options, letter, "choice", {"view": k, "correct": correct})


ASK: dict[str, Callable[..., Question | None]] = {
    "around": _q_around,
    "among": _q_among,
    "rotation": _q_rotation,
    "leftmost": _q_leftmost,
    "perspective": ask_perspective,
    "situated": ask_situated,
    "camera_turn": ask_camera_turn,
}


def make_view_set(
    scene: Scene,
    renderer: Renderer,
    setting: str,
    rng: np.random.Generator,
    num_views: int,
    size: int,
    num_questions: int = 1,
    viewpoint: Viewpoint = "standard",
    tries: int = 30,
    want: str | None = None,
) -> tuple[ViewSet, list[Question]] | None:
    """Sample cameras, render them and ask up to ``num_questions`` distinct questions.

    Returns ``None`` if no arrangement with an answerable question was found in
    ``tries`` draws. Question ids are left empty for the caller to fill in. ``want`` is
    the answer of a :data:`BALANCED` family's questions, drawn by the caller once per
    sample (drawing it per try would favour the answers that fit more often).
    """
    if not 1 <= num_views <= 4:
        raise ValueError(f"num_views must be in [1, 4] for view sets, got {num_views}")
    if (setting in BALANCED) != (want is not None):
        raise ValueError(f"make_view_set: {setting!r} needs a wanted answer exactly when it is one of "
                         f"{list(BALANCED)}; got want={want!r}")
    if want is not None and want not in BALANCED[setting][1]:
        raise ValueError(f"make_view_set: {setting!r}: the wanted answer must be one of {BALANCED[setting][1]}, "
                         f"got {want!r}")
    if setting == "camera_turn" and num_views < 2:
        raise ValueError(f"make_view_set: camera_turn asks about views 1 and 2, so it needs at least 2 views, "
                         f"got num_views={num_views}")
    extra = {} if want is None else {"want": want}
    if setting == "situated" and not situated_possible(scene, want):
        return None  # no three objects give this answer: skip the room before rendering it
    for _ in range(tries):
        view = sample_cameras(scene, setting, rng, num_views, size, viewpoint, want)
        if view is None:
            continue
        view.frames = renderer.render_many(view.cams, view.K, size, size)
        seen = visibility(view.frames, scene)
        questions: list[Question] = []
        for _ in range(4 * num_questions):
            q = ASK[setting](scene, view, seen, rng, int(rng.integers(num_views)), **extra)
            if q is not None and all(q.question != p.question for p in questions):
                questions.append(q)
            if len(questions) == num_questions:
                break
        if questions:
            return view, questions
    return None
