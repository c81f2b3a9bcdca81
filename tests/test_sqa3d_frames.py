"""SQA3D's situation frame on a ScanNet-layout scene, with SQA3D's released test records.

The scene (``benchmark_fixtures.sqa3d_released``): camera 0 at (2, 1, 1.5) in the poses'
frame looking along +y, so the world frame maps a scene point (x, y) to (y - 1, 2 - x) and a
scene direction at angle a to a - pi/2; the mesh box spans (1, 2, 0) to (5, 4, 3), centre
(3, 3, 1.5). SQA3D's frame is the poses' frame minus that centre, and its agent faces -x
at rotation 0 (``utils/visualize_data.py``), so a rotation-vector z of r faces r + pi.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import benchmark_fixtures as fx
from thinkspace.data.datasets.scannet_mesh import MeshCentres, bounding_box_centre
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.geometry import quaternion_yaw

ARMCHAIR, BACKPACK = "220602000558", "220602002614"  # question ids of two released records


def released(tmp_path, **options) -> SQA3D:
    questions, annotations = fx.sqa3d_released(tmp_path)
    return SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), num_frames=8, **options)


def test_mesh_centre_is_read_cached_and_written_whole(tmp_path):
    mesh = fx.scannet_mesh(tmp_path / "scans" / "scene0050_00", (1.0, 2.0, 0.0), (5.0, 4.0, 3.0))
    assert bounding_box_centre(mesh).tolist() == pytest.approx([3.0, 3.0, 1.5])
    cache = tmp_path / "cache" / "centres.json"
    assert MeshCentres(tmp_path / "scans", cache)("scene0050_00").tolist() == pytest.approx([3.0, 3.0, 1.5])
    assert json.loads(cache.read_text()) == {"scene0050_00": pytest.approx([3.0, 3.0, 1.5])}
    assert [p.name for p in cache.parent.iterdir()] == ["centres.json"]  # no temporary file left behind
    mesh.unlink()  # a new reader takes the centre from the cache, not the mesh
    assert MeshCentres(tmp_path / "scans", cache)("scene0050_00").tolist() == pytest.approx([3.0, 3.0, 1.5])
    cache.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"centres.json: expected a JSON object \{scene_id: \[x, y, z\]\}"):
        MeshCentres(tmp_path / "scans", cache)


def test_a_released_situation_lands_where_the_official_frame_puts_it(tmp_path):
    data = released(tmp_path)
    armchair = data[data.positions_of([ARMCHAIR])[0]]
    # position (0.2575, 0.7354) + centre (3, 3) = (3.2575, 3.7354) in the poses' frame; rotation 0 faces -x
    assert armchair.situation.position == pytest.approx((3.7353865216659281 - 1, 2 - 3.2574522401031553))
    assert armchair.situation.yaw == pytest.approx(math.pi / 2)  # -x (angle pi) turned by -pi/2
    backpack = data[data.positions_of([BACKPACK])[0]]
    r = -2 * math.atan2(0.7402266184677825, 0.6723574594750541)  # rotation {_z 0.7402, _w -0.6724}: w < 0
    assert backpack.situation.position == pytest.approx((3.0724857979593705 - 1, 2 - 3.3908550741231956))
    assert backpack.situation.yaw == pytest.approx(r + math.pi - math.pi / 2)
    assert backpack.meta["scene_position"] == pytest.approx((0.3908550741231956, 0.07248579795937052))


def test_the_scene_frame_option_reads_positions_in_the_poses_frame_facing_plus_x(tmp_path):
    questions, annotations = fx.sqa3d(tmp_path)  # hand-made: no mesh, yaw 0 along +x
    data = SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), frame="scene")
    assert data[0].situation.position == pytest.approx((2.0, 0.0), abs=1e-9)
    assert data[0].situation.yaw == pytest.approx(0.5)
    record = data.prediction_record(0, "x", (2.0, 0.0, 0.5))  # back to the file's own numbers
    assert record["agent_pos"] == pytest.approx([2.0, 3.0, 0.0])
    assert quaternion_yaw(*record["agent_rot"]) == pytest.approx(math.pi / 2 + 0.5)
    with pytest.raises(ValueError, match=r"SQA3D frame: expected one of \['sqa3d', 'scene'\], got 'scannet'"):
        SQA3D(str(questions), str(annotations), frame="scannet")


def test_a_missing_mesh_names_the_file_and_the_sample(tmp_path):
    data = released(tmp_path, mesh_root=str(tmp_path / "meshes"))
    message = r"ScanNet mesh .*meshes/scene0050_00/scene0050_00_vh_clean_2.ply not found \(sample '220602000002'\)"
    with pytest.raises(FileNotFoundError, match=message):
        data[0]


def test_predicted_situations_round_trip_to_the_files_numbers(tmp_path):
    data = released(tmp_path)
    for i in range(len(data)):
        sample = data[i]
        record = data.prediction_record(i, "x", (*sample.situation.position, sample.situation.yaw))
        note = data.index[i]["note"]
        assert record["agent_pos"] == pytest.approx([note["position"]["x"], note["position"]["y"], 0.0])
        # the same turn about +z as the file's quaternion (which may carry the opposite sign)
        x, y, z, w = record["agent_rot"]
        assert (x, y) == (0.0, 0.0) and w >= 0
        assert quaternion_yaw(x, y, z, w) == pytest.approx(quaternion_yaw(*(note["rotation"][k] for k in
                                                                            ("_x", "_y", "_z", "_w"))))
    assert data.prediction_record(0, "x").keys().isdisjoint({"agent_pos", "agent_rot"})


def test_axis_alignment_does_not_move_a_situation_in_the_world_frame(tmp_path):
    plain = released(tmp_path)[3]
    scene = tmp_path / "scans" / "scene0050_00"
    c, s = math.cos(0.7), math.sin(0.7)
    align = np.array([[c, -s, 0, 0.4], [s, c, 0, -1.2], [0, 0, 1, 0.1], [0, 0, 0, 1]])
    (scene / "scene0050_00.txt").write_text("axisAlignment = " + " ".join(f"{v:.17g}" for v in align.ravel()) + "\n")
    aligned = released(tmp_path / "again", axis_align=True)
    (tmp_path / "again" / "scans" / "scene0050_00" / "scene0050_00.txt").write_text(
        (scene / "scene0050_00.txt").read_text())
    moved = aligned[3]
    assert moved.situation.position == pytest.approx(plain.situation.position)
    assert moved.situation.yaw == pytest.approx(plain.situation.yaw)
