"""The teacher cache keyed by frame set (issue 29 item 3): the questions of one scan and frame set
share one entry and one teacher run; readers find it by the same key; old caches are read by id
and refused for writing with a message naming the cache; TF32 only on CUDA."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from benchmark_fixtures import sqa3d_released
from cli_helpers import REPO
from safetensors.torch import save_file

from thinkspace.cli import main
from thinkspace.cues import CameraPrior
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.data.datasets.sqa3d import SQA3D
from thinkspace.data.schema import DATA_SPLIT
from thinkspace.objectives import LatentAlignment
from thinkspace.teachers import OracleGeometryTeacher
from thinkspace.teachers.cache import CacheWriter, FeatureCache, frames_hash
from thinkspace.teachers.cache_key import cache_key
from thinkspace.teachers.precision import tf32_allowed

JOINT_TINY = REPO / "configs" / "loc3r" / "joint_tiny.yaml"


def released(tmp_path, num_frames):
    """SQA3D's five released test questions of scene0050_00, ``num_frames`` frames of its scan each."""
    questions, annotations = sqa3d_released(tmp_path)
    return SQA3D(str(questions), str(annotations), scannet_root=str(tmp_path / "scans"), num_frames=num_frames,
                 frame="scene")


def test_a_question_over_a_scan_is_keyed_by_its_frame_set_and_an_image_set_by_its_id(tmp_path):
    two, three = released(tmp_path, 2), released(tmp_path, 3)
    assert len({cache_key(two[i]) for i in range(5)}) == 1  # five questions, one frame set
    key = cache_key(two[0])
    assert key.startswith("scan:scene0050_00/frames-") and key.endswith("/32x24")
    assert two[0].meta["frame_indices"] != three[0].meta["frame_indices"] and cache_key(three[0]) != key
    no_scan = replace(two[0], meta={k: v for k, v in two[0].meta.items() if k != "scan"})
    assert cache_key(no_scan) == two[0].id


def count_encodes(monkeypatch):
    calls = []
    original = OracleGeometryTeacher.encode
    monkeypatch.setattr(OracleGeometryTeacher, "encode", lambda self, s: calls.append(s.id) or original(self, s))
    return calls


def test_one_teacher_run_per_frame_set_and_readers_find_it_by_key(tmp_path, monkeypatch, capsys):
    questions, annotations = sqa3d_released(tmp_path)
    sqa3d = {"class_path": "thinkspace.data.datasets.sqa3d.SQA3D",
             "init_args": {"questions": str(questions), "annotations": str(annotations),
                           "scannet_root": str(tmp_path / "scans"), "frame": "scene"}}
    data = tmp_path / "sqa3d.yaml"  # train: 2 frames of the scan, val: 3 frames: two frame sets
    data.write_text(yaml.safe_dump({"data": {
        "train": {**sqa3d, "init_args": {**sqa3d["init_args"], "num_frames": 2}},
        "val": {**sqa3d, "init_args": {**sqa3d["init_args"], "num_frames": 3}}}}))
    out = tmp_path / "cache"
    args = ["cache-teacher", "--config", str(JOINT_TINY), "--config", str(data), "--out", str(out),
            "--split", "train", "val", "--shard-size", "1"]
    calls = count_encodes(monkeypatch)
    assert main(args) == 0
    first = released(tmp_path / "ids", 2)[0].id
    assert calls == [first, first]  # the first question of each frame set; the other four found by key
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"{out}: 10 questions, 2 distinct keys (scan, frames, size), 2 written; 2 entries in the cache"
    assert sorted(p.name for p in out.iterdir()) == ["shard-00000.safetensors", "shard-00001.safetensors",
                                                     "signature.json"]
    assert json.loads((out / "signature.json").read_text())["cache_format"] == 2

    teacher = OracleGeometryTeacher()
    prior, latent = CameraPrior(teacher, cache=str(out)), LatentAlignment(k=2, cache=str(out))
    for frames in (2, 3):
        dataset = released(tmp_path, frames)
        for i in range(len(dataset)):
            sample = dataset[i]
            live = teacher.encode(sample)
            torch.testing.assert_close(prior.features(sample).camera, live.camera, atol=1e-2, rtol=1e-3)
            torch.testing.assert_close(latent.targets(sample)["features"].tokens(), live.tokens(), atol=1e-2,
                                       rtol=1e-3)

    calls.clear()  # a rerun finds every frame set on disk: no teacher run
    assert main(args) == 0 and calls == []
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"{out}: 10 questions, 2 distinct keys (scan, frames, size), 0 written; 2 entries in the cache"


