"""Bad ScanNet scene files are refused naming the file, never silently used."""

import numpy as np
import pytest
from benchmark_fixtures import scannet_scene
from PIL import Image

from thinkspace.data.datasets.scannet import load_posed_frames


def _pose(scene, k):
    return np.loadtxt(scene / "pose" / f"{k}.txt")


def test_all_zero_pose_names_the_file(tmp_path):
    scene = scannet_scene(tmp_path)
    np.savetxt(scene / "pose" / "1.txt", np.zeros((4, 4)))
    pose = scene / "pose" / "1.txt"
    with pytest.raises(ValueError, match=rf"{pose}: the last row of a pose is \[0.0, 0.0, 0.0, 0.0\]"):
        load_posed_frames(scene, 3)


@pytest.mark.parametrize("name, block", [("scaled", np.diag([2.0, 2.0, 2.0])),
                                         ("sheared", np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])),
                                         ("mirrored", np.diag([1.0, 1.0, -1.0]))])
def test_non_rigid_pose_is_refused_naming_the_file(tmp_path, name, block):
    scene = scannet_scene(tmp_path)
    pose = _pose(scene, 3)
    pose[:3, :3] = pose[:3, :3] @ block
    np.savetxt(scene / "pose" / "3.txt", pose)
    with pytest.raises(ValueError, match=rf"{scene / 'pose' / '3.txt'}: not a rigid camera pose"):
        load_posed_frames(scene, 3)


def test_rigid_poses_give_orthonormal_cam_from_world(tmp_path):
    geometry = load_posed_frames(scannet_scene(tmp_path), 3).geometry
    rotation = geometry.cam_from_world[:, :3, :3].double()
    assert (rotation.transpose(1, 2) @ rotation - np.eye(3)).abs().max() < 1e-5


def test_depth_png_of_another_size_names_both_files(tmp_path):
    scene = scannet_scene(tmp_path)
    Image.fromarray(np.full((12, 16), 2000, np.uint16)).save(scene / "depth" / "3.png")
    with pytest.raises(ValueError, match=rf"{scene / 'depth' / '3.png'}: depth image of 16x12 pixels; expected "
                                         rf"32x24 as {scene / 'depth' / '0.png'}"):
        load_posed_frames(scene, 3)
