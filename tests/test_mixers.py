import pytest
import torch

from thinkspace.mixers import UncertaintyWeighting, WeightedSum


def terms():
    return {"text.ce": torch.tensor(2.0), "layout.nll": torch.tensor(4.0), "situation.ori": torch.tensor(1.0)}


def test_weighted_sum_uses_objective_defaults_and_overrides():
    mixer = WeightedSum(weights={"layout.nll": 0.05})
    mixer.setup({"text.ce": 1.0, "layout.nll": 1.0, "situation.ori": 0.2625})
    total, logs = mixer(terms(), step=0)
    assert total.item() == pytest.approx(2.0 + 0.05 * 4.0 + 0.2625 * 1.0)
    assert logs["weight/layout.nll"].item() == pytest.approx(0.05)


def test_warmup_and_delay_ramp_linearly():
    mixer = WeightedSum(warmup_steps={"layout.nll": 4}, delay_steps={"layout.nll": 2})
    mixer.setup({"text.ce": 1.0, "layout.nll": 0.5, "situation.ori": 1.0})
    weights = [mixer.weight("layout.nll", s) for s in range(8)]
    assert weights == pytest.approx([0.0, 0.0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.5])
    total, _ = mixer(terms(), step=0)
    assert total.item() == pytest.approx(2.0 + 1.0)


def test_zero_weight_drops_term_even_if_nan():
    mixer = WeightedSum(weights={"layout.nll": 0.0})
    mixer.setup({"text.ce": 1.0, "layout.nll": 1.0, "situation.ori": 1.0})
    t = terms()
    t["layout.nll"] = torch.tensor(float("nan"))
    total, _ = mixer(t, step=0)
    assert total.item() == pytest.approx(3.0)


def test_unknown_term_names_are_errors():
    mixer = WeightedSum(weights={"layuot.nll": 1.0})
    with pytest.raises(KeyError, match=r"mixer.weights names unknown loss term\(s\) \['layuot.nll'\]"):
        mixer.setup({"text.ce": 1.0, "layout.nll": 1.0})


def test_uncertainty_weighting_total_and_gradients():
    mixer = UncertaintyWeighting(init_log_var=0.5, learn=["text.ce", "layout.nll"])
    mixer.setup({"text.ce": 1.0, "layout.nll": 0.5, "situation.ori": 1.0})
    total, logs = mixer(terms(), step=0)
    s = 0.5
    expected = (0.5 * torch.exp(torch.tensor(-s)) * 2.0 + 0.5 * s) + 0.5 * (
        0.5 * torch.exp(torch.tensor(-s)) * 4.0 + 0.5 * s
    ) + 1.0
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    # d/ds [w * (0.5 e^{-s} L + 0.5 s)] = w * (0.5 - 0.5 e^{-s} L)
    grad_text = mixer.log_vars["text__ce"].grad.item()
    grad_layout = mixer.log_vars["layout__nll"].grad.item()
    assert grad_text == pytest.approx(0.5 - 0.5 * torch.exp(torch.tensor(-s)).item() * 2.0, rel=1e-5)
    assert grad_layout == pytest.approx(0.5 * (0.5 - 0.5 * torch.exp(torch.tensor(-s)).item() * 4.0), rel=1e-5)
    assert logs["log_var/text.ce"].item() == pytest.approx(0.5)
    assert "situation__ori" not in mixer.log_vars


def test_uncertainty_weighting_learns_the_optimal_variance():
    # minimum of 0.5 e^{-s} L + 0.5 s is at s = log L
    mixer = UncertaintyWeighting(learn=["text.ce"])
    mixer.setup({"text.ce": 1.0})
    opt = torch.optim.SGD(mixer.parameters(), lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        total, _ = mixer({"text.ce": torch.tensor(3.0)}, step=0)
        total.backward()
        opt.step()
    assert mixer.log_vars["text__ce"].item() == pytest.approx(torch.log(torch.tensor(3.0)).item(), abs=1e-3)
