"""A run's own files (``runs/X/config.yaml``, ``runs/X/checkpoints/last.ckpt``) load everywhere."""

import pytest
import torch
import yaml

import thinkspace
from thinkspace.inference.build import module_from_config
from thinkspace.inference.export import MANIFEST, export

from cli_helpers import QUICKSTART


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory as ``thinkspace fit ... --ckpt_path last`` leaves it: the saved config holds the
    keys of that invocation (``ckpt_path``, ``weights_only``) and of the run (``run_dir``, ...)."""
    run = tmp_path_factory.mktemp("runs") / "quick"
    config = yaml.safe_load(QUICKSTART.read_text())
    config.update(run_dir=str(run), checkpoint_every_n_steps=500, ckpt_path="last", weights_only=None)
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    module, _ = module_from_config([QUICKSTART])
    with torch.no_grad():
        next(module.parameters()).add_(0.5)  # not the initial weights
    torch.save({"state_dict": module.state_dict(), "global_step": 3}, run / "checkpoints" / "last.ckpt")
    return run, module


def test_load_takes_a_run_checkpoint_whose_config_holds_ckpt_path(run):
    directory, module = run
    loaded = thinkspace.load(directory / "checkpoints" / "last.ckpt")
    for name, value in module.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[name], value, rtol=0, atol=0)


def test_export_takes_the_run_config(run, tmp_path):
    directory, _ = run
    out = export(directory / "checkpoints" / "last.ckpt", directory / "config.yaml", tmp_path / "model")
    assert (out / MANIFEST).is_file() and (out / "model.safetensors").is_file()


def test_a_bad_config_raises_naming_it_and_never_exits(run, tmp_path, capsys):
    directory, _ = run
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  wieght: 2\n")
    with pytest.raises(ValueError, match=rf"config {bad} is not a valid training config: .*'wieght'"):
        thinkspace.load(directory / "checkpoints" / "last.ckpt", config=bad)
    assert "usage:" not in capsys.readouterr().err
