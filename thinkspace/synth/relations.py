"""Egocentric spatial relations on the floor plane, with margins that keep answers clear.

Everything is 2D (x, y in the room frame, metres). An observer at ``eye`` facing
``heading`` (rad about +z from +x) sees a point at *bearing* ``a`` (rad): 0 straight
ahead, positive to the left (counter-clockwise from above), ``+-pi`` behind. A relation
is only asserted when the geometry is clear of the decision boundary by a margin, and a
point is only called "clearly not" in a relation when it is far from it; points in the
band between are never used as answers or distractors.
"""

from __future__ import annotations

import numpy as np

from thinkspace.geometry import wrap_angle


def bearing(eye: np.ndarray, heading: float, point: np.ndarray) -> float:
    """Bearing (rad, in ``[-pi, pi)``, positive = left) of ``point`` ``[2]`` seen from ``eye`` ``[2]``."""
    d = np.asarray(point, dtype=np.float64)[:2] - np.asarray(eye, dtype=np.float64)[:2]
    return float(wrap_angle(np.arctan2(d[1], d[0]) - heading))


def ego(eye: np.ndarray, heading: float, point: np.ndarray) -> tuple[float, float]:
    """``(forward, left)`` coordinates (m) of ``point`` in the observer's floor frame."""
    d = np.asarray(point, dtype=np.float64)[:2] - np.asarray(eye, dtype=np.float64)[:2]
    c, s = np.cos(heading), np.sin(heading)
    return float(d[0] * c + d[1] * s), float(-d[0] * s + d[1] * c)


def facing(eye: np.ndarray, target: np.ndarray) -> float:
    """Heading (rad) from ``eye`` towards ``target`` (both ``[2]`` or more, x and y used)."""
    d = np.asarray(target, dtype=np.float64)[:2] - np.asarray(eye, dtype=np.float64)[:2]
    return float(np.arctan2(d[1], d[0]))


DIRECTION = {"front": 0.0, "left": np.pi / 2, "back": np.pi, "right": -np.pi / 2}


def in_direction(a: float, direction: str, within: float) -> bool:
    """Is bearing ``a`` within ``within`` rad of ``direction`` (front/left/back/right)?"""
    return abs(float(wrap_angle(a - DIRECTION[direction]))) <= within


def left_right_back(a: float, margin: float = np.radians(10)) -> str | None:
    """VSI-Bench's three-way relation: back if turning at least 135 degrees, else left/right.

    Returns ``None`` within ``margin`` of a boundary (0, +-135 degrees, 180 degrees).
    """
    deg135 = np.radians(135)
    if abs(abs(a) - deg135) < margin or abs(a) < margin:
        return None
    if abs(a) >= deg135:
        return "back"
    return "left" if a > 0 else "right"


def side_of(eye: np.ndarray, heading: float, anchor: np.ndarray, point: np.ndarray, margin: float = 0.35) -> str | None:
    """Is ``point`` left or right of ``anchor`` for the observer, by at least ``margin`` metres?

    Uses the lateral ego coordinate; both must be in front of the observer.
    """
    fa, la = ego(eye, heading, anchor)
    fp, lp = ego(eye, heading, point)
    if fa <= 0.2 or fp <= 0.2:
        return None
    if lp - la >= margin:
        return "left"
    if la - lp >= margin:
        return "right"
    return None


def behind_of(eye: np.ndarray, heading: float, anchor: np.ndarray, point: np.ndarray) -> bool | None:
    """Is ``point`` behind ``anchor`` as the observer sees it?

    True when it is at least 0.4 m farther along the heading and within 0.45 m
    laterally; False when it is nearer by 0.3 m or off by 0.9 m laterally; else None.
    """
    fa, la = ego(eye, heading, anchor)
    fp, lp = ego(eye, heading, point)
    if fp - fa >= 0.4 and abs(lp - la) <= 0.45:
        return True
    if fp - fa <= -0.3 or abs(lp - la) >= 0.9:
        return False
    return None
