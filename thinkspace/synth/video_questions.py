"""Questions about a video walk in the style of VSI-Bench, answered from the scene.

Question types (VSI-Bench's names): ``object_counting``, ``object_abs_distance``,
``object_size_estimation``, ``room_size_estimation`` (numeric answers) and
``object_rel_distance``, ``object_rel_direction_medium`` (choice answers). Only objects
seen in at least one frame are asked about. Deliberate difference from VSI-Bench:
distances are between object *centres* (VSI-Bench measures between closest points), so
every answer is exact and easy to recheck from ``scene.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from thinkspace.synth.question import Question, make_choice
from thinkspace.synth.relations import bearing, facing, left_right_back
from thinkspace.synth.scene import Scene

VIDEO_TASKS = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    "object_rel_direction_medium",
)


def _pick(rng: np.random.Generator, items: list, k: int) -> list:
    return [items[i] for i in rng.permutation(len(items))[:k]]


def _counting(scene: Scene, seen: list[str], rng: np.random.Generator) -> Question | None:
    counts = Counter(o.shape for o in scene.objects)
    shapes = sorted({o.shape for o in scene.objects if o.name in seen})
    shapes = [s for s in shapes if all(o.name in seen for o in scene.objects if o.shape == s)]
    if not shapes:
        return None
    shape = shapes[int(rng.integers(len(shapes)))]
    text = f"How many {shape}(s) are in this room?"
    return Question("", "object_counting", text, [], float(counts[shape]), "number", {"shape": shape})


def _abs_distance(scene: Scene, seen: list[str], rng: np.random.Generator) -> Question | None:
    if len(seen) < 2:
        return None
    a, b = (scene.by_name(n) for n in _pick(rng, seen, 2))
    d = round(float(np.linalg.norm(np.subtract(a.centre, b.centre))), 2)
    text = f"What is the direct distance between the centres of the {a.name} and the {b.name} (in meters)?"
    return Question("", "object_abs_distance", text, [], d, "number", {"objects": [a.name, b.name]})


def _size(scene: Scene, seen: list[str], rng: np.random.Generator) -> Question | None:
    obj = scene.by_name(_pick(rng, seen, 1)[0])
    cm = float(round(100 * max(obj.size)))
    text = (
        f"What is the length of the longest dimension (length, width, or height) of the {obj.name}, "
        "measured in centimeters?"
    )
    return Question("", "object_size_estimation", text, [], cm, "number", {"object": obj.name})


def _room(scene: Scene, seen: list[str], rng: np.random.Generator) -> Question | None:
    area = round(scene.size[0] * scene.size[1], 1)
    text = "What is the size of this room (in square meters)?"
    return Question("", "room_size_estimation", text, [], area, "number", {})


def _rel_distance(scene: Scene, seen: list[str], rng: np.random.Generator) -> Question | None:
    if len(seen) < 3:
        return None
    target = scene.by_name(_pick(rng, seen, 1)[0])
    candidates = _pick(rng, [n for n in seen if n != target.name], 4)
    dist = sorted((float(np.linalg.norm(scene.by_name(n).xy - target.xy)), n) for n in candidates)
    if len(dist) < 2 or dist[1][0] - dist[0][0] < 0.2:
        return None
    names = ", ".join(candidates)
    text = f"Measuring between object centres, which of these objects ({names}) is the closest to the {target.name}?"
    options, letter = make_choice(rng, dist[0][1], [n for _, n in dist[1:]], [])
    facts = {"target": target.name, "correct": dist[0][1]}
    return Question("", "object_rel_distance", text, options, letter, "choice", facts)


def _rel_direction(scene: Scene, seen: list[str], rng: np.random.Generator) -> Question | None:
    if len(seen) < 3:
        return None
    a, b, c = (scene.by_name(n) for n in _pick(rng, seen, 3))
    side = left_right_back(bearing(a.xy, facing(a.xy, b.xy), c.xy))
    if side is None:
        return None
    text = (
        f"If I am standing by the {a.name} and facing the {b.name}, is the {c.name} to my left, right, or back? "
        "An object is to my back if I would have to turn at least 135 degrees in order to face it."
    )
    options = ["left", "right", "back"]
    facts = {"standing": a.name, "facing": b.name, "query": c.name, "correct": side}
    return Question("", "object_rel_direction_medium", text, options, "ABC"[options.index(side)], "choice", facts)


ASK: dict[str, Callable[[Scene, list[str], np.random.Generator], Question | None]] = {
    "object_counting": _counting,
    "object_abs_distance": _abs_distance,
    "object_size_estimation": _size,
    "room_size_estimation": _room,
    "object_rel_distance": _rel_distance,
    "object_rel_direction_medium": _rel_direction,
}


def ask_video(scene: Scene, seen: list[str], task: str, rng: np.random.Generator, tries: int = 10) -> Question | None:
    """One question of type ``task`` about the objects named in ``seen`` (``None`` if none fits)."""
    if task not in ASK:
        raise ValueError(f"unknown video question type {task!r}; expected one of {VIDEO_TASKS}")
    if not seen:
        return None
    for _ in range(tries):
        q = ASK[task](scene, seen, rng)
        if q is not None:
            return q
    return None

