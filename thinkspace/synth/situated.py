"""Situated relative direction (SQA3D / VSI-Bench style): where is an object for someone
standing at one object and facing another?

"You stand at the red cube, facing the blue sphere. Is the green cone to your left, right,
front or back?" The observer stands at the first object's centre (floor position, room
frame) with its heading pointing at the second object's centre; the answer is the
direction of the third object's bearing, asserted only when the bearing lies within
``35`` degrees of that direction (10 degrees clear of every 45-degree boundary). Options
are always ``A. left``, ``B. right``, ``C. front``, ``D. back``; the wanted answer is drawn
before the scene, so each letter is right a quarter of the time.

The views are the ``leftmost`` arrangement (cameras about the group of objects, looking at
its middle); all three objects are visible in at least one view. The question carries the
situation (position and yaw, room frame), so the situation objective has a target.
"""

from __future__ import annotations

import numpy as np

from thinkspace.geometry import wrap_angle
from thinkspace.synth.question import Question
from thinkspace.synth.relations import DIRECTION, bearing, facing
from thinkspace.synth.scene import Scene

#: the option texts, in letter order; also the answers the generator draws from.
DIRECTIONS = ("left", "right", "front", "back")
#: an answer's bearing must lie within this of its direction (rad): 10 degrees clear of the boundaries.
WITHIN = np.radians(35)


def situated_direction(stand: np.ndarray, face: np.ndarray, target: np.ndarray) -> str | None:
    """Direction of ``target`` for an observer at ``stand`` facing ``face`` (room-frame points, x and y
    used): ``"left"``, ``"right"``, ``"front"``, ``"back"``, or ``None`` within 10 degrees of a boundary."""
    heading = facing(np.asarray(stand), np.asarray(face))
    a = bearing(np.asarray(stand), heading, np.asarray(target))
    for name in DIRECTIONS:
        if abs(float(wrap_angle(a - DIRECTION[name]))) <= WITHIN:
            return name
    return None


def situated_possible(scene: Scene, want: str) -> bool:
    """Can any three objects of ``scene`` give the answer ``want`` (visibility aside)? A cheap
    check before rendering: rooms that cannot are skipped unrendered."""
    objects = scene.objects
    return any(len({s.id, f.id, t.id}) == 3 and situated_direction(s.xy, f.xy, t.xy) == want
               for s in objects for f in objects for t in objects)


def ask_situated(scene: Scene, view, seen: dict[str, list[int]], rng: np.random.Generator, k: int,
                 want: str) -> Question | None:
    """A situated question whose answer is ``want`` (``None`` if no three visible objects give it).

    ``k`` is unused (the question is about the room, not one view); it keeps the signature
    of the other view-set questions.
    """
    if want not in DIRECTIONS:
        raise ValueError(f"situated: the wanted answer must be one of {DIRECTIONS}, got {want!r}")
    visible = [o for o in scene.objects if seen[o.name]]
    triples = [(s, f, t) for s in visible for f in visible for t in visible
               if len({s.id, f.id, t.id}) == 3 and situated_direction(s.xy, f.xy, t.xy) == want]
    if not triples:
        return None
    stand, face, target = triples[int(rng.integers(len(triples)))]
    yaw = facing(stand.xy, face.xy)
    situation = {"position": [round(float(stand.xy[0]), 4), round(float(stand.xy[1]), 4)],
                 "yaw": round(float(yaw), 6), "text": f"You stand at the {stand.name}, facing the {face.name}."}
    text = f"Is the {target.name} to your left, right, front or back?"
    facts = {"stand": stand.name, "facing": face.name, "target": target.name, "correct": want}
    return Question("", "situated", text, list(DIRECTIONS), "ABCD"[DIRECTIONS.index(want)], "choice", facts,
                    situation)
