"""The Gemma 3 token layout: every image one ``rows x cols`` block of ``<image_soft_token>``.

``Gemma3ImageProcessor`` resizes every image whole to one square (896 px in the real checkpoints;
the aspect ratio is not kept), SigLIP cuts it into ``P x P`` patches (64 x 64) and the model's
projector average-pools them to ``mm_tokens_per_image`` tokens (16 x 16 = 256), flattened row-major.
``Gemma3Processor`` writes each image as ``\\n\\n<start_of_image>``, ``rows * cols``
``<image_soft_token>``, ``<end_of_image>\\n\\n``; images follow each other in prompt order. So a frame's
grid is fixed, whatever the image size: ``rows = cols = sqrt(mm_tokens_per_image)``, and its indexed
tokens are exactly its block of soft tokens (``frames_per_group`` 1).

Pan-and-scan (extra crops of large images, each its own block) is refused when the backbone loads:
the crops would be extra blocks that are no frame. Gemma 3 takes no video (the backbone has no
``VIDEO`` capability, so the base collator refuses a video sample naming the family).

The model attends bidirectionally inside each image block; it reads which tokens are image tokens
from ``token_type_ids`` ``[B, L]`` (1 on soft tokens), which :meth:`Gemma3Collator.extra_inputs`
writes from the padded ids (generation's prompt batches left-pad it with the ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from thinkspace.data.batch import VisualTokens
from thinkspace.data.collate import Collator, fixed_grid_tokens, sample_rgb
from thinkspace.data.schema import SpatialSample


@dataclass(frozen=True)
class Gemma3Layout:
    """How Gemma 3 lays visual tokens into the sequence.

    Attributes:
        image_token_id: id of ``<image_soft_token>``, one per visual token.
        rows: visual-token rows of one image (``sqrt(mm_tokens_per_image)``).
        cols: visual-token columns of one image.
    """

    image_token_id: int
    rows: int
    cols: int


class Gemma3Collator(Collator):
    """:class:`Collator` for Gemma 3 (layout above).

    Args: as :class:`Collator`, with a :class:`Gemma3Layout`.
    """

    layout: Gemma3Layout

    def process(self, text: str, sample: SpatialSample) -> Any:
        # The chat template already writes <bos>; the tokenizer would add a second one.
        out = self.processor(text=[text], images=[sample_rgb(sample)], return_tensors="pt",
                             add_special_tokens=False)
        # One unpadded row per sample; extra_inputs writes it again from the padded batch.
        return {k: v for k, v in out.items() if k != "token_type_ids"}

    def extra_inputs(self, input_ids: Tensor) -> dict[str, Tensor]:
        """``token_type_ids`` ``[B, L]``: 1 on image soft tokens, 0 elsewhere (Gemma 3's bidirectional
        attention inside each image block reads it, in training and generation)."""
        return {"token_type_ids": (input_ids == self.layout.image_token_id).long()}

    def visual_tokens(self, input_ids: Tensor, encoded: list[dict[str, Any]]) -> VisualTokens:
        """Every image's ``rows x cols`` soft tokens in order: sample, position, frame, row, col."""
        lay = self.layout
        return fixed_grid_tokens(
            input_ids, [e["num_frames"] for e in encoded], lay.image_token_id, lay.rows, lay.cols,
            lambda b, found, frames: f"sample {b}: processor wrote {found} <image_soft_token> tokens for {frames} "
                                     f"image(s); the Gemma 3 layout accounts for {frames} x {lay.rows} x {lay.cols} "
                                     "(pan-and-scan crops are not supported)")
