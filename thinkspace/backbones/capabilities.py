"""Optional backbone features, and the error raised where one is needed but missing.

A family declares the features it has (``VLMBackbone.capabilities``); code that needs one
calls ``backbone.require(feature, by)`` in its ``setup`` (or the collator, per sample), so a
missing feature fails before training with a message naming the family, the model path,
the feature and who needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from thinkspace.data.schema import SpatialSample

#: video samples (one ``<video>`` per sample, frames sampled in time)
VIDEO = "video"
#: thinkspace's KV-cached decoding, latent steps included (:mod:`thinkspace.generation.decode`): the
#: transformers decode path (``hf.model.language_model``, ``get_input_embeddings``, ``lm_head``)
LATENT_DECODING = "latent decoding"
#: every frame of a given pixel size becomes the same token grid, known before collating
#: (:meth:`VLMBackbone.tokens_per_frame`); the paper projector is sized by it
FIXED_TOKEN_GRID = "fixed token grid"
#: per-frame text (``meta["frame_prefix"]``) placed inside a video, right before each frame's tokens
FRAME_PREFIX_IN_VIDEO = "frame prefix in video"

FEATURES = (VIDEO, LATENT_DECODING, FIXED_TOKEN_GRID, FRAME_PREFIX_IN_VIDEO)


@dataclass(frozen=True)
class Support:
    """What one loaded backbone supports; small and picklable, so collators in data workers carry it.

    Attributes:
        family: the family's label (``"Qwen-VL"``).
        path: the model directory or Hub id.
        capabilities: the features it has (names from this module).
    """

    family: str
    path: str
    capabilities: frozenset[str]

    def require(self, feature: str, by: str) -> None:
        """Raise ``ValueError`` naming family, path, ``feature`` and ``by`` unless ``feature`` is supported."""
        if feature not in FEATURES:
            raise ValueError(f"{by}: unknown backbone feature {feature!r}; expected one of {list(FEATURES)}")
        if feature not in self.capabilities:
            has = ", ".join(sorted(self.capabilities)) or "none"
            raise ValueError(f"{by} needs {feature!r}, which the {self.family} backbone {self.path} does not "
                             f"support (it supports: {has})")

    def check_sample(self, sample: SpatialSample) -> None:
        """Refuse a sample the backbone cannot encode (a video without :data:`VIDEO`), naming it."""
        if sample.is_video:
            self.require(VIDEO, f"sample {sample.id!r} ({sample.source}) is a video and")
