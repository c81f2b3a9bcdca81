"""``MeshCentres``: the axis-aligned bounding-box centre of each ScanNet scene mesh.

SQA3D gives situations relative to this centre: its official visualiser
(``utils/visualize_data.py``) loads ``{scene}/{scene}_vh_clean_2.ply`` from the raw
ScanNet scans, takes ``(max + min) / 2`` of the vertices and translates the mesh by minus
it before placing the agent. The centre is in ScanNet's scene frame (the frame of the
camera poses, not axis-aligned), metres.

Centres are kept in memory and, with ``cache``, in a small JSON file
``{"scene0000_00": [x, y, z], ...}``; the file is rewritten through a temporary file and
a rename, so a reader never sees it half-written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from thinkspace.utils.file_modes import atomic_write


def mesh_file(mesh_root: str | Path, scene_id: str) -> Path:
    """``{mesh_root}/{scene_id}/{scene_id}_vh_clean_2.ply``, ScanNet's layout of its scans."""
    return Path(mesh_root) / scene_id / f"{scene_id}_vh_clean_2.ply"


def bounding_box_centre(path: str | Path) -> np.ndarray:
    """``[3]`` float64 ``(max + min) / 2`` of the vertices of a mesh file (metres).

    Raises:
        FileNotFoundError: no such file.
        ValueError: open3d reads no vertex from it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh {path} not found")
    import open3d as o3d

    vertices = np.asarray(o3d.io.read_triangle_mesh(str(path)).vertices, dtype=np.float64)
    if len(vertices) == 0:  # a point-only PLY is still a valid scene cloud
        vertices = np.asarray(o3d.io.read_point_cloud(str(path)).points, dtype=np.float64)
    if len(vertices) == 0:
        raise ValueError(f"mesh {path}: no vertices read (expected ScanNet's *_vh_clean_2.ply)")
    return (vertices.max(axis=0) + vertices.min(axis=0)) / 2.0


class MeshCentres:
    """Bounding-box centres of scene meshes, computed once per scene.

    Args:
        mesh_root: folder of ScanNet scene folders holding ``{scene}_vh_clean_2.ply``.
        cache: optional JSON file of centres, read at start and updated after each new scene.
    """

    def __init__(self, mesh_root: str | Path, cache: str | Path | None = None) -> None:
        self.mesh_root = Path(mesh_root)
        self.cache = Path(cache) if cache is not None else None
        self.centres: dict[str, np.ndarray] = {}
        if self.cache is not None and self.cache.is_file():
            try:
                stored = json.loads(self.cache.read_text())
                self.centres = {k: np.asarray(v, dtype=np.float64).reshape(3) for k, v in stored.items()}
            except (json.JSONDecodeError, AttributeError, ValueError) as err:
                raise ValueError(f"{self.cache}: expected a JSON object {{scene_id: [x, y, z]}} ({err})") from err

    def __call__(self, scene_id: str, sample_id: str | None = None) -> np.ndarray:
        """``[3]`` centre of ``scene_id``'s mesh in its scene frame, metres.

        Raises:
            FileNotFoundError: the mesh is missing (message names the file and the sample).
        """
        if scene_id not in self.centres:
            path = mesh_file(self.mesh_root, scene_id)
            if not path.is_file():
                who = f" (sample {sample_id!r})" if sample_id is not None else ""
                raise FileNotFoundError(
                    f"ScanNet mesh {path} not found{who}: SQA3D positions are relative to the centre of its "
                    "bounding box; set mesh_root to the ScanNet scans folder")
            self.centres[scene_id] = bounding_box_centre(path)
            self._write()
        return self.centres[scene_id]

    def _write(self) -> None:
        if self.cache is None:
            return
        data = {k: [float(x) for x in v] for k, v in sorted(self.centres.items())}
        with atomic_write(self.cache) as temp, open(temp, "w") as out:
            json.dump(data, out, indent=1)
