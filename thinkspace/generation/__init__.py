"""Decoding algorithms on top of the backbone contract (not backbones themselves): prompt-only
batches (``prompts``), KV-cached decoding with latent steps and group rollouts
(``latent_decoding``), and the state such a decode loop prepares once (``decode_state``)."""
