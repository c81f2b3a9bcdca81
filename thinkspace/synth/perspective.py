"""Cross-view perspective taking (MindCube-style): a relation asked in one view's frame,
about objects that view does not show together.

Cameras stand on a circle about a central object, 90 degrees apart counter-clockwise
seen from above, all looking at it (the ``around`` arrangement of
:mod:`thinkspace.synth.views`). The question: "Standing where view k was taken, facing
the way it faces, is the X to the left or to the right of the Y?" Options are always
``A. left``, ``B. right``; the wanted answer is drawn before the scene, so each letter is
right half the time.

Why it needs more than one view: X and Y are never both visible in view k (one is
outside its field of view or hidden), and they are both visible together in another
view j. The relation is read in view j and turned into view k's frame by the rotation
between the two cameras (90, 180 or 270 degrees about the central object): at 180 degrees
left and right swap, at 90 degrees left/right in view k is near/far in view j.
"""

from __future__ import annotations

import numpy as np

from thinkspace.synth.cameras import centre_of, heading_of
from thinkspace.synth.question import Question
from thinkspace.synth.relations import side_of
from thinkspace.synth.scene import Scene

#: the option texts, in letter order; also the answers the generator draws from.
SIDES = ("left", "right")


def perspective_side(cam_from_room: np.ndarray, first: np.ndarray, second: np.ndarray) -> str | None:
    """Is ``first`` left or right of ``second`` (room-frame ``[2]`` or ``[3]`` points) for an observer
    standing at the camera's centre, facing its heading? ``None`` when it is not clear
    (less than 0.35 m apart sideways, or either point not at least 0.2 m in front)."""
    eye, heading = centre_of(cam_from_room)[:2], heading_of(cam_from_room)
    return side_of(eye, heading, np.asarray(second)[:2], np.asarray(first)[:2])


def ask_perspective(scene: Scene, view, seen: dict[str, list[int]], rng: np.random.Generator, k: int,
                    want: str) -> Question | None:
    """A perspective question in view ``k``'s frame whose answer is ``want`` (``None`` if none fits).

    Args:
        view: a :class:`~thinkspace.synth.views.ViewSet` of the ``around`` arrangement.
        seen: object name -> views where it is visible.
        want: ``"left"`` or ``"right"``.
    """
    if want not in SIDES:
        raise ValueError(f"perspective: the wanted answer must be one of {SIDES}, got {want!r}")
    pairs = []
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1:]:
            both = set(seen[a.name]) & set(seen[b.name])
            if k in both or not both:
                continue  # readable in view k alone, or never seen together
            side = perspective_side(view.cams[k], a.xy, b.xy)
            if side is not None:
                pairs.append((a, b, side, sorted(both)))
    if not pairs:
        return None
    a, b, side, together = pairs[int(rng.integers(len(pairs)))]
    first, second = (a, b) if side == want else (b, a)  # swapping the pair swaps the answer
    central = view.info["central"]
    text = (f"The views were taken around the {central}, 90 degrees apart counter-clockwise seen from above. "
            f"Standing where view {k + 1} was taken, facing the way it faces, is the {first.name} to the left or "
            f"to the right of the {second.name}?")
    facts = {"view": k, "first": first.name, "second": second.name, "together_in": together,
             "correct": want, "central": central}
    return Question("", "perspective", text, list(SIDES), "AB"[SIDES.index(want)], "choice", facts)
