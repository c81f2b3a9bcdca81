"""The local launcher: several runs at once, CPU threads and GPUs split, the sequential runner's guarantees kept.

The fake trainer of ``test_sweep_runner.py`` stands in for ``thinkspace fit`` (crash, kill,
resume); a barrier trainer proves two runs are alive at the same time (run one after
another, each would wait for the other in vain and fail). The last test runs the real
tiny fit both ways and compares the runs' numbers.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_helpers import REPO, command, one_error_line
from sweep_helpers import FAKE, QUICKSTART, calls

from thinkspace.sweep import parallel
from thinkspace.sweep.parallel import split_resources

main = command("sweep")

BARRIER = r'''
import json, os, sys, time
from pathlib import Path
argv = sys.argv[1:]
value = lambda flag: argv[argv.index(flag) + 1]
run_dir = Path(value("--run_dir"))
(run_dir.parent / f"started_{run_dir.name}").write_text(os.environ.get("OMP_NUM_THREADS", "unset"))
for _ in range(int(10 * float(os.environ.get("BARRIER_SECONDS", "60")))):  # until both runs have started
    if len(list(run_dir.parent.glob("started_*"))) == 2:
        break
    time.sleep(0.1)
else:
    sys.exit("barrier: the other run never started")
metrics = json.loads(value("--trainer.callbacks+"))["init_args"]["path"]
json.dump({"stage": "fit", "global_step": 1, "metrics": {"val/accuracy": float(value("--seed_everything"))}},
          open(metrics, "w"))
'''


@pytest.mark.parametrize("slots, cpus, gpus, threads, expected", [
    (1, 2, [], None, [{}]),  # one at a time: the environment untouched
    (2, 2, [], None, [{"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}] * 2),  # 2 cores, 2 runs: 1 thread each
    (3, 8, [], None, [{"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}] * 3),  # 8 // 3
    (4, 2, [], None, [{"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}] * 4),  # never 0 threads
    (2, 2, [], "3", [{"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}] * 2),  # the user's own budget kept
    (2, 16, ["0", "1", "2", "3", "4", "5", "6", "7"], None,
     [{"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8", "CUDA_VISIBLE_DEVICES": "0,1,2,3"},
      {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8", "CUDA_VISIBLE_DEVICES": "4,5,6,7"}]),
    (2, 4, ["3", "5", "6"], None,  # 3 GPUs, 2 runs: one each, the odd one left idle
     [{"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "3"},
      {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "5"}]),
])
def test_threads_and_gpus_are_split_between_runs(slots, cpus, gpus, threads, expected):
    assert split_resources(slots, cpus, gpus, threads) == expected


def test_more_runs_at_once_than_gpus_is_refused():
    with pytest.raises(ValueError, match=r"--max-parallel 3 but 2 GPU\(s\) visible \(0,1\): each run needs a GPU "
                                         r"of its own; lower --max-parallel to at most 2"):
        split_resources(3, 8, ["0", "1"])
    with pytest.raises(ValueError, match="--max-parallel must be at least 1, got 0"):
        split_resources(0, 8, [])


@pytest.fixture()
def two_cores(monkeypatch):
    """This machine as the test case: 2 cores, no GPU, no OMP_NUM_THREADS of the user's."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel, "visible_gpus", lambda: [])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def write_grid(tmp_path, script, **sections):
    (tmp_path / "trainer.py").write_text(script)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"command": [sys.executable, str(tmp_path / "trainer.py")], **sections}))
    return str(path)


def test_two_runs_run_at_once_with_one_thread_each(tmp_path, two_cores, capsys, monkeypatch):
    grid = write_grid(tmp_path, BARRIER, seeds=[3, 4], max_parallel=2)  # max_parallel from the sweep file
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 0
    started = sorted(out.glob("started_*"))
    assert [p.read_text() for p in started] == ["1", "1"]
    assert "up to 2 runs at once, each with OMP_NUM_THREADS=1, MKL_NUM_THREADS=1" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["seed"], r["state"], r["val/accuracy"]) for r in rows] == [("3", "done", "3"), ("4", "done", "4")]
    # one at a time (the command line wins over the file) the barrier is never met: the first run fails
    other = tmp_path / "other"
    monkeypatch.setenv("BARRIER_SECONDS", "1")
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(other), "--max-parallel", "1"]) == 1
    status = json.loads(next(other.glob("seed=3_*/status.json")).read_text())
    assert status["state"] == "failed" and "barrier: the other run never started" in status["error"]


