"""``ComposedVLM``: the backbone contract on a timm encoder + projector + causal LM."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from thinkspace.backbones.attention import check_attn_implementation
from thinkspace.backbones.capabilities import FIXED_TOKEN_GRID, LATENT_DECODING, VIDEO
from thinkspace.backbones.composed.collator import ComposedCollator, ComposedLayout
from thinkspace.backbones.composed.encoder import EncoderGeometry
from thinkspace.backbones.composed.io import compose, is_composed_dir, load_causal_lm, load_composed, save_composed
from thinkspace.backbones.composed.processor import ComposedProcessor
from thinkspace.backbones.hf_backbone import Dtype, HFBackbone
from thinkspace.backbones.lora import LoraSettings, apply_lora
from thinkspace.backbones.merge import merged_copy
from thinkspace.backbones.paths import resolve_model_path
from thinkspace.backbones.registry import FAMILIES
from thinkspace.utils.choices import check_choice

Stage = Literal["joint", "projector"]


class ComposedVLM(HFBackbone):
    """A VLM you assemble: a timm image encoder, optional pooling, an MLP projector, any causal LM.

    Either ``path`` (a composed directory, e.g. an export, or ``tiny:composed``) or a new
    composition from ``lm_path`` and ``encoder``. A new composition's projector is random;
    train it first with ``stage: projector`` (LLaVA's warm-up), then ``stage: joint``.

    Args:
        path: a composed directory or ``tiny:composed``.
        lm_path: a causal LM directory (with ``config.json``) or Hub id, for a new composition.
        encoder: a ``timm.create_model`` name, for a new composition (``vit_small_patch14_dinov2``).
        encoder_kwargs: extra ``timm.create_model`` arguments (``img_size``, ...).
        encoder_weights_path: the encoder's pretrained weights as a local file (timm layout).
        encoder_pretrained: download timm's pretrained weights from the Hub instead.
        pool: average-pool stride over each frame's patch grid (default 1: every patch is a token).
        projector_depth: linear layers of the projector (default 2).
        freeze_encoder: keep the encoder's weights fixed.
        stage: ``projector`` trains only the projector (encoder and LM frozen); ``joint``
            trains the projector and the LM (and the encoder unless ``freeze_encoder``).
            Objectives' heads train in both. ``model.freeze`` patterns freeze more on top.
        dtype: weight dtype (``auto``: the LM's stored dtype; encoder and projector follow it).
        attn_implementation: the LM's attention (``sdpa``, ``flash_attention_2``, ``eager``).
        lora: LoRA adapters on the LM's linear layers (the projector still trains in ``joint``).

    Raises:
        ValueError: neither or both of ``path`` and (``lm_path``, ``encoder``); composition
            arguments with ``path`` (a composed directory records its own); a bad ``stage``.
    """

    families = FAMILIES["composed"].model_types
    family_label = "composed"
    capabilities = frozenset({VIDEO, LATENT_DECODING, FIXED_TOKEN_GRID})
    collator_class = ComposedCollator

    # Spelled out per family, not shared: the typed signature is the config schema jsonargparse reads.
    def __init__(
        self,
        path: str | None = None,
        lm_path: str | None = None,
        encoder: str | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        encoder_weights_path: str | None = None,
        encoder_pretrained: bool = False,
        pool: int | None = None,
        projector_depth: int | None = None,
        freeze_encoder: bool = False,
        stage: Stage = "joint",
        dtype: Dtype = "auto",
        attn_implementation: str = "sdpa",
        lora: LoraSettings | None = None,
    ) -> None:
        super().__init__()
        check_choice("ComposedVLM: stage", stage, Stage)
        new = lm_path is not None or encoder is not None
        if (path is None) == (not new) or (new and (lm_path is None or encoder is None)):
            raise ValueError("ComposedVLM: give either path (a composed directory or tiny:composed) or both lm_path "
                             f"and encoder for a new composition; got path={path!r}, lm_path={lm_path!r}, "
                             f"encoder={encoder!r}")
        given = {k: v for k, v in (("encoder_kwargs", encoder_kwargs), ("encoder_weights_path", encoder_weights_path),
                                   ("encoder_pretrained", encoder_pretrained or None), ("pool", pool),
                                   ("projector_depth", projector_depth)) if v is not None}
        if path is not None and given:
            raise ValueError(f"ComposedVLM: {sorted(given)} describe a new composition (with lm_path and encoder); "
                             f"the composed directory {path!r} records its own")
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        check_attn_implementation(attn_implementation, path or lm_path)
        if path is not None:
            self.path = resolve_model_path(path)
            if not is_composed_dir(self.path):
                raise ValueError(f"{self.path}: config.json is not a composed model (model_type "
                                 f"'thinkspace_composed'); for a causal LM directory use lm_path")
            model, tokenizer = load_composed(self.path, torch_dtype, attn_implementation)
        else:
            self.path = lm_path
            lm, tokenizer = load_causal_lm(lm_path, torch_dtype, attn_implementation)
            model = compose(lm, tokenizer, encoder, encoder_kwargs, encoder_weights_path, encoder_pretrained,
                            pool or 1, projector_depth or 2)
        self.family = "thinkspace_composed"
        config = model.config
        self.processor = ComposedProcessor(tokenizer, _geometry(model), config.token_grid)
        self.freeze_encoder, self.stage = freeze_encoder, stage
        model.train()
        self.model = apply_lora(model, lora) if lora is not None else model
        self.apply_recipe()

    def apply_recipe(self) -> None:
        """Set ``requires_grad`` by ``stage`` and ``freeze_encoder`` (again after embeddings are resized)."""
        inner = self.hf.model
        lora = self.hf is not self.model
        if not lora:
            self.hf.requires_grad_(self.stage == "joint")  # the LM and its head
        elif self.stage == "projector":
            self.hf.requires_grad_(False)  # adapters included
        inner.multi_modal_projector.requires_grad_(True)
        train_encoder = self.stage == "joint" and not self.freeze_encoder and not lora
        inner.vision_tower.requires_grad_(train_encoder)

    def add_tokens(self, tokens: list[str], exact_vocabulary: bool = False) -> list[int]:
        ids = super().add_tokens(tokens, exact_vocabulary)
        self.apply_recipe()  # a resize makes new embedding tensors that would otherwise train
        return ids

    def layout(self) -> ComposedLayout:
        rows, cols = self.hf.config.token_grid
        return ComposedLayout(image_token_id=int(self.hf.config.image_token_id), rows=rows, cols=cols)

    def tokens_per_frame(self, height: int, width: int) -> tuple[int, int]:
        """The fixed ``token_grid``: every frame is resized to the encoder's input size."""
        rows, cols = self.hf.config.token_grid
        return int(rows), int(cols)

    def save_pretrained(self, out_dir: str | Path, merge_lora: bool = True) -> dict[str, Any]:
        """Write a composed directory to ``out_dir``; return the ``init_args`` that rebuild it.

        ``language_model/`` is a plain causal-LM directory (resized embeddings, LoRA merged when
        ``merge_lora``). The returned ``path`` is relative to ``out_dir``; the recipe switches are
        kept (``stage``, ``freeze_encoder``); LoRA is not (merged, or refused).

        Raises:
            ValueError: LoRA layers and ``merge_lora=False`` (a plain LM directory cannot hold adapters).
        """
        model = self.model
        if self.hf is not model:  # peft
            if not merge_lora:
                raise ValueError("ComposedVLM.save_pretrained: the model has LoRA adapters; a plain causal-LM "
                                 "directory cannot hold them, so export with merge_lora=True")
            model = merged_copy(model)
        save_composed(model, self.tokenizer, out_dir)
        return {"path": ".", "stage": self.stage, "freeze_encoder": self.freeze_encoder}


def _geometry(model: Any) -> EncoderGeometry:
    """The encoder geometry recorded in the config plus timm's normalisation for it."""
    from timm.data import resolve_model_data_config

    config, tower = model.config, model.model.vision_tower
    data = resolve_model_data_config(tower)
    return EncoderGeometry(dim=int(config.encoder_dim), image_size=tuple(config.image_size),
                           patch_grid=tuple(config.patch_grid), mean=tuple(data["mean"]), std=tuple(data["std"]),
                           interpolation=str(data["interpolation"]))
