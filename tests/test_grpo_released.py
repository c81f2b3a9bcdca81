"""The released 3DThinker stage-2 optimisation knobs: loss normalisation per completion,
forced latent tokens counted, LoRA on every Linear outside the vision tower (lm_head too)."""

import re

import pytest
import torch
from torch import nn

from thinkspace.backbones import QwenVL
from thinkspace.backbones.lora import LANGUAGE_LINEAR_AND_HEAD, LoraSettings
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.objectives import LatentAlignment
from thinkspace.rl import SpatialGRPO
from thinkspace.rl.loss import clipped_loss

ANSWER = {"answer": "thinkspace.rl.rewards.answer_reward"}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_sequence_and_token_normalisation_by_hand():
    # ratio 1 everywhere (logp == old), beta 0: each counted token's term is -A
    # completion 0: A = +1 over 3 tokens; completion 1: A = -2 over 1 token (unequal lengths)
    logp = torch.zeros(2, 3, requires_grad=True)
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    token, _ = clipped_loss(logp, logp.detach(), adv, mask, normalise="token")
    sequence, _ = clipped_loss(logp, logp.detach(), adv, mask, normalise="sequence")
    assert token.item() == pytest.approx((-1 * 3 + 2 * 1) / 4)  # -0.25: the long completion dominates
    assert sequence.item() == pytest.approx((-1 + 2) / 2)  # +0.5: each completion weighs the same
    sequence.backward()  # d/dlogp of -A * ratio / (tokens of its completion) / completions
    torch.testing.assert_close(logp.grad, torch.tensor([[-1 / 6, -1 / 6, -1 / 6], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="loss normalisation must be 'token' or 'sequence', got 'batch'"):
        clipped_loss(logp, logp.detach(), adv, mask, normalise="batch")


def views(n=2):
    data = SyntheticSpatial(n, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=0)
    return [data[i] for i in range(n)]


def test_forced_latent_tokens_are_counted_with_loss_tokens_completion(tiny_cache):
    torch.manual_seed(0)
    kwargs = dict(latent=LatentAlignment(k=3, projector_width=16), group_size=2, max_new_tokens=8, beta=0.0)
    sampled = SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), **kwargs)
    rollout = sampled.roll_out(sampled.collator()(views()))
    keep = rollout.generation.completion_mask
    # forced start + 3 pads + forced end: 5 tokens per completion the default leaves out
    assert (keep.sum(1) - rollout.mask.sum(1)).tolist() == [5, 5, 5, 5]
    counted = SpatialGRPO(sampled.backbone, loss_tokens="completion", loss_normalisation="sequence",
                          **{**kwargs, "latent": sampled.latent})
    assert torch.equal(counted.roll_out(counted.collator()(views())).mask, keep)
    with pytest.raises(ValueError, match="model.loss_tokens must be 'sampled' or 'completion', got 'all'"):
        SpatialGRPO(sampled.backbone, rewards=ANSWER, loss_tokens="all")


def test_model_chosen_slot_in_rollouts_is_not_forced(tiny_cache):
    torch.manual_seed(0)
    module = SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), latent=LatentAlignment(k=3, projector_width=16), group_size=2,
                         max_new_tokens=4, beta=0.0, force_latent_start=False, latent_early_end=True,
                         stop_at_eos=False)
    rollout = module.roll_out(module.collator()(views()))
    slot = module.latent.slot
    assert (rollout.generation.tokens[:, 0] != slot.start_id).all()  # a random policy never picks it
    assert rollout.mask.all()  # every token was the policy's choice
    assert rollout.rewards.values[rollout.rewards.names.index("latent3d")].tolist() == [0.0] * 4  # no latents


def test_lora_targets_every_linear_outside_the_vision_tower(qwen25):
    linear = {name for name, m in qwen25.model.named_modules() if isinstance(m, nn.Linear)}
    expected = {name for name in linear if "visual" not in name}
    assert "lm_head" in expected
    assert {name for name in linear if re.fullmatch(LANGUAGE_LINEAR_AND_HEAD, name)} == expected
    adapted = QwenVL("tiny:qwen2_5_vl", lora=LoraSettings(r=2, alpha=4, target_modules=LANGUAGE_LINEAR_AND_HEAD))
    wrapped = {name.replace("base_model.model.", "", 1) for name, m in adapted.model.named_modules()
               if hasattr(m, "lora_A") and isinstance(getattr(m, "base_layer", None), nn.Linear)}
    assert wrapped == expected


def test_rollouts_sample_with_the_configured_values_not_the_checkpoints_generation_config(tiny_cache):
    """transformers >= 4.50 fills default-valued fields (temperature 1.0, top_p 1.0, top_k 50) from the
    checkpoint's generation_config.json (Qwen2.5-VL: top_k 1, top_p 0.001): near-greedy rollouts in
    3DThinker's release. thinkspace samples with its own settings only."""
    torch.manual_seed(0)
    module = SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), rewards=ANSWER, group_size=4, max_new_tokens=6, beta=0.0,
                         stop_at_eos=False)
    config = module.backbone.hf.generation_config
    config.do_sample, config.top_k, config.top_p, config.temperature = True, 1, 0.001, 0.1
    tokens = module.roll_out(module.collator()(views(1))).generation.tokens
    assert len({tuple(row) for row in tokens.tolist()}) == 4  # temperature 1, no top-k/top-p: 4 different
    module.top_k = 1  # the checkpoint's top_k, set explicitly: the group collapses to one completion
    tokens = module.roll_out(module.collator()(views(1))).generation.tokens
    assert len({tuple(row) for row in tokens.tolist()}) == 1
