"""Decoding algorithms on top of the backbone contract (not backbones themselves): prompt-only
batches (``prompts``), KV-cached decoding with latent steps and group rollouts
(``latent_decoding``), the state such a decode loop prepares once (``decode_state``), and the
lean per-token step (``decoder_step``, with what it reads from a decoder: ``decoder_weights``)."""
