"""The SLURM launcher through submitit, with fake ``sbatch``/``sacct``/``srun``/``scontrol`` on PATH.

The fakes record what would be submitted (the job script) and print a job id; ``sacct``
answers from a file the test writes. A job is then run as SLURM would run it: the job
script's own command (``python -m submitit.core._submit FOLDER``) with SLURM's variables,
the fake trainer of ``sweep_helpers.py`` standing in for ``thinkspace fit``. Preemption is
SLURM's signal (USR2) sent to that process: submitit calls the run's checkpoint hook and
requeues the job under the same id.
"""

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit  # noqa: F401  (the dev extra's SLURM client: a missing one must fail, not skip)
import yaml

from cli_helpers import command, one_error_line
from sweep_helpers import FAKE, QUICKSTART, calls

from thinkspace.sweep.slurm_settings import SlurmSettings, check_resources, parse_slurm

main = command("sweep")

SBATCH = """#!/bin/sh
n=$(($(cat "$FAKE_SLURM/count" 2>/dev/null || echo 0) + 1))
echo $n > "$FAKE_SLURM/count"
cp "$1" "$FAKE_SLURM/job_$((4241 + n)).sh"
echo "Submitted batch job $((4241 + n))"
"""
SACCT = """#!/bin/sh
echo "JobID|State|NodeList"
cat "$FAKE_SLURM/sacct.txt" 2>/dev/null
"""
RECORD = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_SLURM/calls.txt"
"""

#: killed midway for batch_size 5: writes its checkpoint, says so, then waits to be preempted
PREEMPTIBLE = FAKE.replace("if value(\"--data.batch_size\") == \"3\"", """if value("--data.batch_size") == "5" \
and not ckpt.exists():
    import time
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_text("half")
    (run_dir / "ready").write_text(str(os.getpid()))
    time.sleep(120)
if value("--data.batch_size") == "3\"""")


@pytest.fixture()
def fake_slurm(tmp_path, monkeypatch):
    """A bin directory of fake SLURM commands first on PATH; returns it."""
    bin_dir = tmp_path / "slurm"
    bin_dir.mkdir()
    for name, text in [("sbatch", SBATCH), ("sacct", SACCT), ("srun", RECORD), ("scontrol", RECORD),
                       ("scancel", RECORD)]:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("FAKE_SLURM", str(bin_dir))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def sacct(bin_dir: Path, **states: str) -> None:
    (bin_dir / "sacct.txt").write_text("".join(f"{job}|{state}|node1\n" for job, state in states.items()))


RESOURCES = {"partition": "gpu", "timeout_min": 120, "nodes": 2, "gpus_per_node": 4, "cpus_per_task": 6,
             "mem_gb": 64, "account": "vision", "setup": ["module load cuda/12.4"], "additional": {"exclusive": True}}


def grid_file(tmp_path, trainer=FAKE, slurm=None, **sections):
    (tmp_path / "trainer.py").write_text(trainer)
    sections.setdefault("fixed", {"trainer.devices": 4, "trainer.num_nodes": 2, "model.optimizer.init_args.lr": 0.1})
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"command": [sys.executable, str(tmp_path / "trainer.py")], "launcher": "slurm",
                                    "slurm": RESOURCES if slurm is None else slurm, **sections}))
    return str(path)


