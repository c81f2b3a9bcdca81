"""README's "Evaluate a trained run on the synthetic world": the exact command runs on a run's own
config.yaml and last checkpoint, answers held-out questions and says test/accuracy."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import REPO, run_cli

STAGE1_TINY = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"


def readme_command() -> list[str]:
    """The README's command, as arguments after ``thinkspace``."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Evaluate a trained run on the synthetic world", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return block.replace("\\\n", " ").split()[1:]


@pytest.mark.slow  # a 2-step fit and a 4-question test: about 90 s on a loaded machine
def test_readme_evaluates_a_synthetic_run_on_held_out_rooms(tmp_path):
    command = readme_command()
    assert command[:2] == ["test", "--config"] and "configs/eval/synthetic.yaml" in command
    command = [str(REPO / a) if a.startswith("configs/") else a for a in command]
    run_cli("fit", "--config", str(STAGE1_TINY), "--trainer.max_steps", "2", "--data.batch_size", "2",
            "--data.num_workers", "0", "--data.val", "null", "--trainer.enable_progress_bar", "false",
            "--run_dir", "runs/stage1_tiny", cwd=tmp_path)
    proc = run_cli(*command, "--data.test.init_args.num_samples", "4", "--trainer.enable_progress_bar", "false",
                   cwd=tmp_path, env={"PYTHONWARNINGS": "default"})  # warnings shown, as a user sees them
    assert "test/accuracy" in proc.stdout
    assert "dirpath has changed" not in proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "runs/stage1_tiny_test/predictions_test.jsonl").open()]
    # ids name the question family: synthetic-<family>-test-<seed>-<index>
    assert len(rows) == 4 and all(re.fullmatch(r"synthetic-[a-z_]+-test-0-\d+", r["id"]) for r in rows), rows[:1]
