"""Latent projectors: k latents + one view's visual tokens -> that view's teacher tokens.

Both variants share the steps: a token-axis MLP on the k latents, per-view fusion with
the view's visual tokens, a token-axis map to the teacher's ``P`` tokens, and a channel
MLP to the teacher's width ``C``.

* :class:`LatentProjector` (default) is size-free: every teacher token is a query (a
  learned embedding for camera and register tokens, a Fourier code of the patch centre
  for patch tokens) attending over the fused latents and visual tokens (which carry a
  Fourier code of their own position). Any number of views, any image size, any grid.
* :class:`PaperProjector` is 3DThinker's released design: fixed ``Linear`` layers along
  the token axis (``visual_tokens + 64 -> teacher_tokens``), so it is tied to one
  image size; a view of another size is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class View:
    """One view to project.

    Attributes:
        sample: index of the sample (row of ``latents``) the view belongs to.
        tokens: ``[n, D]`` the view's visual tokens, row-major over ``grid``.
        grid: ``(rows, cols)`` of the visual tokens.
        out_grid: ``(rows, cols)`` of the teacher's patch grid for this view.
    """

    sample: int
    tokens: Tensor
    grid: tuple[int, int]
    out_grid: tuple[int, int]


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with GELU in between."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.GELU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def grid_code(rows: int, cols: int, bands: int, device: torch.device | None = None) -> Tensor:
    """Fourier code ``[rows * cols, 4 * bands]`` of cell centres in ``[0, 1]^2``, row-major."""
    y = (torch.arange(rows, device=device, dtype=torch.float32) + 0.5) / rows
    x = (torch.arange(cols, device=device, dtype=torch.float32) + 0.5) / cols
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    freqs = math.pi * 2.0 ** torch.arange(bands, device=device, dtype=torch.float32)
    phase = torch.stack([yy, xx], -1).reshape(-1, 2, 1) * freqs
    return torch.cat([phase.sin(), phase.cos()], -1).flatten(1)


class LatentProjector(nn.Module):
    """Size-free projector (queries from the teacher grid attend over latents + view tokens).

    Args:
        in_width: the backbone's hidden size ``D``.
        out_width: the teacher's channels ``C``.
        num_latents: k.
        num_special: camera + register tokens per view of the teacher.
        width: internal width.
        latent_tokens: tokens the latents are mapped to (token-axis MLP ``k -> m``).
        heads: attention heads.
        bands: Fourier bands of the position codes.
    """

    def __init__(self, in_width: int, out_width: int, num_latents: int, num_special: int = 1, width: int = 256,
                 latent_tokens: int = 16, heads: int = 4, bands: int = 6) -> None:
        super().__init__()
        self.num_latents, self.num_special, self.bands = num_latents, num_special, bands
        self.latent_mix = mlp([num_latents, latent_tokens, latent_tokens])
        self.memory_in = nn.Linear(in_width, width)
        self.memory_pos = nn.Linear(4 * bands, width)
        self.latent_type = nn.Parameter(torch.zeros(width))
        self.special = nn.Parameter(torch.randn(num_special, width) * 0.02)
        self.query_pos = mlp([4 * bands, width, width])
        self.attend = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.out = mlp([width, width, out_width])

    def forward(self, latents: Tensor, views: list[View]) -> list[Tensor]:
        """Teacher tokens ``[1 + R + rows * cols, C]`` per view, from latents ``[B, k, D]``."""
        mixed = self.latent_mix(latents.transpose(1, 2)).transpose(1, 2)  # [B, m, D]
        lat = self.memory_in(mixed) + self.latent_type  # [B, m, W]
        device = latents.device
        memories, queries = [], []
        for view in views:
            vis = self.memory_in(view.tokens) + self.memory_pos(grid_code(*view.grid, self.bands, device))
            memories.append(torch.cat([lat[view.sample], vis]))
            patch = self.query_pos(grid_code(*view.out_grid, self.bands, device))
            queries.append(torch.cat([self.special.to(patch.dtype), patch]))
        memory, memory_pad = _pad(memories)
        query, query_pad = _pad(queries)
        attended, _ = self.attend(query, memory, memory, key_padding_mask=memory_pad, need_weights=False)
        out = self.out(self.norm(attended + query))
        return [o[~pad] for o, pad in zip(out, query_pad)]


class PaperProjector(nn.Module):
    """3DThinker's released projector: token-axis MLPs with fixed token counts.

    Args:
        in_width: ``D``.
        out_width: ``C``.
        num_latents: k.
        visual_tokens: visual tokens per view the fusion layer takes (391 for 480x640 in Qwen2.5-VL).
        teacher_tokens: teacher tokens per view ``P`` (1374 for VGGT at 518x518).
        depth: layers of the fusion and channel MLPs (6 in the release).
        latent_tokens: tokens the latents are mapped to (64 in the release).
        view_size: ``(width, height)`` of the views it was built for, named in the error a view
            of another size raises.
    """

    def __init__(self, in_width: int, out_width: int, num_latents: int, visual_tokens: int, teacher_tokens: int,
                 depth: int = 6, latent_tokens: int = 64, view_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.visual_tokens, self.teacher_tokens, self.view_size = visual_tokens, teacher_tokens, view_size
        self.latent_mix = mlp([num_latents, latent_tokens, latent_tokens])
        self.fusion = mlp([visual_tokens + latent_tokens] + [teacher_tokens] * depth)
        self.channels = mlp([in_width] + [out_width] * depth)

    def forward(self, latents: Tensor, views: list[View]) -> list[Tensor]:
        mixed = self.latent_mix(latents.transpose(1, 2)).transpose(1, 2)  # [B, 64, D]
        out = []
        for view in views:
            n = view.tokens.shape[0]
            if n != self.visual_tokens:
                rows, cols = view.grid
                built = f" ({self.view_size[0]} x {self.view_size[1]} views)" if self.view_size else ""
                raise ValueError(
                    f"PaperProjector: a view has {n} visual tokens ({rows}x{cols}) but the projector was built "
                    f"for {self.visual_tokens}{built}; resize every view to that size with the dataset's "
                    "image_size (e.g. ThinkerCoT/MindCube image_size: [480, 640]) or use projector: attention")
            x = torch.cat([mixed[view.sample], view.tokens])  # [64 + n, D]
            out.append(self.channels(self.fusion(x.T).T))  # [P, C]
        return out


#: the released projector's submodules (``multimodal_projector/mmprojector.py``, class ``projector``) -> ours
RELEASED_NAMES = {"prompte_model.": "latent_mix.", "fusion_model.": "fusion.", "proj_3d_model.": "channels."}


def load_released_projector(projector: PaperProjector, tensors: dict[str, Tensor], source: str) -> None:
    """Copy 3DThinker's released projector weights into ``projector`` (names as saved inside the model
    without their ``projector_model.`` prefix: ``prompte_model.0.weight``, ``fusion_model.10.bias``, ...).

    Raises:
        ValueError: naming ``source`` and the tensors that are missing, have another shape, or are not
            the released projector's (nothing is copied then).
    """
    renamed, unknown = {}, []
    for name, tensor in tensors.items():
        old = next((o for o in RELEASED_NAMES if name.startswith(o)), None)
        if old is None:
            unknown.append(name)
        else:
            renamed[RELEASED_NAMES[old] + name[len(old):]] = tensor
    ours = projector.state_dict()
    inverse = {v: k for k, v in RELEASED_NAMES.items()}

    def released(name: str) -> str:
        head = next(n for n in inverse if name.startswith(n))
        return "projector_model." + inverse[head] + name[len(head):]

    missing = [released(n) for n in ours if n not in renamed]
    shapes = [f"{released(n)} {list(renamed[n].shape)} (expected {list(t.shape)})" for n, t in ours.items()
              if n in renamed and renamed[n].shape != t.shape]
    unknown += [released(n) for n in renamed if n not in ours]
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"shape of {', '.join(shapes)}"] if shapes else []) + (
        [f"not the projector's: {', '.join(sorted(unknown))}"] if unknown else [])
    if problems:
        raise ValueError(f"{source}: its released 3DThinker projector does not fit LatentAlignment's paper projector "
                         f"(k {projector.latent_mix[0].in_features}, {projector.visual_tokens} visual and "
                         f"{projector.teacher_tokens} teacher tokens): " + "; ".join(problems))
    projector.load_state_dict({n: renamed[n] for n in ours})


def _pad(rows: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack ``[n_i, W]`` into ``[V, n_max, W]`` and a padding mask ``[V, n_max]`` (True = padding)."""
    longest = max(r.shape[0] for r in rows)
    out = rows[0].new_zeros(len(rows), longest, rows[0].shape[-1])
    pad = torch.ones(len(rows), longest, dtype=torch.bool, device=rows[0].device)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]], pad[i, : r.shape[0]] = r, False
    return out, pad
