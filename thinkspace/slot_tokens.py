"""The latent slot's token strings: ``START``, k x ``PAD``, ``END`` (3DThinker's names).

Their own base-level module because both sides need them: the answer parser
(:mod:`thinkspace.answers`) strips them from a completion, and the objectives insert them
(:mod:`thinkspace.objectives.latent_slot`, where the slot's convention is described).
"""

START, PAD, END = "<|latent_start|>", "<|latent_pad|>", "<|latent_end|>"

#: the order 3DThinker adds them in (``3dthinker/stage1/src/main.py``), which decides their ids:
#: 151665, 151666, 151667 on Qwen2.5-VL's tokenizer (``LatentAlignment(token_layout="released")``)
RELEASED_ORDER = (PAD, START, END)