def test_a_key_shared_by_other_pixels_is_refused_naming_both_samples(tmp_path):
    sample = released(tmp_path, 2)[0]
    teacher = OracleGeometryTeacher()
    writer = CacheWriter(tmp_path / "cache", teacher.signature())
    writer.add(sample, teacher.encode(sample), index=0, split="train")
    assert writer.covers(replace(sample, id="another-question"))
    dark = replace(sample, id="dark", frames=[np.zeros((24, 32, 3), np.uint8)] * sample.num_frames)
    with pytest.raises(ValueError, match=r"sample 'dark' \(sqa3d\) has the cache key 'scan:scene0050_00/frames-"
                                         r"[0-9a-f]{12}/32x24' of sample '220602000002' .* but other frames"):
        writer.covers(dark)


def old_format_cache(root, teacher, sample):
    """A cache as thinkspace wrote it before format 2: entries by sample id, no cache_format."""
    root.mkdir()
    (root / "signature.json").write_text(json.dumps(teacher.signature(), indent=1, sort_keys=True))
    features = teacher.encode(sample)
    tensors = {f"{sample.id}/{name}": getattr(features, name).to(torch.float16).contiguous()
               for name in ("camera", "register", "patch")}
    entry = {"hash": frames_hash(sample), "grid": list(features.grid), "index": 0, "split": "train",
             "parts": ["camera", "register", "patch"]}
    save_file(tensors, str(root / "shard-00000.safetensors"), metadata={"samples": json.dumps({sample.id: entry})})
    return features


def test_an_old_cache_is_read_by_sample_id_and_not_extended(tmp_path):
    sample = released(tmp_path, 2)[0]
    teacher, root = OracleGeometryTeacher(), tmp_path / "old"
    features = old_format_cache(root, teacher, sample)
    cache = FeatureCache(root, teacher.signature())
    assert cache.format == 1 and sample.id in cache
    torch.testing.assert_close(CameraPrior(teacher, cache=str(root)).features(sample).camera, features.camera,
                               atol=1e-2, rtol=1e-3)
    with pytest.raises(ValueError, match=r"old/signature.json: an old teacher cache \(format 1, one entry per "
                                         r"question id\); .* cannot add to it: write a new cache \(`thinkspace "
                                         r"cache-teacher --config CFG --out NEW_DIR`\)"):
        CacheWriter(root, teacher.signature())
    (root / "signature.json").write_text(json.dumps(teacher.signature() | {"cache_format": 9}))
    with pytest.raises(ValueError, match=r"signature.json: cache_format 9 is not one this thinkspace reads"):
        FeatureCache(root, teacher.signature())


def test_a_missing_frame_set_names_the_sample_and_its_key(tmp_path):
    two, three = released(tmp_path, 2), released(tmp_path, 3)
    teacher = OracleGeometryTeacher()
    writer = CacheWriter(tmp_path / "cache", teacher.signature())
    writer.add(two[0], teacher.encode(two[0]))
    writer.flush()
    with pytest.raises(KeyError, match=r"sample '220602000002' \(sqa3d\) is not in the teacher cache .* \(key "
                                       r"'scan:scene0050_00/frames-"):
        FeatureCache(tmp_path / "cache", teacher.signature()).load(three[0])


