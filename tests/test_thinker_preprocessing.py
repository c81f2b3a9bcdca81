"""3DThinker's stage-1 view chain: LANCZOS to 480 x 640 (width x height), saved as the original's
format, then VGGT's ``load_and_preprocess_images`` in ``crop`` mode (the rule read from
``preprocessing/feature/extract_vggt_feature.py`` of lru0612/3DThinker)."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from thinkspace.data.datasets.thinker_cot import ThinkerCoT
from thinkspace.data.datasets.thinker_prompt import THINKER_IMAGE_SIZE, resave, resize_view
from thinkspace.data.schema import SpatialSample
from thinkspace.teachers import VGGTTeacher

from cli_helpers import REPO


def photo(width, height, seed=0):
    """A smooth image with texture (JPEG-like content): gradients, a disc and mild noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (0.2 * min(width, height)) ** 2) * 90.0
    pixels = np.stack([200 * x / width + disc, 200 * y / height, 120 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0)], -1)
    pixels += rng.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def cot_file(tmp_path, image_names):
    record = {"idx": 7, "text_input": "Which way? A. left B. right", "image_input": image_names,
              "text_output": "<output_3D>\n<think>t</think><answer>A</answer>", "answer": "A"}
    path = tmp_path / "cot.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def teacher_input(frames):
    return VGGTTeacher(image_size=518, mode="crop").prepare(SpatialSample(id="v", source="t", task="t",
                                                                          frames=frames, prompt="?"))


# -- the rule, without vggt -------------------------------------------------------------

def test_portrait_view_is_scaled_to_518_wide_686_tall_and_centre_cropped():
    """480 x 640 -> width 518, height round(640 * 518 / 480 / 14) * 14 = 686, rows 84..601 kept.
    A red band over the top quarter (rows 0..159) ends at scaled row 171.5, i.e. row 87.5 after the crop;
    a plain 518 x 518 resize would put that edge at row 129.5 instead."""
    pixels = np.zeros((640, 480, 3), np.uint8)
    pixels[:160, :, 0] = 255
    pixels[160:, :, 2] = 255
    teacher = VGGTTeacher(image_size=518, mode="crop")
    assert teacher.input_size(640, 480) == (518, 518) and teacher.grid(640, 480) == (37, 37)
    out = teacher_input([Image.fromarray(pixels)])
    assert out.shape == (1, 3, 518, 518)
    red, blue, edge = torch.tensor([255.0, 0, 0]), torch.tensor([0, 0, 255.0]), torch.tensor([128.0, 0, 128])
    rows = (out[0] * 255).round().permute(1, 2, 0)  # [518, 518, 3], each row constant here
    assert torch.equal(rows[:87].reshape(-1, 3).unique(dim=0), red[None])
    assert torch.equal(rows[87].unique(dim=0), edge[None])  # the edge falls mid-row 87: an even blend
    assert torch.equal(rows[88:].reshape(-1, 3).unique(dim=0), blue[None])
    square = VGGTTeacher(image_size=518, mode="resize").prepare(
        SpatialSample(id="v", source="t", task="t", frames=[Image.fromarray(pixels)], prompt="?"))
    assert torch.equal((square[0, :, 129, 0] * 255).round(), edge)  # not 3DThinker's input


def test_resave_is_pil_default_jpeg_quality_75_and_lossless_png(tmp_path):
    image = photo(48, 64)
    assert np.array_equal(np.asarray(resave(image, "x.png")), np.asarray(image))
    image.save(tmp_path / "a.jpg")  # PIL's defaults, as the official script's resized_img.save(path)
    with Image.open(tmp_path / "a.jpg") as on_disk:
        from PIL import JpegImagePlugin

        assert JpegImagePlugin.get_sampling(on_disk) == 2  # 4:2:0
        assert np.array_equal(np.asarray(resave(image, "frame.JPG")), np.asarray(on_disk.convert("RGB")))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75, subsampling="4:2:0")
    assert buffer.getvalue() == (tmp_path / "a.jpg").read_bytes()
    with pytest.raises(ValueError, match=r"x\.xyz: no image format is registered for the extension '\.xyz'"):
        resave(image, "x.xyz")


def test_resize_view_rejects_a_size_that_is_not_width_height():
    with pytest.raises(ValueError, match=r"two positive integers \(width, height\), got \[480\]"):
        resize_view(photo(8, 8), [480])
    assert resize_view(photo(30, 20), THINKER_IMAGE_SIZE).size == (480, 640)


