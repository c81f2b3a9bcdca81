"""Read images from disk with errors that name the file and the sample, in one colour convention.

Every image thinkspace reads (``ask``, the dataset adapters, the synthetic worlds written to disk)
goes through :func:`load_image`, and every PIL image a user hands over through :func:`to_rgb`:

* 8-bit modes (``L``, ``1``, ``RGB``, ``P`` without transparency, ``CMYK``, ``YCbCr``, ...) take
  PIL's own conversion (``CMYK`` by PIL's naive formula, no ICC profile).
* 16-bit grayscale (``I;16``, ``I;16B``, ...; and ``I`` when every value is in ``[0, 65535]``,
  as older Pillow gives for 16-bit PNGs) is scaled by ``255 / 65535`` and rounded, so 0, 32896 and
  65535 become 0, 128 and 255. PIL's own ``convert`` clips instead (everything above 255 turns white).
  16-bit RGB(A) PNGs arrive from PIL already as 8-bit (the high byte of each sample: within one level).
* Transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a ``transparency`` entry) is composited onto
  white, as VGGT's loader does for RGBA (docs/parity.md, "Image modes").
* 32-bit float images (``F``) and ``I`` images outside ``[0, 65535]`` have no defined range: refused.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

#: what fully transparent pixels become (RGB, 0-255)
BACKGROUND = (255, 255, 255)

#: modes whose last band is (straight or premultiplied) alpha
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def to_rgb(image: Image.Image, source: str = "image") -> Image.Image:
    """``image`` as an 8-bit ``RGB`` image, scaled (never clipped) and composited on :data:`BACKGROUND`.

    Args:
        image: a PIL image in any mode.
        source: what the image is, for error messages (the file and sample).

    Raises:
        ValueError: a mode without a defined range (``F``; ``I`` with values outside ``[0, 65535]``).
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_to_rgb(image, source)
    if mode == "F":
        raise ValueError(f"{source}: 32-bit float image (PIL mode 'F') has no defined range; "
                         "expected an 8- or 16-bit image")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode in _ALPHA_MODES:
        image = image.convert("RGBA") if mode != "La" else image.convert("LA").convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def _sixteen_bit_to_rgb(image: Image.Image, source: str) -> Image.Image:
    """A one-band 16-bit image (values ``[0, 65535]``) as RGB, each value times ``255 / 65535``, rounded."""
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"{source}: 32-bit integer image (PIL mode {image.mode!r}) holds values in "
                         f"[{values.min()}, {values.max()}]; expected a 16-bit range [0, 65535]")
    grey = ((values * 255 + 32767) // 65535).astype(np.uint8)  # round half up, integers only
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=-1), mode="RGB")


def image_source(frame: Any, sample_id: str, index: int) -> str:
    """What an error about frame ``index`` of sample ``sample_id`` names: its file, as :func:`load_image`
    names it, for a PIL image opened from one (``Image.open`` keeps its ``filename``); the sample id and
    frame index for an image made in memory (or loaded and converted: the path is gone by then)."""
    filename = getattr(frame, "filename", "")
    if filename:
        return f"image file {filename} (sample {sample_id!r})"
    return f"frame {index} of sample {sample_id!r} (an in-memory image)"


def load_image(path: str | Path, sample_id: str | None = None) -> Image.Image:
    """Open ``path`` as an RGB image, fully decoded (modes as :func:`to_rgb`).

    Raises:
        FileNotFoundError: the file does not exist (message names it and the sample).
        IsADirectoryError: ``path`` is a folder.
        ValueError: the file exists but is not a decodable image, or its mode has no defined range.
    """
    path = Path(path)
    where = f" (sample {sample_id!r})" if sample_id is not None else ""
    if path.is_dir():
        raise IsADirectoryError(f"image file {path}{where} is a folder; expected an image file (.png, .jpg, ...)")
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} not found{where}")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = to_rgb(image, f"image file {path}{where}")
            return rgb.copy() if rgb is image else rgb  # a plain in-memory image, not the closed file's
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"image file {path}{where} cannot be decoded as an image: {err}") from err


def decode_image(data: bytes, source: str) -> Image.Image:
    """Encoded image bytes (PNG, JPEG, ...; as a Hugging Face ``Image`` feature stores them in its
    ``bytes`` field) as an RGB image, fully decoded (modes as :func:`to_rgb`).

    Args:
        data: the encoded file's bytes.
        source: what the image is, for error messages (the table file, row and sample).

    Raises:
        ValueError: the bytes are not a decodable image, or its mode has no defined range.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            rgb = to_rgb(image, source)
            return rgb.copy() if rgb is image else rgb
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{source}: {len(data)} embedded bytes cannot be decoded as an image: {err}") from err
