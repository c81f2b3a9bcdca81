"""The latent slot's token strings: ``START``, k x ``PAD``, ``END`` (3DThinker's names).

Their own base-level module because both sides need them: the answer parser
(:mod:`thinkspace.answers`) strips them from a completion, and the objectives insert them
(:mod:`thinkspace.objectives.latent_slot`, where the slot's convention is described).
"""

START, PAD, END = "<|latent_start|>", "<|latent_pad|>", "<|latent_end|>"