def run_job(script: Path, job_id: str, **extra) -> subprocess.Popen:
    """Start the job script's command as srun would: task 0 of one, unless ``extra`` says otherwise."""
    command = shlex.split(script.read_text().strip().splitlines()[-1])
    assert command[0] == "srun"
    python = command.index(sys.executable)
    env = {**os.environ, "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": job_id, "SLURM_NTASKS": "1",
           "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1", **extra}
    return subprocess.Popen(command[python:], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_each_run_is_one_job_with_the_sweep_files_resources(tmp_path, fake_slurm, capsys):
    grid = grid_file(tmp_path, seeds=[0, 1])
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "submitted job 4242" in printed and "submitted job 4243" in printed and "2 submitted" in printed
    runs = sorted(d for d in out.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert [json.loads((d / "run.json").read_text())["jobs"][0]["id"] for d in runs] == ["4242", "4243"]
    script = (fake_slurm / "job_4242.sh").read_text()
    lines = script.splitlines()
    for flag in ["--partition=gpu", "--time=120", "--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4",
                 "--cpus-per-task=6", "--mem=64GB", "--account=vision", "--exclusive", "--signal=USR2@90",
                 f"--job-name=thinkspace-{runs[0].name}"]:
        assert f"#SBATCH {flag}" in lines, flag
    assert "module load cuda/12.4" in lines
    folder = out / ".submitit" / "%j"
    assert lines[-1] == (f"srun --unbuffered --output {folder}/%j_%t_log.out --error {folder}/%j_%t_log.err "
                         f"{sys.executable} -u -m submitit.core._submit {folder}")
    assert (out / ".submitit" / "4242" / "4242_submitted.pkl").exists()


@pytest.mark.slow
def test_queued_and_running_jobs_are_not_submitted_twice(tmp_path, fake_slurm, capsys):
    grid = grid_file(tmp_path, seeds=[0, 1, 2])
    out = tmp_path / "out"
    argv = ["--config", QUICKSTART, "--grid", grid, "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    job = run_job(fake_slurm / "job_4242.sh", "4242")  # the first job runs and finishes
    assert job.wait(timeout=120) == 0, job.stdout.read()
    sacct(fake_slurm, **{"4242": "COMPLETED", "4243": "RUNNING", "4244": "PENDING"})
    assert main(argv + ["--status"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1] for line in shown[:3]] == [
        "done (job 4242, COMPLETED)", "running (job 4243, RUNNING)", "queued (job 4244, PENDING)"]
    assert shown[3] == "[sweep] 3 runs: 1 done, 1 queued, 1 running"
    assert main(argv) == 0  # again: nothing to submit
    assert (fake_slurm / "count").read_text().strip() == "3"
    # 4243 dies on a failed node (no status written), 4244 is lost to sacct: only the first is submitted again
    sacct(fake_slurm, **{"4242": "COMPLETED", "4243": "NODE_FAIL"})
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "submitted job 4245 (was stopped)" in printed
    assert "unknown (job 4244, UNKNOWN); --resubmit-unknown submits it again" in printed
    second = next(d for d in out.iterdir() if d.name.startswith("seed=1_"))
    assert [j["id"] for j in json.loads((second / "run.json").read_text())["jobs"]] == ["4243", "4245"]
    sacct(fake_slurm, **{"4242": "COMPLETED", "4243": "NODE_FAIL", "4245": "PENDING"})
    assert main(argv + ["--resubmit-unknown"]) == 0
    printed = capsys.readouterr().out
    assert "queued (job 4245, PENDING)" in printed and "submitted job 4246 (was unknown)" in printed
    third = next(d for d in out.iterdir() if d.name.startswith("seed=2_"))
    assert [j["id"] for j in json.loads((third / "run.json").read_text())["jobs"]] == ["4244", "4246"]
    done = next(d for d in out.iterdir() if d.name.startswith("seed=0_"))
    assert json.loads((done / "status.json").read_text())["state"] == "done"
    assert calls(out) == [{"run": done.name, "ckpt": None}]
    (row,) = [r for r in csv.DictReader((out / "results.csv").open()) if r["state"] == "done"]
    assert row["seed"] == "0" and float(row["val/accuracy"]) == pytest.approx(0.1)


@pytest.mark.slow  # two real fits with a requeue each: 12-19 s
@pytest.mark.parametrize("how", ["USR2", "TERM"])
def test_a_preempted_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path, fake_slurm, how):
    """USR2: SLURM's warning (``--signal USR2@90``), submitit requeues through the checkpoint hook.
    TERM: preemption signalling every process of the job; the fit dies, the run is not failed."""
    grid = grid_file(tmp_path, trainer=PREEMPTIBLE, grid={"data.batch_size": [5]})
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 0
    (run,) = [d for d in out.iterdir() if d.is_dir() and not d.name.startswith(".")]
    job = run_job(fake_slurm / "job_4242.sh", "4242")
    for _ in range(1200):  # until the fit has saved its checkpoint and waits
        if (run / "ready").exists() or job.poll() is not None:
            break
        time.sleep(0.1)
    assert (run / "ready").exists(), job.stdout.read()
    if how == "USR2":
        job.send_signal(signal.SIGUSR2)
        assert job.wait(timeout=60) == 255  # submitit's sys.exit(-1) after requeueing
        log = job.stdout.read()
        assert "this job is preempted" in log and "Calling checkpoint method" in log
        assert (fake_slurm / "calls.txt").read_text().splitlines() == ["scontrol requeue 4242"]
    else:
        job.send_signal(signal.SIGTERM)
        os.kill(int((run / "ready").read_text()), signal.SIGTERM)
        assert job.wait(timeout=60) == 0  # the run returned: stopped, to be run again
        assert "fit stopped with its job (exit -15); not a failure" in job.stdout.read()
        assert not (fake_slurm / "calls.txt").exists()
    assert not (run / "status.json").exists()  # preempted is not failed
    assert not (run / "metrics_fit.json").exists()
    job = run_job(fake_slurm / "job_4242.sh", "4242")  # the requeued job: same id, the checkpoint's submission
    assert job.wait(timeout=120) == 0, job.stdout.read()
    assert calls(out) == [{"run": run.name, "ckpt": None},
                          {"run": run.name, "ckpt": str(run / "checkpoints" / "last.ckpt")}]
    assert json.loads((run / "status.json").read_text())["state"] == "done"


@pytest.mark.slow  # real fits in every task: about 11 s
def test_other_tasks_of_a_job_run_the_stages_without_recording(tmp_path, fake_slurm):
    grid = grid_file(tmp_path, grid={"model.optimizer.init_args.lr": [0.1, 0.5]})
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 0
    for job_id in ("4242", "4243"):  # rank 1 of 2: it joins the fit, rank 0 (not run here) would record
        job = run_job(fake_slurm / f"job_{job_id}.sh", job_id, SLURM_PROCID="1", SLURM_NTASKS="2",
                      SLURM_LOCALID="1")
        assert job.wait(timeout=120) == 0, job.stdout.read()
    assert sorted(c["run"].split("_")[0] for c in calls(out)) == ["lr=0.1", "lr=0.5"]
    runs = [d for d in out.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert not any((d / "status.json").exists() or (d / "fit.log").exists() for d in runs)
    assert (next(out.glob("lr=0.1_*")) / "metrics_fit.json").exists()  # the trainer's own rank-0 file


def test_the_checkpoint_hook_resubmits_the_same_run():
    from submitit.helpers import DelayedSubmission

    from thinkspace.sweep.grid import RunSpec, Sweep
    from thinkspace.sweep.slurm import RunJob

    sweep = Sweep(Path("g.yaml"), [], {}, "val/accuracy", ["thinkspace"])
    job = RunJob(sweep, RunSpec("r", {"seed_everything": 1}), ["base.yaml"], "out/r")
    again = job.checkpoint()
    assert isinstance(again, DelayedSubmission) and isinstance(again.function, type(job))
    assert (again.function.spec, again.function.configs, again.function.run_dir) == (job.spec, ["base.yaml"],
                                                                                     Path("out/r"))
    assert again.args == () and again.kwargs == {}


@pytest.mark.slow
def test_the_debug_cluster_runs_jobs_here_with_the_sequential_runners_results(tmp_path, capsys):
    fixed = {"model.optimizer.init_args.lr": 0.1}
    slurm = {"timeout_min": 10, "cluster": "debug"}
    grid = grid_file(tmp_path, slurm=slurm, fixed=fixed, grid={"model.optimizer.init_args.lr": [0.1, 0.5, 0.3]},
                     seeds=[0, 1])
    results = {}
    for launcher in ("slurm", "local"):
        out = tmp_path / launcher
        assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out), "--launcher", launcher]) == 1
        results[launcher] = list(csv.DictReader((out / "results.csv").open()))
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in results["slurm"]]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in results["local"]]
    assert [r["state"] for r in strip] == ["done", "done", "failed", "failed", "done", "done"]
    run = next((tmp_path / "slurm").glob("lr=0.3_seed=1_*"))
    (job,) = json.loads((run / "run.json").read_text())["jobs"]
    assert job["cluster"] == "debug" and job["id"].startswith("DEBUG_")
    assert "[sweep] 6 runs: 4 done, 2 failed" in capsys.readouterr().out


