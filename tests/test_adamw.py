"""The modules' default optimizer: AdamW fused where the parameters allow, torch's default otherwise."""

import torch
from torch import nn

from thinkspace.adamw import adamw, fused_adamw_supported


def test_fused_on_cpu_parameters_and_param_groups():
    weight, bias = nn.Parameter(torch.randn(3, 2)), nn.Parameter(torch.zeros(3))
    optimizer = adamw([{"params": [weight], "weight_decay": 0.01}, {"params": [bias], "weight_decay": 0.0}], lr=1e-3)
    assert optimizer.defaults["fused"] is True
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_fused_steps_match_the_per_parameter_loop():
    torch.manual_seed(0)
    start = [torch.randn(16, 8), torch.randn(8)]
    grads = [[torch.randn_like(t) for t in start] for _ in range(5)]
    results = []
    for fused in (True, False):
        params = [nn.Parameter(t.clone()) for t in start]
        optimizer = adamw(params, lr=1e-2, fused=fused)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = g.clone()
            optimizer.step()
        results.append([p.detach() for p in params])
    for fused, loop in zip(*results):
        torch.testing.assert_close(fused, loop, rtol=1e-6, atol=1e-7)
        assert not torch.equal(fused, start[0] if fused.dim() == 2 else start[1])  # the steps moved them


def test_parameters_the_fused_kernel_does_not_take_get_the_default():
    on_meta = nn.Parameter(torch.empty(2, device="meta"))
    integer = nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)
    cpu = nn.Parameter(torch.zeros(2))
    for params in ([on_meta], [integer, cpu], [on_meta, cpu]):
        assert not fused_adamw_supported(params)
        assert adamw(params, lr=1e-3).defaults["fused"] is False
    assert fused_adamw_supported([cpu])


def test_an_explicit_choice_is_kept():
    param = nn.Parameter(torch.zeros(2))
    assert adamw([param], lr=1e-3, foreach=False).defaults["fused"] is None
    assert adamw([param], lr=1e-3, fused=False).defaults["fused"] is False


def test_the_modules_default_to_it(qwen25):
    from thinkspace.modules.spatial_vlm import SpatialVLM
    from thinkspace.rl import SpatialGRPO

    grpo = SpatialGRPO(qwen25, rewards={"answer": "thinkspace.rl.rewards.answer_reward"})
    for module, lr in ((SpatialVLM(qwen25), 1e-4), (grpo, 1e-5)):
        optimizer = module.configure_optimizers()
        assert isinstance(optimizer, torch.optim.AdamW)
        assert optimizer.defaults["fused"] is True and optimizer.defaults["lr"] == lr
