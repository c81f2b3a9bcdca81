"""Read images from disk with errors that name the file and the sample."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError


def load_image(path: str | Path, sample_id: str | None = None) -> Image.Image:
    """Open ``path`` as an RGB image, fully decoded.

    Raises:
        FileNotFoundError: the file does not exist (message names it and the sample).
        ValueError: the file exists but is not a decodable image.
    """
    path = Path(path)
    where = f" (sample {sample_id!r})" if sample_id is not None else ""
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} not found{where}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"image file {path}{where} cannot be decoded as an image: {err}") from err
