"""The policy's scoring pass starts from the rollout's own prefill: equal numbers, one prompt pass less."""

import pytest
import torch
from torch import nn

from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.rl import SpatialGRPO
from thinkspace.rl.prefix_cache import train_mode_dropout

pytestmark = pytest.mark.usefixtures("one_thread")

REWARDS = {"answer": "thinkspace.rl.rewards.answer_reward"}


def policy(**kwargs) -> SpatialGRPO:
    torch.manual_seed(0)
    return SpatialGRPO(QwenVL("tiny:qwen2_5_vl"), rewards=REWARDS, group_size=3, max_new_tokens=6, **kwargs)


def prompts(module: SpatialGRPO):
    return module.collator()([ColouredSquares(2, image_size=(56, 112))[i] for i in range(2)])


def gradients(module: SpatialGRPO, value: torch.Tensor) -> list[torch.Tensor]:
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def test_logprobs_and_gradients_from_the_rollout_prefill_equal_a_fresh_prefill(tiny_cache):
    module = policy(beta=0.0)
    rollout = module.roll_out(prompts(module))
    prefix = rollout.generation.prefix
    assert module.prefix_reuse_blocker is None and prefix is not None
    assert prefix.hidden.requires_grad and prefix.hidden.shape[0] == 6  # B x G rows, with their graph
    module.train()
    weights = torch.randn(rollout.generation.tokens.shape, generator=torch.Generator().manual_seed(1))
    reused = module.logprobs(rollout.generation, prefix)
    fresh = module.logprobs(rollout.generation)
    torch.testing.assert_close(reused, fresh, atol=1e-6, rtol=0)
    assert float(reused.detach()[rollout.generation.completion_mask].max()) < 0
    for a, b in zip(gradients(module, (reused * weights).sum()), gradients(module, (fresh * weights).sum())):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert any(float(g.abs().max()) > 0 for g in gradients(module, (module.logprobs(rollout.generation)
                                                                       * weights).sum()))


def test_a_training_step_runs_the_prompts_once_less_and_gives_the_same_loss_and_gradients(tiny_cache):
    reusing, recomputing = policy(beta=0.04), policy(beta=0.04)
    reusing.prepare_policy(), recomputing.prepare_policy()  # the reference copies, made before the hooks
    recomputing.prefix_reuse_blocker = "switched off by the test"
    losses, grads, towers = [], [], []
    for module in (reusing, recomputing):
        runs = []
        handle = module.backbone.hf.model.visual.register_forward_hook(lambda *a: runs.append(1))
        try:
            module.train()
            loss = module.training_step(prompts(module), 0)
        finally:
            handle.remove()
        assert module._rollout.generation.prefix is None  # handed over once, then dropped
        losses.append(loss.detach())
        grads.append(gradients(module, loss))
        towers.append(len(runs))
    # rollout prefill + policy pass against rollout + policy; the reference copy has its own tower
    assert towers == [1, 2]
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_later_iterations_of_a_rollout_run_the_prompts_again(tiny_cache):
    module = policy(beta=0.0, num_iterations=2)
    batch = prompts(module)
    module.train()
    first = module.training_step(batch, 0)
    first.backward()  # the prefix's graph is spent
    second = module.training_step(batch, 1)  # the same rollout, scored from a fresh prefill
    second.backward()
    assert module._uses == 2 and torch.isfinite(second)


def test_dropout_in_training_mode_keeps_the_prefill_apart(tiny_cache):
    module = policy(beta=0.0)
    attention = module.backbone.language_model().layers[1].self_attn
    attention.attention_dropout = 0.1
    rollout = module.roll_out(prompts(module))
    assert module.prefix_reuse_blocker == "model.model.language_model.layers.1.self_attn: attention_dropout 0.1"
    assert rollout.generation.prefix is None


def test_train_mode_dropout_names_the_first_module_that_draws_it():
    assert train_mode_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0))) is None
    assert train_mode_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout2d(0.25))) == "1: Dropout2d p=0.25"
    assert train_mode_dropout(nn.Sequential(nn.Linear(2, 2)).eval().append(nn.Dropout(0.5))) == "1: Dropout p=0.5"
