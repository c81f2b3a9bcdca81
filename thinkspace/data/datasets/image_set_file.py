"""``ImageSetFile``: the base of adapters whose jsonl records list image files (MindCube, ThinkerCoT, ViewSpatial-Bench).

What they share: where the images are (relative to ``image_root``), each view resized (and
re-saved) as 3DThinker's preprocessing does (:func:`~thinkspace.data.datasets.thinker_prompt.resize_view`),
and an instruction appended to the question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from thinkspace.data.datasets.benchmark import BenchmarkDataset
from thinkspace.data.datasets.thinker_prompt import resize_view
from thinkspace.data.images import load_image


class ImageSetFile(BenchmarkDataset):
    """A jsonl file of questions, each about the image files its entry lists (``entry["images"]``).

    Args:
        path: the jsonl file.
        image_root: directory the image paths are relative to (``None``: the jsonl's directory).
        instruction: text appended to each question after a newline; empty for none.
        image_size: (width, height) every view is resized to with LANCZOS; ``None``: as stored.
        resave: with ``image_size``, write each resized view in its file's format with PIL's
            defaults and read it back, as 3DThinker's preprocessing does.
        skip_missing, limit: as :class:`BenchmarkDataset`.
    """

    def __init__(self, path: str, image_root: str | None, instruction: str, image_size: list[int] | None,
                 resave: bool, skip_missing: bool = False, limit: int | None = None) -> None:
        super().__init__(skip_missing, limit)
        self.path = Path(path)
        self.image_root = Path(image_root) if image_root is not None else self.path.parent
        self.instruction = instruction
        self.image_size, self.resave = image_size, resave

    def _media(self, entry: dict[str, Any]) -> list[Path]:
        return [self.image_root / p for p in entry["images"]]

    def views(self, entry: dict[str, Any]) -> list[Image.Image]:
        """The entry's images, loaded, resized and (with ``resave``) round-tripped through their format."""
        return [resize_view(load_image(p, entry["id"]), self.image_size, p if self.resave else None)
                for p in self._media(entry)]

    def prompt(self, question: str) -> str:
        """``question``, then the instruction on a new line (when there is one)."""
        return question + (f"\n{self.instruction}" if self.instruction else "")
