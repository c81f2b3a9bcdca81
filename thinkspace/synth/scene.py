"""Procedural rooms: a floor, four walls, a ceiling and 3 to 8 objects on the floor.

**Room frame** (the frame of ``scene.json`` and of every ``pose/N.txt`` on disk):
metres, +z up (gravity along -z), origin at the centre of the floor, +x along the
room's width, +y along its depth; the room spans ``[-w/2, w/2] x [-d/2, d/2] x [0, h]``.
An object's ``yaw`` (radians, counter-clockwise about +z) turns its local x axis from +x.

Samples handed to models are in the per-sample world frame of
:mod:`thinkspace.data.schema` instead; :func:`thinkspace.synth.cameras.world_from_room`
converts (origin at the first camera, +x along its heading, +z up).

Each object has a unique colour, so its name ("red cube") is unique in its scene;
shapes may repeat (which gives counting questions non-trivial answers).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from thinkspace.synth.meshes import SHAPES, Mesh, placed_mesh, quad

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 90, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 70, 190),
    "orange": (250, 130, 20),
    "cyan": (30, 200, 210),
    "pink": (245, 120, 190),
}
#: size ``(sx, sy, sz)`` of each shape relative to its scale ``s`` (metres).
ASPECT = {
    "cube": (1.0, 1.0, 1.0),
    "sphere": (1.0, 1.0, 1.0),
    "cylinder": (0.8, 0.8, 1.3),
    "cone": (1.0, 1.0, 1.3),
    "torus": (1.3, 1.3, 0.4),
    "pyramid": (1.1, 1.1, 1.0),
}
#: surfaces of the room: name -> RGB. Wall tints differ slightly so views can be told apart.
SURFACES: dict[str, tuple[int, int, int]] = {
    "floor": (150, 135, 115),
    "wall_east": (222, 212, 190),  # x = +w/2
    "wall_west": (196, 208, 222),  # x = -w/2
    "wall_north": (206, 222, 196),  # y = +d/2
    "wall_south": (224, 200, 204),  # y = -d/2
    "ceiling": (236, 236, 236),
}

FRAME_DOC = (
    "room frame: metres, +z up, origin at the centre of the floor, +x along the width, +y along the depth; "
    "yaw in radians counter-clockwise about +z from +x; poses are camera-to-room (OpenCV camera axes)"
)


@dataclass
class SceneObject:
    """One object resting on the floor.

    Attributes:
        id: 1-based instance id (the value in instance images).
        name: unique "colour shape" name, e.g. ``"red cube"``.
        shape: one of :data:`~thinkspace.synth.meshes.SHAPES`.
        colour: key of :data:`COLOURS`.
        centre: ``[3]`` centre of its bounding box in the room frame (m).
        size: ``[3]`` extent along its own x, y, z axes (m).
        yaw: rotation about +z (rad).
    """

    id: int
    name: str
    shape: str
    colour: str
    centre: list[float]
    size: list[float]
    yaw: float

    @property
    def radius(self) -> float:
        """Radius (m) of a vertical cylinder about the centre that holds the whole object."""
        return 0.5 * float(np.hypot(self.size[0], self.size[1]))

    @property
    def xy(self) -> np.ndarray:
        return np.asarray(self.centre[:2], dtype=np.float64)

    def mesh(self) -> Mesh:
        return placed_mesh(self.shape, np.asarray(self.centre), np.asarray(self.size), self.yaw)


@dataclass
class Scene:
    """A room and its objects, in the room frame (see the module docstring).

    Attributes:
        name: scene name, e.g. ``"scene00012"``.
        size: ``[3]`` room width (x), depth (y), height (z) in metres.
        objects: the objects, ids 1..N in order.
        seed: the integers the scene was generated from.
    """

    name: str
    size: list[float]
    objects: list[SceneObject]
    seed: list[int] = field(default_factory=list)

    @property
    def half(self) -> np.ndarray:
        """``[2]`` half width and half depth (m)."""
        return np.asarray(self.size[:2], dtype=np.float64) / 2

    def draw_clear_spot(self, rng: np.random.Generator, gap: float = 0.5) -> np.ndarray | None:
        """A ``[2]`` floor point (m) drawn in the room's middle, or ``None`` when it lies within
        ``gap`` of an object's footprint (the caller draws again: one draw per call keeps
        every generator's sequence, and so every written dataset, as it was)."""
        xy = rng.uniform(-0.5, 0.5, size=2) * (self.half - 0.8)
        if any(np.linalg.norm(xy - o.xy) < o.radius + gap for o in self.objects):
            return None
        return xy

    def by_name(self, name: str) -> SceneObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(f"scene {self.name} has no object named {name!r}")

    def surface_meshes(self) -> list[tuple[str, Mesh]]:
        """Floor, walls and ceiling as ``(surface name, mesh)``, in :data:`SURFACES` order."""
        w, d = self.half
        h = self.size[2]
        corners = {
            "floor": [(-w, -d, 0), (w, -d, 0), (w, d, 0), (-w, d, 0)],
            "wall_east": [(w, -d, 0), (w, d, 0), (w, d, h), (w, -d, h)],
            "wall_west": [(-w, d, 0), (-w, -d, 0), (-w, -d, h), (-w, d, h)],
            "wall_north": [(w, d, 0), (-w, d, 0), (-w, d, h), (w, d, h)],
            "wall_south": [(-w, -d, 0), (w, -d, 0), (w, -d, h), (-w, -d, h)],
            "ceiling": [(-w, -d, h), (-w, d, h), (w, d, h), (w, -d, h)],
        }
        return [(name, quad(np.array(corners[name], dtype=np.float64))) for name in SURFACES]

    def to_json(self) -> dict[str, Any]:
        w, d = self.half
        return {
            "name": self.name,
            "seed": list(self.seed),
            "frame": FRAME_DOC,
            "room": {"size": self.size, "bounds": [[-w, -d, 0.0], [w, d, self.size[2]]]},
            "objects": [asdict(o) | {"rgb": list(COLOURS[o.colour])} for o in self.objects],
        }

    def dumps(self) -> str:
        """``scene.json`` text: one key per line, one object per line."""
        data = self.to_json()
        objects = data.pop("objects")
        lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in data.items()]
        body = ",\n".join(f"  {json.dumps(o)}" for o in objects)
        return "{\n" + "\n".join(lines) + '\n "objects": [\n' + body + "\n ]\n}\n"


