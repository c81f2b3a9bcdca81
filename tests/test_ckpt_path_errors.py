"""A bad ``--ckpt_path`` on ``fit``/``test`` is one line and exit code 2, not a traceback: random bytes,
an empty file, a truncated one (all refused before Lightning's own reading of the file), a missing
one, and a checkpoint of another config (refused before Lightning's strict load, naming the first
missing and unexpected keys and the config the checkpoint came from)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
import yaml
from cli_helpers import FAST, QUICKSTART, command, one_error_line

from thinkspace.lightning_cli import ThinkspaceCLI
from thinkspace.training.checkpoint_file import ORIGIN_KEY


def run(name: str, ckpt, tmp_path, monkeypatch) -> int:
    monkeypatch.chdir(tmp_path)
    return command(name)(["--config", str(QUICKSTART), *FAST, "--trainer.max_steps", "1",
                          "--run_dir", str(tmp_path / "run"), "--ckpt_path", str(ckpt)])


def last_error_line(capsys, name: str) -> str:
    """The one error line at the end of stderr (the model's loading bar may come before it), no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"thinkspace {name}: error: "), err
    return line


def small_checkpoint(path, **extra) -> None:
    torch.save({"state_dict": {"objectives.confidence.head.weight": torch.zeros(2, 3)}, "global_step": 3, **extra},
               path)


@pytest.mark.parametrize(("name", "kind", "expected"), [
    ("fit", "random", "cannot be read as a torch checkpoint (UnpicklingError"),
    ("test", "random", "cannot be read as a torch checkpoint (UnpicklingError"),
    ("fit", "empty", "is an empty file; expected a torch checkpoint"),
    ("fit", "truncated", "is truncated (a zip archive of 300 bytes without its end"),
    ("test", "missing", ": no such file; expected a .ckpt written by thinkspace fit, or one of last, best"),
])
def test_an_unreadable_checkpoint_is_one_line_naming_it(name, kind, expected, tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / f"{kind}.ckpt"
    if kind == "random":
        ckpt.write_bytes(bytes(range(7, 256)) * 8)
    elif kind == "empty":
        ckpt.write_bytes(b"")
    elif kind == "truncated":
        small_checkpoint(ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:300])
    assert run(name, ckpt, tmp_path, monkeypatch) == 2
    line = one_error_line(capsys, name)
    assert f"--ckpt_path {ckpt}" in line and expected in line, line


def test_hyperparameters_the_model_does_not_take_are_one_line_naming_the_checkpoint(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "other_module.ckpt"
    small_checkpoint(ckpt, hyper_parameters={"no_such_arg": 1})
    assert run("fit", ckpt, tmp_path, monkeypatch) == 2
    line = one_error_line(capsys, "fit")
    assert line.endswith(f"error: --ckpt_path {ckpt}: its saved hyperparameters do not fit the model of this config "
                         "(Subcommand 'fit' does not accept option 'model.no_such_arg'); expected a .ckpt written by "
                         "thinkspace fit with this config"), line


def test_a_checkpoint_of_another_config_names_its_keys_and_its_config(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "other.ckpt"
    small_checkpoint(ckpt, **{ORIGIN_KEY: {"config": ["configs/mine.yaml"], "run_dir": "runs/mine"}})
    loads, original = [], torch.load

    def counted(f, *args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return original(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    assert run("fit", ckpt, tmp_path, monkeypatch) == 2
    # read once (the hyperparameters and the weights' check from one read; was 3: ours twice, Lightning's),
    # with the weights-only unpickler the trainer's own reading would use
    assert loads == [True]
    line = last_error_line(capsys, "fit").split(": error: ", 1)[1]
    assert line.startswith(f"checkpoint {ckpt} does not match the model of config {QUICKSTART}: "), line
    assert "weights of the model are not in the checkpoint (first: ['backbone." in line, line
    assert "1 checkpoint weights have no place in the model (first: ['objectives.confidence.head.weight'])" in line
    assert "it came from config configs/mine.yaml (run dir runs/mine)" in line, line


@pytest.mark.slow  # builds the model (the not-slow suite's budget); the mismatch itself is tested above
def test_a_checkpoint_without_its_origin_names_the_config_of_its_run_dir(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "runs" / "old"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": {}}))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    small_checkpoint(ckpt)
    assert run("test", ckpt, tmp_path, monkeypatch) == 2
    line = last_error_line(capsys, "test")
    assert f"it came from the run whose config is {run_dir / 'config.yaml'}. Was it trained" in line, line


def test_a_broken_last_ckpt_behind_ckpt_path_last_is_one_line(tmp_path, monkeypatch, capsys):
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")  # a disk that filled up while the last checkpoint was written
    assert run("fit", "last", tmp_path, monkeypatch) == 2
    line = last_error_line(capsys, "fit")
    assert line.endswith(f"--ckpt_path {last} is an empty file; expected a torch checkpoint (.ckpt)"), line


def mapped(path) -> bool:
    """Whether this process has ``path`` memory-mapped (Linux's /proc/self/maps)."""
    with open("/proc/self/maps") as maps:
        return any(line.rstrip().endswith(str(path)) for line in maps)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc/self/maps")
def test_the_checkpoint_is_let_go_after_the_weights_check(tmp_path):
    # the one read serves the hyperparameters and the weights' check, then is not held while the run trains:
    # a held mapping of a file the run's own saves replace would keep its disk space for the whole run
    model = torch.nn.Linear(2, 3)
    path = tmp_path / "resume.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {}}, path)
    cli = ThinkspaceCLI.__new__(ThinkspaceCLI)  # the two steps alone, without building a run
    cli.config, cli.subcommand, cli.model = {"subcommand": "fit", "fit": {"ckpt_path": str(path)}}, "fit", model
    cli._parse_ckpt_path()
    assert mapped(path)  # read once, memory-mapped, kept for the weights' check
    cli._check_ckpt_weights()
    gc.collect()
    assert not mapped(path)
