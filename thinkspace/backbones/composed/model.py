"""The composed VLM as a transformers model: ``ComposedForConditionalGeneration``.

Same shape as transformers' LLaVA: ``.model`` holds ``vision_tower`` (timm),
``multi_modal_projector`` and ``language_model`` (the causal LM's decoder stack);
``.lm_head`` is the causal LM's head. ``model(input_ids, pixel_values, ...)`` writes the
projected frame features into the ``<image>`` placeholders of ``inputs_embeds`` (frames in
order over the batch, tokens row-major in each frame's pooled grid) before the decoder.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from thinkspace.backbones.composed.config import ComposedConfig
from thinkspace.backbones.composed.encoder import build_encoder, patch_features


class Projector(nn.Module):
    """``depth`` linear layers with GELU between them: ``[..., C] -> [..., D]``."""

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ComposedPreTrainedModel(PreTrainedModel):
    config_class = ComposedConfig
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _skip_keys_device_placement = ["past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing: the encoder's weights come from timm, the projector's from torch's defaults;
        transformers' generic init (normal on every Linear) must not overwrite them."""


class ComposedModel(ComposedPreTrainedModel):
    """Encoder, projector and decoder stack, without the LM head.

    Args:
        config: the composition.
        language_model: the causal LM's base model (``causal_lm.model``); built from
            ``config.text_config`` (random) when ``None``.
        vision_tower: the timm encoder; built from ``config`` (random) when ``None``.
    """

    def __init__(self, config: ComposedConfig, language_model: nn.Module | None = None,
                 vision_tower: nn.Module | None = None) -> None:
        super().__init__(config)
        from transformers import AutoModel

        self.vision_tower = vision_tower or build_encoder(config.encoder, config.encoder_kwargs)
        self.multi_modal_projector = Projector(config.encoder_dim, config.text_config.hidden_size,
                                               config.projector_depth)
        self.language_model = language_model or AutoModel.from_config(config.text_config)
        # FSDP wraps the decoder layers (listed by the language model) and the encoder's blocks
        blocks = getattr(self.vision_tower, "blocks", None)
        self._no_split_modules = sorted({type(b).__name__ for b in blocks}) if blocks is not None else []
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_image_features(self, pixel_values: Tensor) -> Tensor:
        """Projected visual tokens ``[F, rows * cols, D]`` of frames ``[F, 3, H, W]`` (row-major)."""
        tower_dtype = next(self.vision_tower.parameters()).dtype
        grid = patch_features(self.vision_tower, pixel_values.to(tower_dtype))  # [F, h, w, C]
        pool = self.config.pool
        if pool > 1:  # average pool; a partial last row/column averages what it covers
            grid = F.avg_pool2d(grid.permute(0, 3, 1, 2), pool, ceil_mode=True).permute(0, 2, 3, 1)
        tokens = grid.flatten(1, 2)  # [F, rows * cols, C]
        proj_dtype = self.multi_modal_projector.layers[0].weight.dtype
        return self.multi_modal_projector(tokens.to(proj_dtype))

    # transformers' forward signature, as each model class of a family spells it (generate reads it).
    def forward(
        self,
        input_ids: Tensor | None = None,
        pixel_values: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        """Hidden states ``[B, L, D]`` (after the final norm) of the sequence with frames written in.

        Raises:
            ValueError: the ``<image>`` placeholders and the frames' visual tokens differ in number.
        """
        kwargs.pop("return_dict", None)  # always a ModelOutput
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("ComposedModel: pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            if input_ids is None:
                raise ValueError("ComposedModel: pixel_values need input_ids to find the <image> placeholders")
            features = self.get_image_features(pixel_values)  # [F, T, D]
            slots = input_ids == self.config.image_token_id  # [B, L]
            if int(slots.sum()) != features.shape[0] * features.shape[1]:
                raise ValueError(
                    f"ComposedModel: {int(slots.sum())} <image> tokens in input_ids but {features.shape[0]} frames x "
                    f"{features.shape[1]} visual tokens per frame in pixel_values"
                )
            flat = features.reshape(-1, features.shape[-1]).to(inputs_embeds.dtype)
            inputs_embeds = inputs_embeds.masked_scatter(slots[..., None].expand_as(inputs_embeds), flat)
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                   position_ids=position_ids, past_key_values=past_key_values,
                                   use_cache=use_cache, return_dict=True, **kwargs)


class ComposedForConditionalGeneration(ComposedPreTrainedModel, GenerationMixin):
    """:class:`ComposedModel` plus the causal LM's head; generates with transformers' ``generate``.

    Args:
        config: the composition.
        language_model, vision_tower: as :class:`ComposedModel`.
        lm_head: the causal LM's output projection (tied weights stay tied: the same tensor).
    """

    def __init__(self, config: ComposedConfig, language_model: nn.Module | None = None,
                 vision_tower: nn.Module | None = None, lm_head: nn.Module | None = None) -> None:
        super().__init__(config)
        self.model = ComposedModel(config, language_model, vision_tower)
        text = config.text_config
        self.lm_head = lm_head or nn.Linear(text.hidden_size, text.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self._tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
            if lm_head is None:
                self.lm_head.weight = self.model.get_input_embeddings().weight
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    # transformers' forward signature, as each model class of a family spells it (generate reads it).
    def forward(
        self,
        input_ids: Tensor | None = None,
        pixel_values: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Logits ``[B, L, V]`` (the last ``logits_to_keep`` positions when > 0) and, with
        ``labels``, the shifted token cross-entropy."""
        out = self.model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=past_key_values, inputs_embeds=inputs_embeds,
                         use_cache=use_cache, **kwargs)
        hidden = out.last_hidden_state
        logits = self.lm_head(hidden[:, -logits_to_keep:] if logits_to_keep else hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(logits.device),
                                   ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=out.past_key_values,
                                      hidden_states=out.hidden_states, attentions=out.attentions)


def causal_lm_shell(composed: ComposedForConditionalGeneration) -> PreTrainedModel:
    """An ``AutoModelForCausalLM`` of the composed model's text config whose decoder and head
    are the composed model's own modules (shared, not copied): ``save_pretrained`` of it writes
    a plain causal-LM directory."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        shell = AutoModelForCausalLM.from_config(composed.config.text_config)
    shell.model = composed.model.language_model
    shell.lm_head = composed.lm_head
    return shell
