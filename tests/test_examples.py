"""The examples run and do what their docstrings say."""

import importlib.util
import re

import pytest
import torch

from cli_helpers import REPO

EXAMPLES = REPO / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_objectives_trains_both_terms(tmp_path, capsys):
    example = load("compose_objectives")
    model = example.main(["--steps", "3", "--batch-size", "4", "--val-samples", "8", "--run-dir", str(tmp_path)])
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"compose_objectives: 3 steps, train loss \d+\.\d{3}, val loss \d+\.\d{3}, "
                        r"val accuracy \d+\.\d% \(8 questions\)", printed), printed
    log_vars = {k: v.item() for k, v in model.mixer.log_vars.items()}
    assert set(log_vars) == {"text__ce", "letter__ce"}
    assert all(v != 0.0 for v in log_vars.values())  # the mixer's variances were trained
    assert model.mixer.default_weights == pytest.approx({"text.ce": 1.0, "letter.ce": 0.5})
    assert isinstance(model.objectives["letter"].letter_ids, list)
    assert torch.isfinite(next(model.parameters())).all()


def test_custom_reward_is_scored_and_logged_on_its_own(tmp_path, capsys):
    example = load("custom_reward")
    assert example.brevity_reward(["", ""], ["<answer>B</answer>", "x"], answer_type=["choice", "number"],
                                  max_words=4) == [0.75, None]
    model = example.main(["--steps", "2", "--group-size", "2", "--batch-size", "2", "--run-dir", str(tmp_path)])
    assert model.rewards.names == ["answer", "brevity"] and model.rewards.weights["brevity"] == 0.2
    rollout = model._rollout
    expected = example.brevity_reward([], rollout.completions, answer_type=["choice"] * 4, max_words=4)
    assert rollout.rewards.values[1].tolist() == pytest.approx(expected)
    logged = float(model.trainer.callback_metrics["train/rewards/brevity/mean"])
    assert logged == pytest.approx(sum(expected) / 4, abs=1e-6)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"custom_reward: 2 steps, loss -?\d+\.\d{3}, answer accuracy \d+\.\d% \(last batch\), "
                        r"brevity reward \d\.\d{3}", printed), printed
    assert printed.endswith(f"brevity reward {logged:.3f}")
