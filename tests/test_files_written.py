"""Files thinkspace writes: the user's umask, and nothing written before the input is checked."""

import os
import stat
from pathlib import Path

import pytest
import yaml

from thinkspace.utils.file_modes import apply_umask, atomic_write, current_umask
from thinkspace.teachers import OracleGeometryTeacher
from thinkspace.teachers.cache import CacheWriter
from thinkspace.teachers.command import main as cache_teacher

from cli_helpers import REPO

TINY = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"


@pytest.fixture
def umask_002():
    old = os.umask(0o002)
    yield 0o664
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_renames_a_finished_file_with_the_umasks_mode(tmp_path, umask_002):
    target = tmp_path / "new" / "data.json"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("one")
        assert not target.exists()  # nothing at the path until the block ends
    assert target.read_text() == "one" and mode(target) == umask_002
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]


def test_atomic_write_leaves_the_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "data.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]


def test_apply_umask_follows_the_umask(tmp_path, umask_002):
    assert current_umask() == 0o002
    (tmp_path / "d").mkdir()
    files = [tmp_path / "a.bin", tmp_path / "d" / "b.bin"]
    for f in files:
        f.write_bytes(b"x")
        os.chmod(f, 0o600)
    apply_umask(tmp_path)
    assert [mode(f) for f in files] == [umask_002, umask_002]


def test_cache_shards_get_the_umask_not_0600(tmp_path, umask_002):
    from thinkspace.data.datasets.synthetic import SyntheticSpatial

    sample = SyntheticSpatial(1, settings=["leftmost"], image_size=56, num_views=(1, 1), num_objects=(2, 2))[0]
    teacher = OracleGeometryTeacher()
    writer = CacheWriter(tmp_path, teacher.signature())
    writer.add(sample, teacher.encode(sample))
    writer.flush()
    (shard,) = tmp_path.glob("shard-*.safetensors")
    assert mode(shard) == umask_002


def test_cache_teacher_checks_the_data_before_creating_the_cache(tmp_path, capsys):
    config = yaml.safe_load(TINY.read_text())
    config["data"]["train"] = {"class_path": "thinkspace.data.datasets.mindcube.MindCube",
                               "init_args": {"path": str(tmp_path / "missing.jsonl")}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    out = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        cache_teacher(["--config", str(bad), "--out", str(out), "--split", "train"])
    assert not out.exists()
    with pytest.raises(ValueError, match=rf"{bad}: none of data.test is configured"):
        cache_teacher(["--config", str(bad), "--out", str(out), "--split", "test"])
    assert not out.exists()


def test_a_truncated_cache_shard_is_named(tmp_path):
    from thinkspace.data.datasets.synthetic import SyntheticSpatial
    from thinkspace.teachers.cache import FeatureCache

    sample = SyntheticSpatial(1, settings=["leftmost"], image_size=56, num_views=(1, 1), num_objects=(2, 2))[0]
    teacher = OracleGeometryTeacher()
    writer = CacheWriter(tmp_path, teacher.signature())
    writer.add(sample, teacher.encode(sample))
    writer.flush()
    cache = FeatureCache(tmp_path, teacher.signature())  # entries read while the shard is whole
    (shard,) = tmp_path.glob("shard-*.safetensors")
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"teacher cache shard {shard} cannot be read \(.*\); it is truncated"):
        cache.load(sample)
    with pytest.raises(ValueError, match=rf"teacher cache shard {shard} cannot be read"):
        FeatureCache(tmp_path, teacher.signature())