def test_a_missing_entry_at_test_time_names_the_split_and_the_command_that_writes_it(tmp_path):
    """`cache-teacher` fills train and val unless told: a test question's entry is missing, and the
    test loader's sample says so, with the command and its `--split test`."""
    two, three = released(tmp_path, 2), released(tmp_path, 3)
    teacher, root = OracleGeometryTeacher(), tmp_path / "cache"
    writer = CacheWriter(root, teacher.signature())
    writer.add(two[0], teacher.encode(two[0]), index=0, split="train")
    writer.flush()
    data = SpatialDataModule(test=three, num_workers=0)  # the loader the test stage reads, collating nothing
    data.trainer = SimpleNamespace(lightning_module=SimpleNamespace(collator=lambda **_: list), global_rank=0,
                                   world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    sample = next(iter(data.test_dataloader()))[0]
    assert sample.meta[DATA_SPLIT] == "test" and DATA_SPLIT not in three[0].meta
    cache = FeatureCache(root, teacher.signature())
    with pytest.raises(KeyError) as error:
        cache.load(sample)
    key = cache_key(sample)
    assert error.value.args[0] == (
        f"sample '220602000002' (sqa3d) of data.test is not in the teacher cache {root} (key {key!r}; 1 entry, of "
        f"data.train); write its entry with `thinkspace cache-teacher --config CFG --out {root} --split test` "
        "(CFG: this run's config file(s))")
    untagged = cache.missing(three[0], key)  # read outside a data module's loader: the split is not known
    assert untagged.startswith("sample '220602000002' (sqa3d) is not in the teacher cache ")
    assert untagged.endswith("--split SPLIT` (CFG: this run's config file(s); SPLIT: the data split the sample "
                             "is from)")


def test_a_missing_entry_of_a_camera_only_cache_asks_for_camera_tokens(tmp_path):
    two, three = released(tmp_path, 2), released(tmp_path, 3)
    teacher, root = OracleGeometryTeacher(), tmp_path / "cameras"
    writer = CacheWriter(root, teacher.signature(), parts=("camera",))
    for split, sample in (("train", two[0]), ("val", released(tmp_path, 1)[0])):
        writer.add(sample, teacher.encode(sample), index=0, split=split)
    writer.flush()
    sample = replace(three[0], meta={**three[0].meta, DATA_SPLIT: "predict"})
    with pytest.raises(KeyError, match=re.escape(
            "(sqa3d) of data.predict is not in the teacher cache") + r".*2 entries, of data\.train, data\.val\); "
            + re.escape(f"write its entry with `thinkspace cache-teacher --config CFG --out {root} --split predict "
                        "--parts camera`")):
        FeatureCache(root, teacher.signature()).load(sample)


# -- bf16 + TF32 ---------------------------------------------------------------------------


def test_tf32_is_switched_on_for_cuda_only_and_restored():
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with tf32_allowed("cpu") as switched:
        assert not switched and matmul.fp32_precision == before
    with tf32_allowed(torch.device("cuda", 0), enabled=False) as switched:
        assert not switched and matmul.fp32_precision == before
    with tf32_allowed(torch.device("cuda", 0)) as switched:  # flags only: no GPU needed
        assert switched and matmul.fp32_precision == "tf32" and torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert matmul.fp32_precision == before


def test_loc3r_runs_vggt_in_bf16_with_tf32_and_the_cpu_features_do_not_change():
    pytest.importorskip("vggt")
    from test_vggt_teacher import sample, tiny_vggt

    from thinkspace.teachers import VGGTTeacher

    config = yaml.safe_load((REPO / "configs" / "loc3r" / "joint.yaml").read_text())
    init = config["model"]["cues"]["camera"]["init_args"]["teacher"]["init_args"]
    assert (init["dtype"], init["tf32"]) == ("bfloat16", True)
    signature = VGGTTeacher(**init).signature()
    assert (signature["dtype"], signature["tf32"]) == ("bfloat16", True)
    assert "tf32" not in VGGTTeacher().signature()  # float32 caches of the default keep their signature

    model, views = tiny_vggt(), sample()
    plain = VGGTTeacher(image_size=56, channels=64, model=model).encode(views)
    tf32 = VGGTTeacher(image_size=56, channels=64, tf32=True, model=model).encode(views)
    assert torch.equal(plain.tokens(), tf32.tokens())  # CPU: bit for bit