@pytest.mark.parametrize("slurm, message", [
    ({}, "needs a 'slurm:' section with at least timeout_min"),
    ({"partition": "gpu"}, r"slurm.timeout_min is required: the job's time limit in minutes \(sbatch --time\)"),
    ({"timeout_min": 10, "gpu_per_node": 8}, r"slurm: unknown key\(s\) \['gpu_per_node'\]"),
    ({"timeout_min": 10, "nodes": 0}, "slurm.nodes must be an integer >= 1, got 0"),
    ({"timeout_min": 10, "mem_gb": "64G"}, "slurm.mem_gb must be a positive number of GB, got '64G'"),
    ({"timeout_min": 10, "cluster": "local"}, r"slurm.cluster must be one of \['slurm', 'debug'\]"),
    ({"timeout_min": 10, "gpus_per_node": 8, "nodes": 2},
     r"trainer.devices is 4 but each node runs 8 task\(s\) \(slurm.gpus_per_node 8"),
    ({"timeout_min": 10, "gpus_per_node": 4}, "trainer.num_nodes is 2 but slurm.nodes is 1"),
])
def test_bad_slurm_sections_fail_before_any_submission(tmp_path, fake_slurm, capsys, slurm, message):
    grid = grid_file(tmp_path, slurm=slurm, seeds=[0])
    out = tmp_path / "out"
    for extra in ([], ["--dry-run"]):
        assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out), *extra]) == 2
        err = one_error_line(capsys, "sweep")
        assert "grid.yaml" in err or "run seed=0_" in err
        assert re.search(message, err), err
    assert not (fake_slurm / "count").exists() and not out.exists()


