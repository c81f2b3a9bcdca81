"""One live run per run directory (``run.lock``): a second run is refused in one line naming the
holder (exit 2), a stale lock (its process gone) is taken over with a notice, only global rank 0
locks, the lock goes when the run ends (also on an error), and the sweep leaves a locked run alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml
from cli_helpers import FAST, QUICKSTART, command, one_error_line
from sweep_helpers import FAKE, calls

from thinkspace.sweep.grid import load_sweep
from thinkspace.training.run_lock import (
    LOCK_NAME,
    Holder,
    RunDirLocked,
    RunLock,
    is_rank_zero_process,
    process_start,
)

fit = command("fit")
ARGS = ["--config", str(QUICKSTART), *FAST, "--trainer.max_steps", "1"]


@pytest.fixture()
def sleeper():
    """A live process of this host that is not this test: the holder of a lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold(run_dir, pid: int, host: str | None = None, proc_start: int | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    holder = Holder(pid=pid, host=host or socket.gethostname(), started="2026-12-07 10:00:00", proc_start=proc_start)
    (run_dir / LOCK_NAME).write_text(json.dumps(holder.__dict__))


@pytest.mark.parametrize(("env", "zero"), [
    ({}, True), ({"RANK": "0", "LOCAL_RANK": "0", "NODE_RANK": "0"}, True), ({"LOCAL_RANK": "1"}, False),
    ({"RANK": "3"}, False), ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False), ({"SLURM_PROCID": "2"}, False),
])
def test_only_global_rank_zero_locks(env, zero):
    assert is_rank_zero_process(env) is zero


def test_the_lock_names_this_process_and_goes_on_release(tmp_path):
    lock = RunLock(tmp_path / "run").acquire()
    data = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    assert (data["pid"], data["host"], data["proc_start"]) == (os.getpid(), socket.gethostname(),
                                                               process_start(os.getpid()))
    assert time.strptime(data["started"], "%Y-%m-%d %H:%M:%S")
    lock.release()
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_live_holder_is_refused_and_its_lock_kept(tmp_path, sleeper):
    hold(tmp_path / "run", sleeper.pid, proc_start=process_start(sleeper.pid))
    with pytest.raises(RunDirLocked, match=rf"run dir {tmp_path / 'run'} is in use by a live run \(pid {sleeper.pid} "
                                           rf"on host {socket.gethostname()}, started 2026-12-07 10:00:00; lock "):
        RunLock(tmp_path / "run").acquire()
    assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == sleeper.pid


def test_a_lock_of_another_host_is_honoured_unless_it_is_this_slurm_job_requeued(tmp_path, monkeypatch):
    hold(tmp_path / "run", dead_pid(), host="elsewhere")
    with pytest.raises(RunDirLocked, match=r"on host elsewhere.*if it no longer runs, delete .*run.lock\)$"):
        RunLock(tmp_path / "run").acquire()
    data = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    (tmp_path / "run" / LOCK_NAME).write_text(json.dumps({**data, "job": "4242"}))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # the job was requeued onto this node
    said = []
    RunLock(tmp_path / "run").acquire(said.append).release()
    assert len(said) == 1 and "taking over the lock of a run that no longer runs" in said[0]


@pytest.mark.parametrize("why", ["dead pid", "pid reused"])
def test_a_stale_lock_is_taken_over_with_a_notice(tmp_path, sleeper, why):
    if why == "dead pid":
        pid, start = dead_pid(), None
    else:  # a live process now has the pid, but started at another tick than the lock's holder
        pid, start = sleeper.pid, process_start(sleeper.pid) - 1
    hold(tmp_path / "run", pid, proc_start=start)
    said = []
    RunLock(tmp_path / "run").acquire(said.append).release()
    assert said == [(f"thinkspace: run dir {tmp_path / 'run'}: taking over the lock of a run that no longer runs "
                     f"(pid {pid} on host {socket.gethostname()}, started 2026-12-07 10:00:00)")]


def test_a_second_fit_into_a_locked_run_dir_is_one_line_and_exit_2(tmp_path, sleeper, capsys):
    run_dir = tmp_path / "run"
    hold(run_dir, sleeper.pid)
    assert fit([*ARGS, "--run_dir", str(run_dir)]) == 2
    line = one_error_line(capsys, "fit")
    assert f"run dir {run_dir} is in use by a live run (pid {sleeper.pid} on host {socket.gethostname()}" in line
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # nothing of the second run written


@pytest.mark.slow
def test_the_lock_is_released_when_the_run_fails(tmp_path, capsys):
    run_dir = tmp_path / "run"
    hold(run_dir, dead_pid())  # taken over (a notice), then the model refuses its settings
    assert fit([*ARGS, "--run_dir", str(run_dir), "--model.freeze", '["no_such_parameter"]']) == 2
    err = capsys.readouterr().err
    assert "taking over the lock of a run that no longer runs" in err
    assert "model.freeze: pattern(s) ['no_such_parameter'] match no parameter name" in err
    assert not (run_dir / LOCK_NAME).exists()


def test_other_ranks_do_not_refuse(tmp_path, sleeper, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    hold(run_dir, sleeper.pid)  # rank 0 of the same run holds it
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert fit([*ARGS, "--run_dir", str(run_dir), "--model.freeze", '["no_such_parameter"]']) == 2
    err = capsys.readouterr().err
    assert "in use by a live run" not in err and "match no parameter name" in err  # went on to build the model
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == sleeper.pid


def test_the_sweep_reports_a_locked_run_and_writes_nothing_in_it(tmp_path, sleeper, capsys):
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"command": [sys.executable, str(script)],
                                    "grid": {"model.optimizer.init_args.lr": [0.1, 0.2]}}))
    out = tmp_path / "out"
    free, locked = (spec.name for spec in load_sweep(grid).runs)
    hold(out / locked, sleeper.pid)
    assert command("sweep")(["--config", str(QUICKSTART), "--grid", str(grid), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"[sweep] {locked}: run dir {out / locked} is in use by a live run (pid {sleeper.pid}" in printed
    assert "1 run(s) executed" in printed and "1 skipped (run dir in use by a live run)" in printed
    assert [c["run"] for c in calls(out)] == [free]
    assert sorted(p.name for p in (out / locked).iterdir()) == [LOCK_NAME]


@pytest.mark.slow
def test_two_real_fits_into_one_run_dir(tmp_path, capsys):
    """A real ``thinkspace fit`` running; a second into its run dir is refused; the first's lock goes when it ends."""
    run_dir = tmp_path / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    first = subprocess.Popen([sys.executable, "-m", "thinkspace.cli", "fit", *ARGS, "--trainer.max_steps", "30",
                              "--run_dir", str(run_dir)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / LOCK_NAME).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fit([*ARGS, "--run_dir", str(run_dir)]) == 2
        assert f"(pid {first.pid} on host" in one_error_line(capsys, "fit")
    finally:
        assert first.wait(timeout=600) == 0
    assert not (run_dir / LOCK_NAME).exists() and (run_dir / "checkpoints" / "last.ckpt").exists()
