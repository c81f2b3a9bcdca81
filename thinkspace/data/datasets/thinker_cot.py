"""``ThinkerCoT``: 3DThinker's chain-of-thought training jsonl (MindCube questions).

Reads the released 10K CoT set, one record per line with fields ``text_input`` (the
question as prompted), ``image_input`` (one path or a list, relative to
``image_root``), ``text_output`` (the target: it begins with the ``<output_3D>``
marker, then the reasoning and the answer), ``answer`` (the option letter, possibly
with its text) and ``idx``.

``response`` keeps ``text_output`` verbatim, marker included; ``meta["latent_marker"]``
names the marker and ``meta["latent_marker_is_slot"]`` is ``True``: the marker stands
for the latent slot (start, k pads, end) that the latent-alignment objective inserts,
it is not text to learn. Frames: the images in order, unordered views; no geometry.

The prompt is ``text_input``, a newline and ``instruction`` (default: 3DThinker's own,
``THINKER_INSTRUCTION``); views are resized to ``image_size`` = (width, height) with
LANCZOS (default 480 x 640, portrait), and with ``resave`` (default) written in the file's
format and read back (JPEG quality 75 for MindCube's ``.jpg``), as the official stage 1
trains: its VLM and its VGGT features both read the resized files.
"""

from __future__ import annotations

from typing import Any

from thinkspace.answers import gold_letter
from thinkspace.data.datasets.image_set_file import ImageSetFile
from thinkspace.data.datasets.thinker_prompt import THINKER_IMAGE_SIZE, THINKER_INSTRUCTION
from thinkspace.data.schema import SpatialSample
from thinkspace.eval.mindcube import setting_from_id
from thinkspace.records import field, read_jsonl

LATENT_MARKER = "<output_3D>"


class ThinkerCoT(ImageSetFile):
    """3DThinker CoT records for supervised training with a latent slot.

    Args:
        path: the jsonl file.
        image_root: directory the image paths are relative to (default: the jsonl's directory).
        instruction: text appended to ``text_input`` after a newline; empty for none.
        image_size: (width, height) every view is resized to with LANCZOS; ``None``: as stored.
        resave: after resizing, write each view in its file's format with PIL's defaults and
            read it back (:func:`~thinkspace.data.datasets.thinker_prompt.resave`), as the official
            preprocessing saves the resized images; ``False``: keep the resized pixels as they are.
        require_marker: fail on a record whose ``text_output`` lacks the marker.
        skip_missing: drop records with missing images (count in ``skipped``).
        limit: keep the first ``limit`` records.
    """

    def __init__(
        self,
        path: str,
        image_root: str | None = None,
        instruction: str = THINKER_INSTRUCTION,
        image_size: list[int] | None = list(THINKER_IMAGE_SIZE),
        resave: bool = True,
        require_marker: bool = True,
        skip_missing: bool = False,
        limit: int | None = None,
    ) -> None:
        super().__init__(path, image_root, instruction, image_size, resave, skip_missing, limit)
        self.require_marker = require_marker

    def _build_index(self) -> list[dict[str, Any]]:
        entries = []
        for where, record in read_jsonl(self.path):
            idx = str(field(record, "idx", where, "record id"))
            field(record, "text_input", where, "the prompt")
            output = field(record, "text_output", where, "the target chain of thought")
            images = field(record, "image_input", where, "image path or list of paths")
            images = [images] if isinstance(images, str) else list(images)
            if not images:
                raise ValueError(f"{where}: record {idx!r} lists no images")
            if self.require_marker and LATENT_MARKER not in output:
                raise ValueError(f"{where}: text_output of record {idx!r} lacks the {LATENT_MARKER} marker")
            letter = gold_letter(field(record, "answer", where, "gold answer"))
            if letter is None:
                raise ValueError(f"{where}: answer {record['answer']!r} of record {idx!r} has no option letter A-E")
            entries.append({"where": where, "id": idx, "record": record, "images": images, "letter": letter})
        return entries

    def _sample(self, entry: dict[str, Any]) -> SpatialSample:
        record = entry["record"]
        return SpatialSample(
            id=entry["id"], source="thinker_cot", task=setting_from_id(entry["id"]), frames=self.views(entry),
            prompt=self.prompt(record["text_input"]), response=record["text_output"], answer=entry["letter"],
            answer_type="choice",
            meta={"latent_marker": LATENT_MARKER, "latent_marker_is_slot": LATENT_MARKER in record["text_output"],
                  "where": entry["where"]},
        )
