"""What a KV-cached decode loop prepares once instead of at every token.

A decoding step of ``N`` rows needs three things besides the model: random numbers for
sampling, the attention mask over the prompt and the tokens so far, and each row's next
text position. :func:`draw_uniforms` draws the random numbers of every step in one call
per generator; :class:`DecodeMask` holds the padding mask of the whole decode in one
preallocated buffer ``[N, Lp + T]`` and hands the decoder, at step ``t``, the view of its
first ``Lp + t + 1`` columns, already in the form the decoder's own mask builder would
have produced for one query token (boolean ``[N, 1, 1, K]``, True = attend; transformers'
``create_causal_mask`` returns a 4D mask as it is), so the decoder skips building it.
Both are exact: the tokens are the ones the per-step construction gives (tested in
``tests/test_decode_fast_path.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def draw_uniforms(rows: int, steps: int, generator: torch.Generator | list[torch.Generator] | None,
                  device: torch.device | str = "cpu") -> Tensor:
    """Uniform draws in (0, 1) ``[steps, rows]``: one per row and step, from one generator or one
    per consecutive block of ``rows / len(generator)`` rows (each block's draws depend on its
    generator alone, so a prompt's group does not depend on the other prompts in the batch)."""
    if generator is None or isinstance(generator, torch.Generator):
        u = torch.rand(steps, rows, generator=generator, device=device)
    else:
        if not generator or rows % len(generator):
            raise ValueError(f"sampling: {rows} rows do not split over {len(generator)} generators")
        block = rows // len(generator)
        u = torch.cat([torch.rand(steps, block, generator=g, device=device) for g in generator], 1)
    return u.clamp_(min=torch.finfo(u.dtype).tiny)  # 0 would pick a leading zero-probability token


def sliding_window_layers(config: object) -> list[str]:
    """The decoder's attention kinds other than full attention (``config.layer_types``, e.g.
    Gemma 3's ``"sliding_attention"``; ``use_sliding_window`` counts as one): empty when every
    layer attends to every earlier position, so one prepared mask serves every layer."""
    kinds = sorted({t for t in (getattr(config, "layer_types", None) or []) if t != "full_attention"})
    if not kinds and getattr(config, "use_sliding_window", False):
        kinds = ["sliding_attention"]
    return kinds


class DecodeMask:
    """The padding mask of a decode: the left-padded prompt's ``[N, Lp]`` then one column per step.

    Args:
        prompt_mask: ``[N, Lp]`` 1 for prompt tokens, 0 for left padding.
        steps: tokens to decode at most, T.
        prepared: hand the decoder the 4D boolean mask it would build itself (it then skips
            its mask construction); ``False`` hands it the 2D mask, as a plain forward does.
    """

    def __init__(self, prompt_mask: Tensor, steps: int, prepared: bool = True) -> None:
        rows, length = prompt_mask.shape
        self.prompt_length, self.prepared = length, prepared
        self.buffer = torch.ones(rows, length + steps, dtype=torch.long, device=prompt_mask.device)
        self.buffer[:, :length] = prompt_mask
        self.bool_buffer = self.buffer.bool()[:, None, None] if prepared else None

    def step(self, t: int, live: Tensor) -> Tensor:
        """The mask for decode step ``t`` (0-based), whose new token counts where ``live`` ``[N]``."""
        column = self.prompt_length + t
        self.buffer[:, column] = live
        if not self.prepared:
            return self.buffer[:, :column + 1]
        self.bool_buffer[..., column] = live.bool()[:, None, None]
        return self.bool_buffer[..., :column + 1]

    def keep(self, index: Tensor) -> None:
        """Continue with the rows ``index`` ``[n]`` only (finished rows dropped from the running batch)."""
        self.buffer = self.buffer[index]
        if self.bool_buffer is not None:
            self.bool_buffer = self.bool_buffer[index]
