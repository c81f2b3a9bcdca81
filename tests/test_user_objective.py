"""An objective (or a reward) in the user's own module, named by its dotted ``class_path``, is the one
``fit`` trains with: nothing in the package is edited (docs/architecture.md, "Adding an objective")."""

from __future__ import annotations

import json

import pytest
from cli_helpers import FAST, QUICKSTART

MODULE = '''
from pathlib import Path

from thinkspace.objectives import TextCrossEntropy


class CountedText(TextCrossEntropy):
    """Text cross-entropy that counts its loss calls in a file (the test reads it)."""

    def __init__(self, weight: float = 1.0, log_file: str = "calls.txt") -> None:
        super().__init__(weight=weight)
        self.log_file = log_file

    def loss(self, out, batch):
        with Path(self.log_file).open("a") as handle:
            handle.write(f"{len(batch.ids)}\\n")
        return super().loss(out, batch)
'''


@pytest.mark.slow  # builds and trains the quickstart model for 2 steps in this process
def test_fit_uses_an_objective_from_a_module_on_sys_path(tmp_path, monkeypatch):
    from thinkspace.cli import main

    (tmp_path / "my_objectives.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = tmp_path / "calls.txt"
    objective = {"class_path": "my_objectives.CountedText", "init_args": {"log_file": str(calls)}}
    code = main(["fit", "--config", str(QUICKSTART), *FAST, "--trainer.max_steps", "2",
                 "--model.objectives.text", json.dumps(objective), "--run_dir", str(tmp_path / "run")])
    assert code == 0
    assert calls.read_text().split() == ["4", "4"]  # two training steps of batch 4
    resolved = (tmp_path / "run" / "config.yaml").read_text()
    assert "class_path: my_objectives.CountedText" in resolved
