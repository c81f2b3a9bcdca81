"""An ego camera rig in a room and Ego3D-Bench-style questions about it.

Six cameras share one centre (the "ego car": an eye 1.2-1.6 m above the floor, tilted
20-30 degrees down), 60 degrees apart, each with a 60 degree field of view, so together
they see all around; names and order as nuScenes' rig in Ego3D-Bench (:data:`RIG`). The
front camera's heading is "north". Each question names objects by the view that shows
most of them ("the red cube in the back left view") and asks one of five Ego3D-Bench
categories that make sense on a room's floor plane (:data:`CATEGORIES`); distances are
between centres on the floor plane (x, y), metres, two decimals. Multiple-choice
answers are asserted only with a clear margin, as :mod:`thinkspace.synth.relations` does.

The question text is Ego3D-Bench's: "These are six camera views mounted on an ego car",
one "<label> view: <image>" line per camera, then the question.
"""

from __future__ import annotations

import numpy as np

from thinkspace.synth.cameras import intrinsics, look_along
from thinkspace.synth.question import Question
from thinkspace.synth.relations import bearing, in_direction
from thinkspace.synth.render import Frame, Renderer
from thinkspace.synth.scene import Scene

#: (view name, heading offset from the front camera in degrees, left positive), in Ego3D-Bench's nuScenes order.
RIG = (("Front_Left", 60.0), ("Front", 0.0), ("Front_Right", -60.0), ("Back_Right", -120.0), ("Back", 180.0),
       ("Back_Left", 120.0))
FOV_DEG = 60.0
CATEGORIES = ("Ego_Centric_Absolute_Distance", "Ego_Centric_Relative_Distance", "Object_Centric_Absolute_Distance",
              "Localization", "Ego_Centric_Motion_Reasoning")
YES_NO = ["yes", "no"]
SIDES = {"front": "Front", "back": "Back", "right": "Right", "left": "Left"}  # option order A-D as Ego3D-Bench's
MARGIN_M = 0.4  # relative distance: the nearer object is nearer by at least this much
MOVE_MARGIN_M = 0.2  # motion: the distance changes by at least this much
CLEAR_RAD = np.radians(30)  # localization: within 30 degrees of front / back / left / right
COMPASS = {"north": 0.0, "west": np.pi / 2, "south": np.pi, "east": -np.pi / 2}


def rig_cameras(scene: Scene, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          float] | None:
    """``(cams [6, 4, 4] camera-from-room, K [3, 3], eye [2] m, front heading rad)``, or ``None`` when
    the drawn spot is too close to an object."""
    xy = scene.draw_clear_spot(rng)
    if xy is None:
        return None
    height = rng.uniform(1.2, 1.6)
    pitch = np.radians(rng.uniform(20, 30))
    heading = float(rng.uniform(-np.pi, np.pi))
    eye = np.array([xy[0], xy[1], height])
    cams = np.stack([look_along(eye, heading + np.radians(offset), pitch) for _, offset in RIG])
    return cams, intrinsics(size, size, FOV_DEG), xy, heading


def best_views(frames: list[Frame], scene: Scene) -> dict[str, int]:
    """Object name -> the view with most of its pixels, for objects seen well enough somewhere."""
    h, w = frames[0].instance.shape
    need = max(6, int(0.0015 * h * w))
    counts = np.stack([np.bincount(f.instance.ravel(), minlength=len(scene.objects) + 1) for f in frames])
    return {o.name: int(np.argmax(counts[:, o.id])) for o in scene.objects if counts[:, o.id].max() >= need}


def preamble() -> str:
    """Ego3D-Bench's camera lines: one labelled image slot per view, in rig order."""
    lines = "".join(f"{name.replace('_', ' ')} view: <image>\n" for name, _ in RIG)
    return f"These are six camera views mounted on an ego car\n\n{lines}\n"