def _r(x: float) -> float:
    """Round to 0.1 mm so the JSON text is short and the same on every machine."""
    return round(float(x), 4)


def generate_scene(
    rng: np.random.Generator,
    name: str = "scene",
    num_objects: tuple[int, int] = (3, 8),
    seed: list[int] | None = None,
    wall_margin: float = 1.0,
    gap: float = 0.3,
    palette: tuple[str, ...] | None = None,
) -> Scene:
    """Draw a room and place objects without overlap.

    Args:
        rng: the only source of randomness (same state -> same scene).
        name: scene name.
        num_objects: inclusive range of the object count, within ``[1, 8]``.
        seed: recorded in the scene for provenance.
        wall_margin: free band (m) between the walls and any object, where cameras walk.
        gap: minimum free distance (m) between two objects' bounding cylinders.
        palette: colours to draw from (default: all of :data:`COLOURS`).

    Returns:
        A :class:`Scene`; its objects carry ids 1..N.
    """
    lo, hi = num_objects
    palette = tuple(palette or COLOURS)
    if not 1 <= lo <= hi <= len(palette):
        raise ValueError(f"num_objects must satisfy 1 <= lo <= hi <= {len(palette)} (colours), got {num_objects}")
    while True:
        size = [_r(rng.uniform(5.0, 8.0)), _r(rng.uniform(4.5, 7.0)), _r(rng.uniform(2.6, 3.0))]
        count = int(rng.integers(lo, hi + 1))
        colours = [str(c) for c in rng.permutation(list(palette))[:count]]
        objects: list[SceneObject] = []
        half = np.array(size[:2]) / 2 - wall_margin
        for i, colour in enumerate(colours):
            shape = str(SHAPES[int(rng.integers(len(SHAPES)))])
            scale = rng.uniform(0.35, 0.7)
            dims = [_r(scale * a) for a in ASPECT[shape]]
            yaw = _r(rng.uniform(-np.pi, np.pi)) if shape in ("cube", "pyramid") else 0.0
            radius = 0.5 * float(np.hypot(dims[0], dims[1]))
            for _ in range(200):
                xy = rng.uniform(-(half - radius), half - radius)
                if all(np.linalg.norm(xy - o.xy) >= radius + o.radius + gap for o in objects):
                    centre = [_r(xy[0]), _r(xy[1]), _r(dims[2] / 2)]
                    objects.append(SceneObject(i + 1, f"{colour} {shape}", shape, colour, centre, dims, yaw))
                    break
            else:
                break  # crowded: draw another room
        if len(objects) == count:
            return Scene(name=name, size=size, objects=objects, seed=list(seed or []))
