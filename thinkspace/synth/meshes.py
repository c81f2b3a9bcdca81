"""Triangle meshes of the synthetic world's primitives, built with numpy alone.

Every unit mesh fits the box ``[-0.5, 0.5]^3`` (x, y, z), so an object of size
``(sx, sy, sz)`` metres is the unit mesh scaled per axis, turned by its yaw about +z and
moved to its centre. Building the meshes here (not with open3d's ``create_*``) keeps
them identical across open3d versions, which the byte-identical output relies on.

Arrays: vertices ``[V, 3]`` float64 in metres, triangles ``[T, 3]`` int64 indices,
wound counter-clockwise seen from outside (the renderer does not rely on winding).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SHAPES = ("cube", "sphere", "cylinder", "cone", "torus", "pyramid")

Mesh = tuple[np.ndarray, np.ndarray]


def _box() -> Mesh:
    v = np.array([[x, y, z] for z in (-0.5, 0.5) for y in (-0.5, 0.5) for x in (-0.5, 0.5)], dtype=np.float64)
    # vertex index = x + 2 y + 4 z (each in {0, 1})
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    t = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return v, np.array(t, dtype=np.int64)


def _sphere(rings: int = 12, segments: int = 20) -> Mesh:
    verts = [(0.0, 0.0, 0.5)]
    for i in range(1, rings):
        theta = np.pi * i / rings
        for j in range(segments):
            phi = 2 * np.pi * j / segments
            verts.append((0.5 * np.sin(theta) * np.cos(phi), 0.5 * np.sin(theta) * np.sin(phi), 0.5 * np.cos(theta)))
    verts.append((0.0, 0.0, -0.5))
    tris = []
    bottom = len(verts) - 1
    for j in range(segments):
        k = (j + 1) % segments
        tris.append((0, 1 + j, 1 + k))
        last = 1 + (rings - 2) * segments
        tris.append((bottom, last + k, last + j))
    for i in range(rings - 2):
        a, b = 1 + i * segments, 1 + (i + 1) * segments
        for j in range(segments):
            k = (j + 1) % segments
            tris += [(a + j, b + j, b + k), (a + j, b + k, a + k)]
    return np.array(verts, dtype=np.float64), np.array(tris, dtype=np.int64)


def _lathe(profile: list[tuple[float, float]], segments: int = 24) -> Mesh:
    """Surface of revolution about z of ``(radius, z)`` points; zero radius closes a pole."""
    verts, rows = [], []
    for r, z in profile:
        if r == 0.0:
            rows.append([len(verts)])
            verts.append((0.0, 0.0, z))
        else:
            rows.append(list(range(len(verts), len(verts) + segments)))
            angles = 2 * np.pi * np.arange(segments) / segments
            verts += [(r * np.cos(a), r * np.sin(a), z) for a in angles]
    tris = []
    for lower, upper in zip(rows[:-1], rows[1:]):
        for j in range(segments):
            k = (j + 1) % segments
            if len(lower) == 1:
                tris.append((lower[0], upper[k], upper[j]))
            elif len(upper) == 1:
                tris.append((lower[j], lower[k], upper[0]))
            else:
                tris += [(lower[j], lower[k], upper[k]), (lower[j], upper[k], upper[j])]
    return np.array(verts, dtype=np.float64), np.array(tris, dtype=np.int64)


def _torus(segments: int = 28, sides: int = 12, tube: float = 0.16) -> Mesh:
    """Lying flat; outer radius 0.5 in x/y, height ``2 * tube`` rescaled to 1 in z."""
    major = 0.5 - tube
    verts = []
    for i in range(segments):
        phi = 2 * np.pi * i / segments
        for j in range(sides):
            theta = 2 * np.pi * j / sides
            r = major + tube * np.cos(theta)
            verts.append((r * np.cos(phi), r * np.sin(phi), 0.5 * np.sin(theta)))
    tris = []
    for i in range(segments):
        for j in range(sides):
            a, b = i * sides + j, ((i + 1) % segments) * sides + j
            c, d = ((i + 1) % segments) * sides + (j + 1) % sides, i * sides + (j + 1) % sides
            tris += [(a, b, c), (a, c, d)]
    return np.array(verts, dtype=np.float64), np.array(tris, dtype=np.int64)


def _pyramid() -> Mesh:
    v = np.array([[-0.5, -0.5, -0.5], [0.5, -0.5, -0.5], [0.5, 0.5, -0.5], [-0.5, 0.5, -0.5], [0, 0, 0.5]])
    t = np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]], dtype=np.int64)
    return v.astype(np.float64), t


@lru_cache(maxsize=None)
def unit_mesh(shape: str) -> Mesh:
    """The unit mesh of ``shape`` (one of :data:`SHAPES`), in ``[-0.5, 0.5]^3``."""
    if shape == "cube":
        return _box()
    if shape == "sphere":
        return _sphere()
    if shape == "cylinder":
        return _lathe([(0.0, -0.5), (0.5, -0.5), (0.5, 0.5), (0.0, 0.5)])
    if shape == "cone":
        return _lathe([(0.0, -0.5), (0.5, -0.5), (0.0, 0.5)])
    if shape == "torus":
        return _torus()
    if shape == "pyramid":
        return _pyramid()
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def placed_mesh(shape: str, centre: np.ndarray, size: np.ndarray, yaw: float) -> Mesh:
    """``shape`` scaled to ``size`` ``[3]`` (m), turned by ``yaw`` (rad) about +z, at ``centre`` ``[3]``."""
    v, t = unit_mesh(shape)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return (v * np.asarray(size)) @ rot.T + np.asarray(centre), t


def quad(corners: np.ndarray) -> Mesh:
    """Two triangles spanning four corners ``[4, 3]`` given in order around the quad."""
    return np.asarray(corners, dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)
