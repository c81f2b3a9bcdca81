"""The Gemma 3 family (SigLIP + pooled projector + Gemma 3 text model) through transformers.

Which placeholder tokens make up a frame's grid is described in
:mod:`thinkspace.backbones.gemma3.collator`.
"""

from __future__ import annotations

from thinkspace.backbones.capabilities import FIXED_TOKEN_GRID, LATENT_DECODING
from thinkspace.backbones.gemma3.collator import Gemma3Collator, Gemma3Layout
from thinkspace.backbones.hf_backbone import Dtype, HFBackbone
from thinkspace.backbones.lora import LoraSettings
from thinkspace.backbones.registry import FAMILIES


class Gemma3(HFBackbone):
    """A Gemma 3 checkpoint (4B, 12B, 27B; ``model_type`` ``gemma3``): a local directory, a Hub id,
    or ``tiny:gemma3``.

    Every image becomes one fixed ``rows x cols`` grid of visual tokens (16 x 16 in the real
    checkpoints, whatever the image size); the model attends bidirectionally inside each image's
    block, told by ``token_type_ids``, which the collator writes into the batch (so training and
    ``generate`` pass it). Images only: no ``VIDEO``. Latent decoding runs the Hugging Face step with
    each layer's own mask (sliding-window layers; docs/backbones.md).

    Args:
        path: model directory, Hub id, or ``tiny:gemma3``.
        dtype: weight dtype to load (``auto``: as stored).
        attn_implementation: ``sdpa`` (default) or ``eager`` (transformers refuses flash attention
            for Gemma 3: it would drop the bidirectional image mask).
        lora: wrap the language model's linear layers with LoRA adapters (peft).
        adapter_path: a saved peft adapter directory to load instead.

    Raises:
        ValueError: the directory holds another family, or its image processor has pan-and-scan
            switched on (extra crops per image that are no frame of the sample).
    """

    families = FAMILIES["gemma3"].model_types
    family_label = "Gemma 3"
    capabilities = frozenset({FIXED_TOKEN_GRID, LATENT_DECODING})
    collator_class = Gemma3Collator

    # Spelled out per family, not shared: the typed signature is the config schema jsonargparse reads.
    def __init__(
        self,
        path: str,
        dtype: Dtype = "auto",
        attn_implementation: str = "sdpa",
        lora: LoraSettings | None = None,
        adapter_path: str | None = None,
    ) -> None:
        super().__init__()
        self._load(path, dtype, attn_implementation, lora, adapter_path)
        if getattr(self.processor.image_processor, "do_pan_and_scan", None):
            raise ValueError(f"{self.path}: the image processor config sets do_pan_and_scan true; Gemma3 expects it "
                             "false or null (each image one grid of visual tokens, no extra crops)")

    def layout(self) -> Gemma3Layout:
        config = self.hf.config
        side = int(round(int(config.mm_tokens_per_image) ** 0.5))
        return Gemma3Layout(image_token_id=int(config.image_token_id), rows=side, cols=side)

    def tokens_per_frame(self, height: int, width: int) -> tuple[int, int]:
        """``(rows, cols)`` of one image's visual tokens: the same for every ``height x width`` (px),
        as the processor resizes every image whole to the vision tower's square."""
        lay = self.layout()
        return lay.rows, lay.cols