def test_thinker_cot_views_are_resized_and_resaved_by_default(tmp_path):
    photo(320, 240).save(tmp_path / "raw.jpg")
    data = ThinkerCoT(str(cot_file(tmp_path, ["raw.jpg"])))
    frame = data[0].frames[0]
    assert frame.size == (480, 640)
    with Image.open(tmp_path / "raw.jpg") as raw:
        expected = raw.resize((480, 640), Image.LANCZOS)
        expected.save(tmp_path / "resized.jpg")
    with Image.open(tmp_path / "resized.jpg") as reread:
        assert np.array_equal(np.asarray(frame), np.asarray(reread.convert("RGB")))
    kept = ThinkerCoT(str(cot_file(tmp_path, ["raw.jpg"])), resave=False)[0].frames[0]
    assert np.array_equal(np.asarray(kept), np.asarray(expected))
    # the released set points at files step 1 already wrote: read as they are, not re-encoded
    again = ThinkerCoT(str(cot_file(tmp_path, ["resized.jpg"])))[0].frames[0]
    assert np.array_equal(np.asarray(again), np.asarray(frame))


# -- the official two steps, through vggt's own loader ----------------------------------

@pytest.mark.parametrize("size", [(640, 480), (600, 800), (1024, 768)])  # raw frames, (width, height)
def test_teacher_input_equals_the_official_two_step_chain(tmp_path, size):
    load_fn = pytest.importorskip("vggt.utils.load_fn")
    (tmp_path / "raw").mkdir()
    (tmp_path / "resized").mkdir()
    names = ["raw/a.jpg", "raw/b.jpg"]
    for i, name in enumerate(names):
        photo(*size, seed=i).save(tmp_path / name)
    official_paths = []
    for name in names:  # step 1: LANCZOS to (480, 640), saved in the same format (here JPEG)
        with Image.open(tmp_path / name) as img:
            resized_path = tmp_path / name.replace("raw/", "resized/")
            img.resize((480, 640), Image.LANCZOS).save(resized_path)
            official_paths.append(str(resized_path))
    official = load_fn.load_and_preprocess_images(official_paths)  # step 2: crop mode, the default
    sample = ThinkerCoT(str(cot_file(tmp_path, names)))[0]
    ours = teacher_input(sample.frames)
    assert ours.shape == official.shape == (2, 3, 518, 518)
    assert torch.equal(ours, official)
    # without the JPEG round trip the input differs slightly (measured: see docs/parity.md)
    unsaved = teacher_input(ThinkerCoT(str(cot_file(tmp_path, names)), resave=False)[0].frames)
    difference = (unsaved - official).abs()
    assert 0 < difference.mean().item() < 0.02


def test_cache_teacher_on_stage1_yaml_caches_the_official_input(tmp_path, monkeypatch):
    """`thinkspace cache-teacher` with stage1.yaml's teacher and train data (paths pointed at raw JPEGs,
    a tiny VGGT swapped in for VGGT-1B): the cached tokens are the aggregator's output on exactly what
    vggt's loader gives for the files the official step 1 writes (fp16 storage tolerance)."""
    load_fn = pytest.importorskip("vggt.utils.load_fn")
    import yaml
    from vggt.models.vggt import VGGT

    from tests.test_vggt_teacher import tiny_vggt
    from thinkspace.teachers.cache import FeatureCache
    from thinkspace.teachers.command import main as cache_teacher

    (tmp_path / "raw").mkdir()
    names = ["raw/a.jpg", "raw/b.jpg"]
    for i, name in enumerate(names):
        photo(800, 600, seed=i).save(tmp_path / name)
    config = yaml.safe_load((REPO / "configs/3dthinker/stage1.yaml").read_text())
    config["data"]["train"]["init_args"].update(path=str(cot_file(tmp_path, names)), image_root=str(tmp_path))
    teacher_spec = config["model"]["objectives"]["latent"]["init_args"]["teacher"]["init_args"]
    teacher_spec.update(channels=64, dtype="float32")  # the tiny model's width; bf16 autocast is tested apart
    (tmp_path / "stage1.yaml").write_text(yaml.safe_dump(config))
    model = tiny_vggt()
    monkeypatch.setattr(VGGT, "from_pretrained", classmethod(lambda cls, path: model))
    assert cache_teacher(["--config", str(tmp_path / "stage1.yaml"), "--out", str(tmp_path / "cache"),
                          "--split", "train"]) == 0

    official_paths = []
    for name in names:
        with Image.open(tmp_path / name) as img:
            official_paths.append(str(tmp_path / name.replace("/", "_")))
            img.resize((480, 640), Image.LANCZOS).save(official_paths[-1])
    with torch.no_grad():
        layers, start = model.aggregator(load_fn.load_and_preprocess_images(official_paths)[None])
    teacher = VGGTTeacher(image_size=518, mode="crop", channels=64, model=model)
    sample = ThinkerCoT(str(cot_file(tmp_path, names)), image_root=str(tmp_path))[0]
    cached = FeatureCache(tmp_path / "cache", teacher.signature()).load(sample)
    assert cached.grid == (37, 37) and cached.tokens().shape == (2, 1 + 4 + 37 * 37, 64) and start == 5
    torch.testing.assert_close(cached.tokens(), layers[-1][0], atol=2e-3, rtol=2e-3)
