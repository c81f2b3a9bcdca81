"""Situations in the style of SQA3D: where the agent stands and faces, and a situated question.

"I am standing by the red cube, facing the blue sphere." places the agent 0.4 m
outside the red cube's bounding cylinder, on a free side, with its heading pointing at
the blue sphere. The position ``(x, y)`` and yaw (rad about +z from +x) are exact, in
the room frame; :mod:`thinkspace.synth.episodes` converts them into a sample's world
frame. The question asks what lies left of, right of or behind the agent.
"""

from __future__ import annotations

import numpy as np

from thinkspace.synth.question import Question, absent_names, make_choice
from thinkspace.synth.relations import bearing, facing, in_direction
from thinkspace.synth.scene import Scene

WHERE = {"left": "on my left", "right": "on my right", "back": "behind me"}


def make_situation(scene: Scene, seen: list[str], rng: np.random.Generator, tries: int = 20) -> Question | None:
    """A situated choice question about objects in ``seen``; ``None`` if none fits."""
    if len(seen) < 3:
        return None
    for _ in range(tries):
        by, face = (scene.by_name(n) for n in (seen[i] for i in rng.permutation(len(seen))[:2]))
        angle = rng.uniform(-np.pi, np.pi)
        xy = by.xy + (by.radius + 0.4) * np.array([np.cos(angle), np.sin(angle)])
        if np.any(np.abs(xy) > scene.half - 0.3):
            continue
        if any(np.linalg.norm(xy - o.xy) < o.radius + 0.3 for o in scene.objects if o.id != by.id):
            continue
        if np.linalg.norm(face.xy - xy) < 1.0:
            continue
        yaw = facing(xy, face.xy)
        direction = str(rng.choice(list(WHERE)))
        others = [o for o in scene.objects if o.id not in (by.id, face.id)]
        angle = {o.name: bearing(xy, yaw, o.xy) for o in others}
        yes = [n for n, a in angle.items() if n in seen and in_direction(a, direction, np.radians(35))]
        no = [n for n, a in angle.items() if not in_direction(a, direction, np.radians(65))]
        no.append(face.name)
        if not yes:
            continue
        correct = yes[int(rng.integers(len(yes)))]
        options, letter = make_choice(rng, correct, no, absent_names(scene, rng))
        text = f"I am standing by the {by.name}, facing the {face.name}."
        position = [round(float(xy[0]), 4), round(float(xy[1]), 4)]
        situation = {"position": position, "yaw": round(float(yaw), 6), "text": text}
        facts = {"by": by.name, "facing": face.name, "direction": direction, "correct": correct}
        question = f"Which object is {WHERE[direction]}?"
        return Question("", "situation", question, options, letter, "choice", facts, situation)
    return None
