"""The latent slot: ``<|latent_start|>``, k x ``<|latent_pad|>``, ``<|latent_end|>`` in the response.

Convention (the same in training, rewards and decoding):

* The slot is ``start pad_1 ... pad_k end``. It replaces a marker in the response
  (3DThinker's chain-of-thought data carries ``<output_3D>``) or, when there is none, is
  inserted at the start (default) or the end of the response.
* Cross-entropy masks the pads (their labels are -100); start and end are supervised.
* The **latents** are the last-layer hidden states (after the final norm) at the k
  positions whose *next* input is a pad: ``start, pad_1, ..., pad_{k-1}``. In training
  the pads' input embeddings are the pad token's (teacher forcing); in feedback
  decoding the hidden state at each of these positions is fed back as the next input
  embedding, and end is forced after k such steps (see
  :mod:`thinkspace.generation.slots`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import Tensor

from thinkspace.backbones.released_checkpoint import SLOT_ID_KEYS, slot_ids_in_config
from thinkspace.data.batch import IGNORE_INDEX
from thinkspace.data.schema import SpatialSample
from thinkspace.slot_tokens import END, PAD, RELEASED_ORDER, START
from thinkspace.utils.choices import check_choice

Placement = Literal["start", "end"]


@dataclass
class LatentSlot:
    """Where the latent tokens go and how to find them again.

    Args:
        k: number of latent pads (3DThinker: 12 in training; its authors decode 8 steps, see
            ``latent_steps`` in :func:`~thinkspace.generation.decode.thinkspace_decode`).
        placement: where to insert the slot when the response has no marker.
        marker: text in the response that the slot replaces (``None``: no marker).
        require_marker: a response without the marker is an error instead of an insertion.
    """

    k: int = 12
    placement: Placement = "start"
    marker: str | None = "<output_3D>"
    require_marker: bool = False
    start_id: int = -1
    pad_id: int = -1
    end_id: int = -1

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"latent slot: k must be at least 1, got {self.k}")
        check_choice("latent slot: placement", self.placement, Placement)

    @property
    def tokens(self) -> list[str]:
        return [START, PAD, END]

    @property
    def text(self) -> str:
        return START + PAD * self.k + END

    def bind(self, ids: list[int]) -> LatentSlot:
        """This slot with the token ids the backbone gave ``[start, pad, end]``."""
        start, pad, end = ids
        return replace(self, start_id=int(start), pad_id=int(pad), end_id=int(end))

    def insert(self, sample: SpatialSample) -> SpatialSample:
        """The sample with the slot in its response (unchanged if it has none or already has the slot).

        Raises:
            ValueError: naming the sample, when ``require_marker`` is set and the
                response has no marker, or a slot in the response has the wrong number of pads.
        """
        response = sample.response
        if response is None:
            return sample
        if START in response:
            pads = response.count(PAD)
            if START + PAD * self.k + END not in response or pads != self.k:
                raise ValueError(
                    f"sample {sample.id!r} ({sample.source}): its response holds a latent slot with {pads} "
                    f"pads; expected exactly {self.k} between {START} and {END}"
                )
            return sample
        if self.marker and self.marker in response:
            response = response.replace(self.marker, self.text, 1)
        elif self.require_marker:
            raise ValueError(
                f"sample {sample.id!r} ({sample.source}): the response has no {self.marker!r} marker but the "
                "latent slot requires one (set require_marker: false to insert the slot instead)"
            )
        elif self.placement == "start":
            response = self.text + response
        else:
            response = response + self.text
        return replace(sample, response=response)

    def mask_labels(self, input_ids: Tensor, labels: Tensor) -> Tensor:
        """``labels`` ``[B, L]`` with -100 at every pad, so cross-entropy skips them."""
        return labels.masked_fill(input_ids == self.pad_id, IGNORE_INDEX)

    def positions(self, input_ids: Tensor, ids: list[str] | None = None) -> Tensor:
        """Positions ``[B, k]`` of the latents: the k positions whose next token is a pad.

        Raises:
            ValueError: naming the sample, when a row does not hold exactly k pads after a start.
        """
        nxt = torch.zeros_like(input_ids, dtype=torch.bool)
        nxt[:, :-1] = input_ids[:, 1:] == self.pad_id
        counts = nxt.sum(1)
        before = input_ids.gather(1, nxt.long().argmax(1, keepdim=True))[:, 0]
        if bool(((counts != self.k) | (before != self.start_id)).any()):  # one host read for both checks
            for b, n in enumerate(counts.tolist()):
                if n != self.k:
                    raise ValueError(f"sample {ids[b] if ids else f'#{b}'!r}: found {n} latent pads in the sequence, "
                                     f"expected {self.k}; does its response hold the latent slot?")
            b = next(i for i, first in enumerate(before.tolist()) if first != self.start_id)
            raise ValueError(f"sample {ids[b] if ids else f'#{b}'!r}: the latent pads do not follow {START}")
        # every row has exactly k: a stable sort brings their positions first, in order (no nonzero, no sync)
        return torch.sort(nxt.to(torch.uint8), dim=1, descending=True, stable=True).indices[:, :self.k]

    def gather(self, hidden: Tensor, input_ids: Tensor, ids: list[str] | None = None) -> Tensor:
        """Latents ``[B, k, D]`` from last-layer hidden states ``[B, L, D]``."""
        pos = self.positions(input_ids, ids)
        return hidden.gather(1, pos.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


def add_slot_tokens(backbone: Any, layout: str = "thinkspace") -> list[int]:
    """Add the slot's tokens to ``backbone`` and return their ids ``[start, pad, end]``.

    ``layout``: ``thinkspace`` adds start, pad, end and keeps a padded vocabulary's spare rows;
    ``released`` adds pad, start, end and resizes the vocabulary to the tokenizer's length, as 3DThinker's
    stage 1 (``3dthinker/stage1/src/main.py``: ``add_tokens`` in that order, then
    ``resize_token_embeddings(len(tokenizer))``). Tokens the tokenizer already holds (a checkpoint that
    saved them) keep their ids either way.

    Raises:
        ValueError: the model directory's ``config.json`` records other slot ids than the tokenizer now gives
            (a released checkpoint whose tokenizer lacked the tokens, read with the other layout), naming both.
    """
    if layout == "released":
        pad, start, end = backbone.add_tokens(list(RELEASED_ORDER), exact_vocabulary=True)
    else:
        start, pad, end = backbone.add_tokens([START, PAD, END])
    ids = {"start": int(start), "pad": int(pad), "end": int(end)}
    recorded = slot_ids_in_config(backbone.path) if isinstance(getattr(backbone, "path", None), str) else {}
    wrong = {role: (recorded[role], ids[role]) for role in recorded if recorded[role] != ids[role]}
    if wrong:
        detail = ", ".join(f"{SLOT_ID_KEYS[r]} {want} but the tokenizer gives {got}"
                           for r, (want, got) in wrong.items())
        raise ValueError(f"{backbone.path}/config.json: {detail}; a released 3DThinker checkpoint needs "
                         f"LatentAlignment token_layout: released (got {layout!r})")
    return [ids["start"], ids["pad"], ids["end"]]
