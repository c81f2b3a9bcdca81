"""3DThinker's prompt and image conventions, shared by its training and evaluation adapters.

Both read from the official code (lru0612/3DThinker), never copied from it:

- ``THINKER_INSTRUCTION``: the text stage 1 appends to every MindCube question after a
  newline (``3dthinker/stage1/src/task.py``, the ``begin`` placement), which stage 2 and
  the evaluation reuse.
- ``THINKER_IMAGE_SIZE``: every view is resized with PIL's LANCZOS filter to
  ``(480, 640)`` as PIL's ``(width, height)``, i.e. portrait 480 wide and 640 tall
  (``preprocessing/feature/extract_vggt_feature.py``). Qwen2.5-VL then sees 17 x 23 =
  391 merged visual tokens per view, the count the paper projector is built for.
- The resized view is then saved in the original file's format with PIL's defaults (for
  MindCube's ``.jpg`` frames: JPEG quality 75, 4:2:0 chroma subsampling) and read back from
  that file by both the VLM (``3dthinker/stage1/src/task.py`` opens the resized paths) and
  VGGT's loader. :func:`resave` reproduces that round trip in memory.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from thinkspace.data.images import to_rgb

THINKER_INSTRUCTION = (
    "First imagine the mental 3D scene, think about the reasoning process in the mind and then provide the user "
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively. Special tokens should be used to represent mental 3D scene at the beginning of your "
    "response, i.e., mental 3D scene here <think> reasoning process here </think><answer> answer here </answer>."
)
THINKER_IMAGE_SIZE = (480, 640)


def resize_view(image: Image.Image, size: tuple[int, int] | list[int] | None,
                resave_as: str | Path | None = None) -> Image.Image:
    """``image`` resized with LANCZOS to ``size`` = (width, height) pixels; unchanged when ``size`` is None.

    ``resave_as``: a file name whose format (by extension) a resized view is written in and read
    back from (see :func:`resave`), as the official preprocessing does; ``None``: no round trip.
    A view already of ``size`` is returned as read: it is taken to be such a file already (the
    released CoT set points at the resized images, ``other_all_image_resize/...``).
    """
    if size is None:
        return image
    if len(size) != 2:
        raise ValueError(f"image_size must be two positive integers (width, height), got {list(size)}")
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size must be two positive integers (width, height), got {list(size)}")
    if image.size == (width, height):
        return image
    image = image.resize((width, height), Image.LANCZOS)
    return image if resave_as is None else resave(image, resave_as)


def resave(image: Image.Image, name: str | Path) -> Image.Image:
    """``image`` written with PIL's default settings in the format of ``name``'s extension and decoded
    again as RGB, in memory: what ``img.save(path)`` then ``Image.open(path).convert("RGB")`` give.
    Lossless formats (PNG) come back unchanged; JPEG loses detail (quality 75, 4:2:0)."""
    suffix = Path(name).suffix.lower()
    image_format = Image.registered_extensions().get(suffix)
    if image_format is None:
        raise ValueError(f"{name}: no image format is registered for the extension {suffix!r}")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        decoded.load()
        return to_rgb(decoded, str(name))
