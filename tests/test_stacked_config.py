"""Stacked ``--config`` files merge objectives, cues and rewards by name (a later file adds, overrides or,
with ``null``, switches off one entry), as dotted overrides do; the resolved config shows the result."""

from __future__ import annotations

import yaml
from cli_helpers import QUICKSTART, REPO

from thinkspace.lightning_cli import build_cli, resolved_yaml

GRPO = REPO / "configs" / "3dthinker" / "stage2_grpo_tiny.yaml"
CONFIDENCE = """
model:
  objectives:
    confidence:
      class_path: thinkspace.objectives.TextCrossEntropy
      init_args: {weight: 0.5, label_smoothing: 0.1}
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def objectives(configs, overrides=()) -> dict:
    return yaml.safe_load(resolved_yaml("fit", configs, list(overrides)))["model"]["objectives"]


def test_a_stacked_file_adds_an_objective_to_the_first_files(tmp_path):
    resolved = objectives([QUICKSTART, write(tmp_path, "mine.yaml", CONFIDENCE)])
    assert list(resolved) == ["text", "confidence"]
    assert resolved["text"]["class_path"] == "thinkspace.objectives.TextCrossEntropy"
    assert resolved["confidence"]["init_args"] == {"weight": 0.5, "label_smoothing": 0.1}


def test_stacked_names_merge_their_arguments_and_a_dotted_override_wins(tmp_path):
    weights = write(tmp_path, "weights.yaml", "model:\n  objectives:\n    text:\n      init_args: {weight: 0.25}\n")
    resolved = objectives([QUICKSTART, write(tmp_path, "mine.yaml", CONFIDENCE), weights],
                          ["--model.objectives.confidence.init_args.weight", "0.125"])
    assert resolved["text"] == {"class_path": "thinkspace.objectives.TextCrossEntropy",
                                "init_args": {"weight": 0.25, "label_smoothing": 0.0}}
    assert resolved["confidence"]["init_args"] == {"weight": 0.125, "label_smoothing": 0.1}


def test_null_in_a_stacked_file_switches_one_off_and_the_built_model_lacks_it(tmp_path):
    off = write(tmp_path, "off.yaml", "model:\n  objectives:\n    text: null\n")
    configs = [QUICKSTART, write(tmp_path, "mine.yaml", CONFIDENCE), off]
    assert objectives(configs) == {"text": None, "confidence": {
        "class_path": "thinkspace.objectives.TextCrossEntropy", "init_args": {"weight": 0.5, "label_smoothing": 0.1}}}
    model = build_cli(None, configs, until="built").model
    assert list(model.objectives) == ["confidence"]


def test_another_class_under_a_name_replaces_the_entry(tmp_path):
    other = write(tmp_path, "other.yaml", "model:\n  objectives:\n    text:\n      class_path: "
                  "thinkspace.objectives.LayoutReconstruction\n")
    resolved = objectives([QUICKSTART, other])
    assert resolved["text"]["class_path"] == "thinkspace.objectives.LayoutReconstruction"
    assert "label_smoothing" not in resolved["text"]["init_args"]  # TextCrossEntropy's argument is gone


def test_rewards_and_their_weights_merge_by_name(tmp_path):
    extra = write(tmp_path, "reward.yaml", "model:\n  init_args:\n    rewards: {length: ddp_probe.length_reward, "
                  "format: null}\n    reward_weights: {length: 0.5}\n")
    args = yaml.safe_load(resolved_yaml("fit", [GRPO, extra]))["model"]["init_args"]
    assert args["rewards"] == {"format": None, "answer": "thinkspace.rl.rewards.first_answer_reward",
                               "latent3d": "thinkspace.rl.rewards.latent3d_reward", "length": "ddp_probe.length_reward"}
    assert args["reward_weights"] == {"format": 1.0, "answer": 1.0, "latent3d": 1.0, "length": 0.5}
    assert args["reward_kwargs"] == {"latent3d": {"cosine": "released"}}
