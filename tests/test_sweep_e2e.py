"""A real tiny ``thinkspace fit`` and ``thinkspace test`` through ``thinkspace sweep``, in subprocesses."""

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

from cli_helpers import REPO

BASE = REPO / "configs" / "ablations" / "base.yaml"


def synthetic(split: str, n: int) -> dict:
    return {"class_path": "thinkspace.data.datasets.synthetic.SyntheticSpatial",
            "init_args": {"kind": "views", "settings": ["leftmost"], "num_samples": n, "image_size": 56,
                          "num_views": 1, "num_objects": [3, 4], "shuffle_options": False, "split": split}}


@pytest.mark.slow
def test_a_real_tiny_sweep_trains_evaluates_reports_and_skips(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "command": [sys.executable, "-m", "thinkspace.cli"],
        "fixed": {"trainer.max_steps": 3, "trainer.val_check_interval": 3, "trainer.log_every_n_steps": 1,
                  "data.batch_size": 2, "data.num_workers": 0, "data.train": synthetic("train", 6),
                  "data.val": synthetic("val", 2)},
        "settings": {"point_map": {"model.cues.points": {"class_path": "thinkspace.cues.PointMapCue"}}},
        "seeds": [7],
        "evaluate": {"heldout": {"data.test": synthetic("test", 3)}},
        "metric": "heldout:test/accuracy", "baseline": "point_map",
    }))
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    command = [sys.executable, "-m", "thinkspace.cli", "sweep", "--config", str(BASE), "--grid", str(grid),
               "--out", str(out)]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    assert run.name.startswith("setting=point-map_seed=7_")
    fit = json.loads((run / "metrics_fit.json").read_text())
    assert fit["stage"] == "fit" and fit["global_step"] == 3
    assert 0.0 <= fit["metrics"]["val/accuracy"] <= 1.0 and fit["metrics"]["val/loss"] > 0
    test = json.loads((run / "metrics_test_heldout.json").read_text())
    assert 0.0 <= test["metrics"]["test/accuracy"] <= 1.0
    # the per-question answers of the test stage: their mean is the stage's accuracy
    with (run / "questions_test_heldout.csv").open(newline="") as handle:
        questions = list(csv.DictReader(handle))
    assert [q["id"] for q in questions] == [f"synthetic-leftmost-test-0-{i}" for i in range(3)]
    assert all(q["answer"] in "ABCD" and q["correct"] in ("0", "1") for q in questions)
    assert all(q["task"] == "leftmost" for q in questions), questions  # the batch's task of each question
    assert sum(int(q["correct"]) for q in questions) / 3 == pytest.approx(test["metrics"]["test/accuracy"])
    assert (run / "checkpoints" / "last.ckpt").exists()
    resolved = yaml.safe_load((run / "resolved.yaml").read_text())
    assert resolved["seed_everything"] == 7 and resolved["trainer"]["max_steps"] == 3
    assert resolved["model"]["cues"]["points"]["class_path"] == "thinkspace.cues.PointMapCue"
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    (row,) = list(csv.DictReader((out / "results.csv").open()))
    assert row["setting"] == "point_map" and row["seed"] == "7" and row["state"] == "done"
    assert float(row["val/accuracy"]) == fit["metrics"]["val/accuracy"]
    assert float(row["heldout:test/accuracy"]) == test["metrics"]["test/accuracy"]
    accuracy = test["metrics"]["test/accuracy"]
    assert f"| setting=point_map (baseline) | 1 x 3 | {accuracy:.3f} | | | | |" in (out / "results.md").read_text()
    # again (in-process this time): the finished run is skipped, no process launched
    from thinkspace.sweep.command import main

    log = (run / "fit.log").read_text()
    assert main(command[4:]) == 0
    assert "finished, skipped" in capsys.readouterr().out
    assert (run / "fit.log").read_text() == log
