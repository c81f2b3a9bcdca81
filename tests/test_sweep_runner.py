"""The sweep's execution: skipping, resuming, crashes, bad keys, and the report of hand-made metrics.

A fake trainer command (a small script taking thinkspace's arguments) stands in for
``thinkspace fit`` where the behaviour under test is the sweep's, not training's; the
base config is still parsed by thinkspace's own parser. ``test_sweep_e2e.py`` runs the
real thing.
"""

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from cli_helpers import command, one_error_line
from sweep_helpers import FAKE, QUICKSTART, calls

from thinkspace.sweep.results import write_report

main = command("sweep")


@pytest.fixture()
def fake(tmp_path):
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE)
    return [sys.executable, str(script)]


def sweep_file(tmp_path, fake, **sections):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"command": fake, **sections}))
    return str(path)


@pytest.mark.slow
def test_crashes_are_recorded_finished_runs_skipped_and_reported(tmp_path, fake, capsys):
    grid = sweep_file(tmp_path, fake, grid={"model.optimizer.init_args.lr": [0.1, 0.5]}, seeds=[0, 1])
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 1  # one setting crashed
    assert len(calls(out)) == 4  # the crash did not stop the sweep
    statuses = {d.name: json.loads((d / "status.json").read_text()) for d in out.iterdir() if d.is_dir()}
    failed = {k: v for k, v in statuses.items() if v["state"] == "failed"}
    assert len(failed) == 2 and all(k.startswith("lr=0.5_") for k in failed)
    assert all("lr 0.5 diverged" in v["error"] and v["returncode"] == 1 for v in failed.values())
    table = (out / "results.md").read_text()
    assert "| lr=0.1 | 2/2 | 0.150 ± 0.071 |" in table  # mean and sample std of 0.1 and 0.2
    assert "| lr=0.5 | 0/2 | - |" in table and all(name in table for name in failed)
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    done = next(d for d in out.iterdir() if d.name.startswith("lr=0.1_seed=0"))
    assert yaml.safe_load((done / "resolved.yaml").read_text())["model"]["optimizer"]["init_args"]["lr"] == 0.1
    assert json.loads((done / "run.json").read_text())["overrides"] == {"model.optimizer.init_args.lr": 0.1,
                                                                        "seed_everything": 0}
    # again: finished runs are skipped, the crashed ones tried again
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 1
    assert sorted(c["run"] for c in calls(out)[4:]) == sorted(failed)
    assert "finished, skipped" in capsys.readouterr().out


def test_a_run_killed_midway_resumes_from_its_checkpoint(tmp_path, fake):
    grid = sweep_file(tmp_path, fake, grid={"data.batch_size": [3]}, fixed={"model.optimizer.init_args.lr": 0.1})
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 1
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["returncode"] == -9  # SIGKILL
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 0
    assert calls(out) == [{"run": run.name, "ckpt": None},
                          {"run": run.name, "ckpt": str(run / "checkpoints" / "last.ckpt")}]
    assert json.loads((run / "status.json").read_text())["state"] == "done"


@pytest.mark.slow
def test_max_runs_and_dry_run(tmp_path, fake, capsys):
    grid = sweep_file(tmp_path, fake, grid={"model.optimizer.init_args.lr": [0.1, 0.2, 0.3]})
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["run", "overrides", "directory"] and printed[-1].startswith("[sweep] 3 runs")
    rows = [line.split() for line in printed[1:-1]]
    assert [row[1] for row in rows] == [f"model.optimizer.init_args.lr={lr}" for lr in (0.1, 0.2, 0.3)]
    assert [row[2] for row in rows] == [str(out / row[0]) for row in rows] and not out.exists()
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out), "--dry-run", "--show-configs"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("=== run lr=") == 3 and "3 runs" in printed and not out.exists()
    assert printed.count("--- resolved config") == 3 and "      lr: 0.2\n" in printed
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out), "--max-runs", "2"]) == 0
    assert len(calls(out)) == 2
    assert "| lr=0.3 | 0/1 | - |" in (out / "results.md").read_text()  # not run yet


