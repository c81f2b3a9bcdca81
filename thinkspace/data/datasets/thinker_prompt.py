"""3DThinker's prompt and image conventions, shared by its training and evaluation adapters.

Both read from the official code (lru0612/3DThinker), never copied from it:

- ``THINKER_INSTRUCTION``: the text stage 1 appends to every MindCube question after a
  newline (``3dthinker/stage1/src/task.py``, the ``begin`` placement), which stage 2 and
  the evaluation reuse.
- ``THINKER_IMAGE_SIZE``: every view is resized with PIL's LANCZOS filter to
  ``(480, 640)`` as PIL's ``(width, height)``, i.e. portrait 480 wide and 640 tall
  (``preprocessing/feature/extract_vggt_feature.py``). Qwen2.5-VL then sees 17 x 23 =
  391 merged visual tokens per view, the count the paper projector is built for.
"""

from __future__ import annotations

from PIL import Image

THINKER_INSTRUCTION = (
    "First imagine the mental 3D scene, think about the reasoning process in the mind and then provide the user "
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively. Special tokens should be used to represent mental 3D scene at the beginning of your "
    "response, i.e., mental 3D scene here <think> reasoning process here </think><answer> answer here </answer>."
)
THINKER_IMAGE_SIZE = (480, 640)


def resize_view(image: Image.Image, size: tuple[int, int] | list[int] | None) -> Image.Image:
    """``image`` resized with LANCZOS to ``size`` = (width, height) pixels; unchanged when ``size`` is None."""
    if size is None:
        return image
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise ValueError(f"image_size must be two positive integers (width, height), got {list(size)}")
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.LANCZOS)
