"""The rollout's own log-probabilities stand in for a scoring pass: equal to 1e-6."""

from dataclasses import replace

import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode import decode
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment
from thinkspace.rl import SpatialGRPO
from thinkspace.rl.rollout import sequence_logprobs


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("with_slot", [False, True])
def test_decode_logprobs_equal_the_scoring_pass(tiny_cache, with_slot):
    torch.manual_seed(0)
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"latent": LatentAlignment(k=4, projector_width=16)})
    module.eval()
    data = SyntheticSpatial(2, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=3)
    batch = module.collator(with_response=False)([replace(data[i], response=None) for i in range(2)])
    slot = module.objectives["latent"].slot if with_slot else None
    with torch.no_grad():
        gen = decode(module.backbone, batch, slot, mode="feedback", max_new_tokens=10, do_sample=True,
                     temperature=0.7, top_k=50, group=3, eos_token_id=list(range(0, 300)),
                     generator=torch.Generator().manual_seed(4), return_logprobs=True)
        scored = sequence_logprobs(module.backbone, gen.prompts, gen, temperature=0.7, feedback=with_slot)
    assert gen.logprobs.shape == gen.tokens.shape == scored.shape
    assert bool((gen.logprobs[~gen.completion_mask] == 0).all())
    assert gen.completion_mask.sum(1).min() < gen.completion_mask.sum(1).max()  # some rows stopped early
    assert float(gen.logprobs[gen.completion_mask].max()) < 0
    torch.testing.assert_close(gen.logprobs, scored, atol=1e-6, rtol=0)


def test_num_iterations_takes_the_old_logprobs_from_the_rollout(tiny_cache):
    torch.manual_seed(0)
    policy = SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), rewards={"answer": "thinkspace.rl.rewards.answer_reward"},
                         group_size=3, max_new_tokens=6, beta=0.0, num_iterations=2)
    batch = policy.collator()([ColouredSquares(2, image_size=(56, 112))[i] for i in range(2)])
    passes = []
    handle = policy.backbone.hf.model.language_model.register_forward_hook(
        lambda mod, args, kwargs, out: passes.append(kwargs["inputs_embeds"].shape[1]), with_kwargs=True)
    try:
        rollout = policy.roll_out(batch)
    finally:
        handle.remove()
    # the prefill, then one position per decoded token: no extra pass over the completions
    assert passes[1:] == [1] * 6
    policy.eval()
    with torch.no_grad():
        torch.testing.assert_close(rollout.old_logp, policy.logprobs(rollout.generation), atol=1e-6, rtol=0)