@pytest.mark.parametrize("max_parallel", ["1", "2"])
def test_crash_kill_resume_and_skip_hold_in_parallel(tmp_path, two_cores, capsys, max_parallel):
    grid = write_grid(tmp_path, FAKE, zip=[{"model.optimizer.init_args.lr": [0.1, 0.5, 0.2],
                                            "data.batch_size": [4, 4, 3]}], seeds=[0])
    out = tmp_path / "out"
    argv = ["--config", QUICKSTART, "--grid", grid, "--out", str(out), "--max-parallel", max_parallel]
    assert main(argv) == 1
    statuses = {d.name.split("_")[1]: json.loads((d / "status.json").read_text()) for d in out.iterdir() if d.is_dir()}
    assert statuses["lr=0.1"]["state"] == "done"
    assert statuses["lr=0.5"]["state"] == "failed" and "lr 0.5 diverged" in statuses["lr=0.5"]["error"]
    assert statuses["lr=0.2"]["returncode"] == -9  # killed after its first checkpoint
    assert main(argv + ["--status"]) == 0
    shown = capsys.readouterr().out
    assert "[sweep] batch-size=3_lr=0.2_seed=0_93540b96: failed (a checkpoint to resume from)" in shown
    assert "[sweep] 3 runs: 1 done, 1 failed, 1 failed (a checkpoint to resume from)" in shown
    assert main(argv) == 1  # again: the finished run skipped, the killed one resumed, the crash tried again
    second = calls(out)[3:]
    resumed = next(c for c in second if "_lr=0.2_" in c["run"])
    assert resumed["ckpt"] == str(out / resumed["run"] / "checkpoints" / "last.ckpt")
    assert sorted(c["run"].split("_")[1] for c in second) == ["lr=0.2", "lr=0.5"]
    table = (out / "results.md").read_text()
    assert "| batch_size=4, lr=0.1 | 1/1 | 0.100 |" in table and "| batch_size=3, lr=0.2 | 1/1 | 0.200 |" in table


def test_a_run_directory_of_another_config_is_refused_before_any_run(tmp_path, two_cores, capsys):
    grid = write_grid(tmp_path, FAKE, grid={"model.optimizer.init_args.lr": [0.1, 0.2]}, max_parallel=2)
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 0
    run = next(out.glob("lr=0.2_*"))
    (run / "resolved.yaml").write_text("trainer: {max_steps: 1}\n")  # as if the base had been edited
    (run / "status.json").unlink()
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 2
    assert f"run {run} was made with another resolved config" in one_error_line(capsys, "sweep")
    assert len(calls(out)) == 2  # nothing ran


def synthetic(split: str, n: int) -> dict:
    return {"class_path": "thinkspace.data.datasets.synthetic.SyntheticSpatial",
            "init_args": {"kind": "views", "settings": ["leftmost"], "num_samples": n, "image_size": 56,
                          "num_views": 1, "num_objects": [3, 4], "shuffle_options": False, "split": split}}


@pytest.mark.slow
def test_real_tiny_runs_in_parallel_equal_the_sequential_runner(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "command": [sys.executable, "-m", "thinkspace.cli"],
        "fixed": {"trainer.max_steps": 2, "trainer.val_check_interval": 2, "trainer.log_every_n_steps": 1,
                  "data.batch_size": 2, "data.num_workers": 0, "data.train": synthetic("train", 4),
                  "data.val": synthetic("val", 2)},
        "grid": {"model.optimizer.init_args.lr": [1.0e-3, 3.0e-2]},
    }))
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    results = {}
    for slots in ("1", "2"):
        out = tmp_path / f"out{slots}"
        command = [sys.executable, "-m", "thinkspace.cli", "sweep", "--config", str(REPO / "configs" / "ablations"
                   / "base.yaml"), "--grid", str(grid), "--out", str(out), "--no-chart", "--max-parallel", slots]
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        results[slots] = {d.name: json.loads((d / "metrics_fit.json").read_text()) for d in out.iterdir()
                          if d.is_dir()}
    assert len(results["1"]) == 2 and results["1"].keys() == results["2"].keys()
    for name, sequential in results["1"].items():
        assert sequential["global_step"] == 2 and sequential["metrics"]["val/loss"] > 0
        assert results["2"][name] == sequential, name  # every metric, exactly
    losses = [r["metrics"]["val/loss"] for r in results["1"].values()]
    assert losses[0] != losses[1]  # the two learning rates really are two different runs
