"""Camera turn: did the camera turn left or right between two views? A positive control.

"These views were taken from one spot. Between view 1 and view 2, did the camera turn to the
left or to the right?" The cameras stand at one spot near the room's middle; view 2 faces
``TURN`` (75 to 135 degrees) to the left or right of view 1, and a third view, if any, turns
again by as much either way from view 2. At a 60-degree field of view two views so far apart
share nothing, so the pixels say little about the turn (only the room's layout could), while
the cameras' poses hold the answer: the sign of view 2's yaw relative to view 1. It is the
study's positive control: a camera-pose cue must help here if it reaches the model at all.

Options are always ``A. left``, ``B. right`` (left = counter-clockwise seen from above); the
wanted answer is drawn before the scene, so each letter is right half the time. The answer is
read back from the rendered cameras' headings and asserted only ``MARGIN`` (30 degrees) clear
of 0 and 180 degrees.
"""

from __future__ import annotations

import numpy as np

from thinkspace.geometry import wrap_angle
from thinkspace.synth.cameras import heading_of, intrinsics, look_along
from thinkspace.synth.question import Question
from thinkspace.synth.scene import Scene

#: the option texts, in letter order; also the answers the generator draws from.
TURN_SIDES = ("left", "right")
#: the turn between consecutive views (rad): drawn in this range, left or right.
TURN = (np.radians(75), np.radians(135))
#: an answer's turn must lie this far (rad) from 0 and from 180 degrees.
MARGIN = np.radians(30)


def turn_side(first_cam: np.ndarray, second_cam: np.ndarray) -> str | None:
    """``"left"`` or ``"right"``: the turn from the first ``[4, 4]`` camera-from-room transform's
    heading to the second's; ``None`` within :data:`MARGIN` of straight on or of turning round."""
    turn = float(wrap_angle(heading_of(second_cam) - heading_of(first_cam)))
    if not MARGIN <= abs(turn) <= np.pi - MARGIN:
        return None
    return "left" if turn > 0 else "right"


def turn_cameras(scene: Scene, rng: np.random.Generator, n: int, size: int, eye_height: tuple[float, float],
                 pitch: float, want: str, fov_deg: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``n`` cameras ``[n, 4, 4]`` (camera from room) at one spot, view 2 turned ``want`` from view 1,
    and their intrinsics ``[3, 3]``; ``None`` when the drawn spot is too close to an object.

    Args:
        eye_height: range of the camera height (m); ``pitch``: downward tilt (rad).
    """
    xy = scene.draw_clear_spot(rng)
    if xy is None:
        return None
    eye = np.array([xy[0], xy[1], rng.uniform(*eye_height)])
    headings = [rng.uniform(-np.pi, np.pi)]
    for k in range(1, n):
        side = want if k == 1 else TURN_SIDES[int(rng.integers(2))]
        headings.append(headings[-1] + (1 if side == "left" else -1) * rng.uniform(*TURN))
    cams = np.stack([look_along(eye, h, pitch) for h in headings])
    return cams, intrinsics(size, size, fov_deg)


def ask_camera_turn(scene: Scene, view, seen: dict[str, list[int]], rng: np.random.Generator, k: int,
                    want: str) -> Question | None:
    """The turn question about views 1 and 2 whose answer is ``want``, read from the cameras
    (``None`` if they do not give it clearly). ``seen`` and ``k`` are unused: the question is
    about the cameras, not what they show; they keep the signature of the other families."""
    if want not in TURN_SIDES:
        raise ValueError(f"camera_turn: the wanted answer must be one of {TURN_SIDES}, got {want!r}")
    if len(view.cams) < 2 or turn_side(view.cams[0], view.cams[1]) != want:
        return None
    turn = float(wrap_angle(heading_of(view.cams[1]) - heading_of(view.cams[0])))
    text = ("These views were taken from one spot. Between view 1 and view 2, did the camera turn to the left or to "
            "the right?")
    facts = {"first": 0, "second": 1, "correct": want, "turn_deg": round(float(np.degrees(turn)), 3)}
    return Question("", "camera_turn", text, list(TURN_SIDES), "AB"[TURN_SIDES.index(want)], "choice", facts)
