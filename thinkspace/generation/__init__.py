"""Decoding algorithms: latent decoding, the lean per-token step."""