def test_a_misspelt_key_fails_before_any_run(tmp_path, fake, capsys):
    out = tmp_path / "out"
    for grid, message in [({"trainer.max_stepz": [1, 2]}, "unrecognized arguments: --trainer.max_stepz"),
                          ({"model.objectives.layuot.init_args.weight": [1.0]},
                           "has no key 'layuot' under model.objectives"),
                          ({"model.objectives.text": [{"class_path": "thinkspace.objectives.Nope"}]},
                           "Parser key \"model.objectives\": Problem with given class_path "
                           "'thinkspace.objectives.Nope': module 'thinkspace.objectives' has no attribute 'Nope'"),
                          ({"trainer.precision": ["17-true"]},
                           "Parser key \"trainer.precision\": Expected a <class 'int'>; Expected a typing.Literal[")]:
        assert main(["--config", QUICKSTART, "--grid", sweep_file(tmp_path, fake, grid=grid), "--out", str(out)]) == 2
        assert message in one_error_line(capsys, "sweep")
        assert not out.exists()


def test_the_report_aggregates_hand_made_metrics(tmp_path):
    def run(name, labels, state, fit=None, heldout=None):
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"name": name, "labels": labels}))
        (d / "status.json").write_text(json.dumps({"state": state, "stage": "fit", "returncode": 1, "seconds": 2}))
        for stage, metrics in (("fit", fit), ("test_heldout", heldout)):
            if metrics is not None:
                (d / f"metrics_{stage}.json").write_text(json.dumps({"stage": stage, "metrics": metrics}))

    run("a0", {"setting": "a", "seed": 0}, "done", {"val/accuracy": 0.2, "train/loss": 3.0}, {"test/accuracy": 0.5})
    run("a1", {"setting": "a", "seed": 1}, "done", {"val/accuracy": 0.4, "train/loss": 1.0}, {"test/accuracy": 0.7})
    run("a2", {"setting": "a", "seed": 2}, "done", {"val/accuracy": 0.9, "train/loss": 2.0}, {"test/accuracy": 0.6})
    run("b0", {"setting": "b", "seed": 0}, "done", {"val/accuracy": 0.25})
    run("b1", {"setting": "b", "seed": 1}, "failed")
    assert main(["--report", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["run"] for r in rows] == ["a0", "a1", "a2", "b0", "b1"]
    assert rows[1]["val/accuracy"] == "0.4" and rows[1]["heldout:test/accuracy"] == "0.7"
    assert rows[4]["state"] == "failed" and rows[4]["error"] == "fit: exit 1" and rows[4]["val/accuracy"] == ""
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[0] == "| setting | runs (done/all) | val/accuracy | heldout:test/accuracy | failed runs |"
    # a: mean 0.5, sample std sqrt(((0.3)^2 + (0.1)^2 + (0.4)^2) / 2) = 0.361; heldout 0.6 +- 0.1
    assert lines[2] == "| setting=a | 3/3 | 0.500 ± 0.361 | 0.600 ± 0.100 |  |"
    assert lines[3] == "| setting=b | 1/2 | 0.250 | - | b1 |"
    assert (tmp_path / "results.png").stat().st_size > 1000
    write_report(tmp_path, chart=False, columns=["heldout:test/accuracy"])  # the sweep file's `columns`
    assert (tmp_path / "results.md").read_text().splitlines()[2] == "| setting=a | 3/3 | 0.600 ± 0.100 |  |"
    with pytest.raises(ValueError, match="holds no runs"):
        write_report(tmp_path / "empty")


def test_a_run_directory_made_with_another_config_is_refused(tmp_path):
    from thinkspace.sweep.grid import RunSpec
    from thinkspace.sweep.runner import prepare_run

    spec = RunSpec("r", {"trainer.max_steps": 5})
    prepare_run(spec, ["base.yaml"], tmp_path / "r", "trainer:\n  max_steps: 5\n")
    prepare_run(spec, ["base.yaml"], tmp_path / "r", "trainer:\n  max_steps: 5\n")  # same config: fine
    with pytest.raises(ValueError, match="was made with another resolved config than base.yaml gives now"):
        prepare_run(spec, ["base.yaml"], tmp_path / "r", "trainer:\n  max_steps: 6\n")