def ask_rig(scene: Scene, views: dict[str, int], eye: np.ndarray, heading: float, category: str,
            rng: np.random.Generator) -> Question | None:
    """One question of ``category`` about objects in ``views`` (``None`` when none is clear)."""
    names = sorted(views)
    if not names:
        return None
    picked = [names[i] for i in rng.permutation(len(names))]
    label = {n: f"the {n} in the {RIG[views[n]][0].replace('_', ' ').lower()} view" for n in names}
    centre = {n: scene.by_name(n).xy for n in names}
    dist = {n: float(np.linalg.norm(centre[n] - eye)) for n in names}
    x = picked[0]

    def about(a: str, b: str | None = None) -> dict:
        """Facts for a checker: the ego pose, the object(s) asked about and the views naming them."""
        out = {"eye": [float(eye[0]), float(eye[1])], "heading": heading, "object": a, "view": RIG[views[a]][0]}
        return out | ({"other": b, "other_view": RIG[views[b]][0]} if b else {})

    facts = about(x)
    if category == "Ego_Centric_Absolute_Distance":
        text = f"How far, in meters, is {label[x]} from the ego car?"
        return Question("", category, preamble() + text, [], round(dist[x], 2), "number", facts)
    if category == "Object_Centric_Absolute_Distance":
        if len(picked) < 2:
            return None
        y = picked[1]
        text = f"How far, in meters, is {label[x]} from {label[y]}?"
        return Question("", category, preamble() + text, [], round(float(np.linalg.norm(centre[x] - centre[y])), 2),
                        "number", about(x, y))
    if category == "Ego_Centric_Relative_Distance":
        pairs = [(a, b) for a in picked for b in picked if a < b and abs(dist[a] - dist[b]) >= MARGIN_M]
        if not pairs:
            return None
        a, b = pairs[int(rng.integers(len(pairs)))]
        a, b = (a, b) if rng.random() < 0.5 else (b, a)
        text = f"Is {label[a]} closer to the ego car than {label[b]}?"
        return Question("", category, preamble() + text, YES_NO, "A" if dist[a] < dist[b] else "B", "choice",
                        about(a, b))
    if category == "Localization":
        side = next((s for s in SIDES if in_direction(bearing(centre[x], heading, eye), s, CLEAR_RAD)), None)
        if side is None:
            return None
        text = (f"The front view corresponds to the north direction. If I stand at the location of {label[x]} "
                "facing north, is the ego car to my left, right, front, or back?")
        return Question("", category, preamble() + text, list(SIDES.values()), "ABCD"[list(SIDES).index(side)],
                        "choice", facts | {"side": side})
    if category == "Ego_Centric_Motion_Reasoning":
        direction = str(rng.choice(list(COMPASS)))
        metres = float(rng.choice([1.0, 1.5, 2.0]))
        angle = heading + COMPASS[direction]
        moved = float(np.linalg.norm(centre[x] - (eye + metres * np.array([np.cos(angle), np.sin(angle)]))))
        if abs(moved - dist[x]) < MOVE_MARGIN_M:
            return None
        text = (f"The front view corresponds to the north direction. If the ego car moves {metres:g} meters "
                f"{direction} while all other objects remain stationary, does the ego car get closer to {label[x]}?")
        return Question("", category, preamble() + text, YES_NO, "A" if moved < dist[x] else "B", "choice",
                        facts | {"direction": direction, "metres": metres})
    raise ValueError(f"unknown rig question category {category!r}; expected one of {', '.join(CATEGORIES)}")


def make_rig(scene: Scene, renderer: Renderer, rng: np.random.Generator, size: int,
             tries: int = 30) -> tuple[np.ndarray, np.ndarray, list[Frame], list[Question]] | None:
    """Cameras, intrinsics, the six rendered views and one question per category that fits."""
    for _ in range(tries):
        drawn = rig_cameras(scene, rng, size)
        if drawn is None:
            continue
        cams, K, eye, heading = drawn
        frames = renderer.render_many(cams, K, size, size)
        views = best_views(frames, scene)
        questions = [q for c in CATEGORIES if (q := ask_rig(scene, views, eye, heading, c, rng)) is not None]
        if questions:
            return cams, K, frames, questions
    return None
