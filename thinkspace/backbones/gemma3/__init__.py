"""The Gemma 3 family: a SigLIP encoder pooled to a fixed grid per image and a Gemma 3 text model.

``backbone`` (:class:`Gemma3`), ``collator`` (its token layout), ``tiny`` (``tiny:gemma3``).
"""

from thinkspace.backbones.gemma3.backbone import Gemma3

__all__ = ["Gemma3"]
