"""Every image mode a user's files come in is read as the RGB it shows: 16-bit scaled (not clipped),
palette, grey, alpha composited onto white, CMYK; through ``load_image``, ``ask`` and a dataset."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from thinkspace.data.images import decode_image, load_image, to_rgb


def pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    assert image.mode == "RGB"
    return [tuple(int(v) for v in p) for p in np.asarray(image).reshape(-1, 3)]


def png_rgb16(values: np.ndarray) -> bytes:
    """A 16-bit-per-sample RGB PNG of ``values`` ``[H, W, 3]`` uint16, written by hand (PIL cannot)."""
    height, width, _ = values.shape
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "gray16.png"
    Image.fromarray(np.array([[0, 257 * 128, 65535, 257]], np.uint16)).save(path)
    with Image.open(path) as raw:
        assert raw.mode == "I;16"  # what PIL hands over: the case that used to turn white
    assert pixels(load_image(path)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255), (1, 1, 1)]


def test_16_bit_big_endian_and_32_bit_integer_images_in_16_bit_range():
    big = Image.frombytes("I;16B", (3, 1), np.array([0, 257 * 128, 65535], ">u2").tobytes())
    assert pixels(to_rgb(big)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    wide = Image.fromarray(np.array([[0, 257 * 64, 65535]], np.int32))
    assert wide.mode == "I" and pixels(to_rgb(wide)) == [(0, 0, 0), (64, 64, 64), (255, 255, 255)]


def test_16_bit_rgb_png_keeps_its_colours(tmp_path):
    values = np.zeros((1, 3, 3), np.uint16)
    values[0, :, 0] = [0, 257 * 128, 65535]
    values[0, :, 2] = [65535, 0, 257 * 200]
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_rgb16(values))
    assert pixels(load_image(path)) == [(0, 0, 255), (128, 0, 0), (255, 0, 200)]


def test_grey_and_palette_images(tmp_path):
    Image.fromarray(np.array([[0, 9, 255]], np.uint8)).save(tmp_path / "l.png")
    assert pixels(load_image(tmp_path / "l.png")) == [(0, 0, 0), (9, 9, 9), (255, 255, 255)]
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as raw:
        assert raw.mode == "P" and "transparency" not in raw.info
    assert pixels(load_image(tmp_path / "p.png")) == [(10, 20, 30), (200, 100, 0)]


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "pt.png", transparency=0)  # index 0 fully transparent
    with Image.open(tmp_path / "pt.png") as raw:
        assert raw.mode == "P" and raw.info["transparency"] == 0
    assert pixels(load_image(tmp_path / "pt.png")) == [(255, 255, 255), (200, 100, 0)]


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.array([[[200, 0, 0, 255], [200, 0, 0, 0], [0, 0, 0, 128]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    # opaque kept, transparent white, half-transparent black halfway to white
    assert pixels(load_image(tmp_path / "rgba.png")) == [(200, 0, 0), (255, 255, 255), (127, 127, 127)]
    la = np.array([[[40, 255], [40, 0]]], np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert pixels(load_image(tmp_path / "la.png")) == [(40, 40, 40), (255, 255, 255)]


def test_cmyk_jpeg_and_tiff(tmp_path):
    cmyk = Image.frombytes("CMYK", (3, 1), bytes([255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255]))
    cmyk.save(tmp_path / "cmyk.tif")
    assert pixels(load_image(tmp_path / "cmyk.tif")) == [(0, 255, 255), (255, 255, 255), (0, 0, 0)]


def test_float_and_out_of_range_images_are_refused_by_name(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5]], np.float32)).save(tmp_path / "depth.tif")
    with pytest.raises(ValueError, match=r"image file .*depth\.tif \(sample 'q1'\): 32-bit float image "
                                         r"\(PIL mode 'F'\) has no defined range"):
        load_image(tmp_path / "depth.tif", "q1")
    with pytest.raises(ValueError, match=r"ask: image 0: 32-bit integer image \(PIL mode 'I'\) holds values in "
                                         r"\[0, 70000\]; expected a 16-bit range"):
        to_rgb(Image.fromarray(np.array([[0, 70000]], np.int32)), "ask: image 0")


def test_ask_reads_16_bit_png_files_and_pil_images(tmp_path):
    from thinkspace.inference.inputs import question_sample

    path = tmp_path / "gray16.png"
    Image.fromarray(np.array([[0, 257 * 128, 65535]], np.uint16)).save(path)
    by_path = question_sample([path], "What?")
    by_image = question_sample([Image.open(path)], "What?")
    for sample in (by_path, by_image):
        assert pixels(sample.frames[0]) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_dataset_reads_16_bit_and_transparent_views(tmp_path):
    from thinkspace.data.datasets.image_set_file import ImageSetFile

    Image.fromarray(np.array([[0, 257 * 128, 65535]], np.uint16)).save(tmp_path / "a.png")
    Image.fromarray(np.array([[[9, 9, 9, 0], [9, 9, 9, 255], [0, 0, 0, 255]]], np.uint8), "RGBA").save(tmp_path / "b.png")
    dataset = ImageSetFile(str(tmp_path / "q.jsonl"), None, "", None, False)
    views = dataset.views({"id": "q1", "images": ["a.png", "b.png"]})
    assert [pixels(v) for v in views] == [[(0, 0, 0), (128, 128, 128), (255, 255, 255)],
                                          [(255, 255, 255), (9, 9, 9), (0, 0, 0)]]


def test_resave_round_trip_keeps_rgb(tmp_path):
    from thinkspace.data.datasets.thinker_prompt import resave

    image = Image.fromarray(np.array([[[1, 2, 3], [250, 128, 0]]], np.uint8))
    assert pixels(resave(image, tmp_path / "x.png")) == [(1, 2, 3), (250, 128, 0)]


def test_in_memory_rgb_is_returned_as_is():
    image = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(image) is image
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    assert pixels(to_rgb(Image.open(buffer))) == [(1, 2, 3)] * 4


def test_embedded_bytes_decode_as_the_file_does(tmp_path):
    """A Hugging Face Image value's ``bytes`` (a 16-bit PNG, an RGBA PNG) read as its file is read."""
    grey, rgba = tmp_path / "grey16.png", tmp_path / "rgba.png"
    Image.fromarray(np.array([[0, 257 * 128, 65535]], np.uint16)).save(grey)
    Image.new("RGBA", (2, 1), (200, 0, 0, 0)).save(rgba)
    for path in (grey, rgba):
        assert pixels(decode_image(path.read_bytes(), "t.parquet:#0")) == pixels(load_image(path))
    assert pixels(decode_image(grey.read_bytes(), "t")) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    with pytest.raises(ValueError, match=r"t.parquet:#3: 4 embedded bytes cannot be decoded as an image"):
        decode_image(b"JFIF", "t.parquet:#3")