def test_without_slurm_commands_nothing_is_made(tmp_path, monkeypatch, capsys):
    grid = grid_file(tmp_path, seeds=[0])
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    out = tmp_path / "out"
    assert main(["--config", QUICKSTART, "--grid", grid, "--out", str(out)]) == 2
    assert ("--launcher slurm: sbatch, srun, sacct not found on PATH; run the sweep on a SLURM login node (or set "
            "slurm.cluster: debug to run each job here, one after another)") in one_error_line(capsys, "sweep")
    assert not out.exists()


def test_max_parallel_is_refused_under_slurm(tmp_path, fake_slurm, capsys):
    grid = grid_file(tmp_path, seeds=[0])
    assert main(["--config", QUICKSTART, "--grid", grid, "--max-parallel", "2"]) == 2
    assert "--max-parallel is for the local launcher" in one_error_line(capsys, "sweep")


def test_resources_agree_with_the_trainer():
    settings = parse_slurm({"timeout_min": 5, "gpus_per_node": 8}, "s.yaml")
    assert settings == SlurmSettings(timeout_min=5, gpus_per_node=8) and settings.tasks_per_node == 8
    for devices in (8, "8", "auto", -1, [0, 1, 2, 3, 4, 5, 6, 7]):
        check_resources(settings, yaml.safe_dump({"trainer": {"devices": devices, "num_nodes": 1}}), "r")
    assert parse_slurm({"timeout_min": 5}, "s.yaml").tasks_per_node == 1  # a CPU job: one task
    check_resources(parse_slurm({"timeout_min": 5}, "s.yaml"), "trainer: {devices: 1}\n", "r")
    with pytest.raises(ValueError, match=r"run r: trainer.devices is 2 but each node runs 1 task\(s\)"):
        check_resources(parse_slurm({"timeout_min": 5}, "s.yaml"), "trainer: {devices: 2}\n", "r")


def test_job_states_ask_sacct_once_and_read_only_the_jobs_lines(fake_slurm):
    """One ``sacct`` call for all jobs; step lines (``ID.batch``) and reasons (``by 123``) are dropped."""
    from thinkspace.sweep.slurm import job_states

    (fake_slurm / "sacct").write_text('#!/bin/sh\necho "$*" >> "$FAKE_SLURM/sacct_calls.txt"\n'
                                      'printf "7|CANCELLED by 12\\n7.batch|COMPLETED\\n8_1|RUNNING\\n"\n')
    assert job_states(["7", "8_1", "9"]) == {"7": "CANCELLED", "8_1": "RUNNING", "9": "UNKNOWN"}
    assert (fake_slurm / "sacct_calls.txt").read_text().splitlines() == [
        "-o JobID,State --parsable2 --noheader -j 7,8_1,9"]


def test_no_private_names_of_lightning_or_submitit():
    """What thinkspace takes from Lightning and submitit is their public API (no ``_name``, no
    submodule submitit does not export)."""
    import ast

    from cli_helpers import REPO

    offenders = []
    for path in sorted((REPO / "thinkspace").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("lightning", "submitit"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private or "._" in (node.module or "") or (node.module or "").startswith("submitit."):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
