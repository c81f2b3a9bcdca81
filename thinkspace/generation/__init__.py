"""Decoding on top of the backbone contract (not backbones themselves). The one entry is
:func:`~thinkspace.generation.decode.decode`: thinkspace's KV-cached loop (``decode_loop``) over a prefill
(``prefill``), the latent slot's rows (``slots``), one model step per token (``model_step``: the lean step,
``decoder_step`` with ``decoder_weights`` and ``packed_linear``, or the Hugging Face step with the state
prepared once, ``decode_state``); or, chosen explicitly, transformers' ``generate``
(``transformers_generate``). The result is a :class:`~thinkspace.generation.decoded.Decoded`."""
