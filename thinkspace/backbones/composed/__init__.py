"""The composed VLM family: a timm image encoder, a projector and any transformers causal LM.

One concept per file: ``config`` (the transformers config), ``encoder`` (timm), ``model``
(the transformers model), ``processor`` (prompts and pixels), ``io`` (composing, the
directory format), ``tiny`` (``tiny:composed``), ``backbone`` (:class:`ComposedVLM`).
"""

from thinkspace.backbones.composed.backbone import ComposedVLM

__all__ = ["ComposedVLM"]
