"""Point clouds from a model's 3D latents: the library (:mod:`~thinkspace.points.decode`), the TensorBoard
callback (:mod:`~thinkspace.points.callback`); ``thinkspace points`` builds on them from a checkpoint
(:mod:`thinkspace.inference.points`)."""

from thinkspace.points.callback import PointCloudLogger
from thinkspace.points.decode import decode_latents, imagine, latent_objective

__all__ = ["PointCloudLogger", "decode_latents", "imagine", "latent_objective"]
