"""Every command reads its config through the one reader (``thinkspace.lightning_cli.build_cli``):
two stacked files, a ``${...}`` interpolation in the second, and the signatures' defaults arrive
the same way in each command; bad input is one line naming the file or key, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import REPO, one_error_line
from thinkspace.cli import main
from thinkspace.lightning_cli import ConfigError, build_cli, resolved_yaml
from thinkspace.teachers import OracleGeometryTeacher

TINY = REPO / "configs" / "3dthinker" / "stage1_tiny.yaml"

#: stacked on stage1_tiny.yaml: two latent settings merged into its objective, a teacher of 4 bands
#: (default 6), a 3-sample validation set and, by interpolation, the same set for training
SECOND = """\
model:
  objectives:
    latent:
      init_args:
        k: 3
        teacher:
          class_path: thinkspace.teachers.OracleGeometryTeacher
          init_args: {patch_size: 14, bands: 4}
data:
  val:
    class_path: thinkspace.data.datasets.synthetic.SyntheticSpatial
    init_args: {num_samples: 3, settings: [leftmost], image_size: 112, num_views: [1, 1], num_objects: [2, 2],
                split: val, seed: 5}
  train: ${data.val}
"""

#: the teacher SECOND gives
TEACHER = OracleGeometryTeacher(patch_size=14, bands=4)


@pytest.fixture
def second(tmp_path) -> Path:
    path = tmp_path / "second.yaml"
    path.write_text(SECOND)
    return path


def val_ids(n: int = 3) -> list[str]:
    from thinkspace.data.datasets.synthetic import SyntheticSpatial

    dataset = SyntheticSpatial(num_samples=n, settings=["leftmost"], image_size=112, num_views=(1, 1),
                               num_objects=(2, 2), split="val", seed=5)
    return [dataset[i].id for i in range(n)]


def test_parsing_stacks_the_files_interpolates_and_fills_the_defaults(second):
    resolved = yaml.safe_load(resolved_yaml("fit", [TINY, second]))
    latent = resolved["model"]["objectives"]["latent"]
    assert latent["class_path"] == "thinkspace.objectives.LatentAlignment"  # from the first file
    assert latent["init_args"]["k"] == 3 and latent["init_args"]["weight"] == 0.0005  # second merged into first
    assert latent["init_args"]["teacher"]["init_args"] == {"patch_size": 14, "bands": 4, "extent": 16.0}  # default
    assert resolved["data"]["train"] == resolved["data"]["val"]  # ${data.val}
    assert resolved["data"]["train"]["init_args"]["num_samples"] == 3
    assert resolved["trainer"]["max_steps"] == 500 and resolved["ckpt_path"] is None  # first file; fit's own key


def test_a_missing_file_or_a_misspelt_key_is_a_config_error_naming_it(tmp_path, second):
    with pytest.raises(ConfigError, match=rf"Parser key \"config\": File does not exist: '{tmp_path}/nope.yaml'"):
        build_cli(None, [TINY, tmp_path / "nope.yaml"], until="parsed")
    bad = tmp_path / "bad.yaml"
    bad.write_text(SECOND.replace("k: 3", "kk: 3"))
    with pytest.raises(ConfigError, match="LatentAlignment'?: Option 'kk' is not accepted"):
        build_cli("fit", [TINY, bad], until="parsed")


@pytest.mark.parametrize("command", ["cache-teacher", "points", "export"])
def test_bad_config_input_is_one_line_and_exit_2_in_every_command(command, tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    args = {"cache-teacher": ["--out", str(tmp_path / "cache")],
            "points": ["--ckpt", str(tmp_path / "x.ckpt"), "--sample", "0", "--out", str(tmp_path / "x.ply")],
            "export": ["--ckpt", str(tmp_path / "x.ckpt"), "--out", str(tmp_path / "model")]}[command]
    assert main([command, "--config", str(TINY), "--config", str(missing), *args]) == 2
    line = one_error_line(capsys, command)
    assert f"File does not exist: '{missing}'" in line, line


def test_cache_teacher_takes_teacher_and_data_from_the_stacked_config(tmp_path, second):
    from thinkspace.teachers.cache import FeatureCache

    out = tmp_path / "cache"
    assert main(["cache-teacher", "--config", str(TINY), "--config", str(second), "--out", str(out),
                 "--split", "train"]) == 0
    assert json.loads((out / "signature.json").read_text())["bands"] == 4  # the stacked teacher
    entries = FeatureCache(out, TEACHER.signature()).entries  # ... and not the first file's (6 bands)
    assert sorted(entries) == sorted(val_ids())  # data.train: ${data.val}, 3 samples


def test_cache_teacher_takes_the_default_teacher_from_the_objective(tmp_path):
    """A LatentAlignment without a teacher: the oracle, as the objective itself defaults (not repeated)."""
    config = tmp_path / "no_teacher.yaml"
    raw = yaml.safe_load(TINY.read_text())
    del raw["model"]["objectives"]["latent"]["init_args"]["teacher"]
    raw["data"]["train"]["init_args"]["num_samples"] = 2
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "cache"
    assert main(["cache-teacher", "--config", str(config), "--out", str(out), "--split", "train"]) == 0
    assert json.loads((out / "signature.json").read_text()) == OracleGeometryTeacher().signature()


def stacked_checkpoint(tmp_path: Path, second: Path) -> Path:
    """A checkpoint of the model the two files build (untrained)."""
    cli = build_cli(None, [TINY, second])
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": cli.model.state_dict()}, ckpt)
    return ckpt


def test_points_reads_the_stacked_config(tmp_path, second, monkeypatch):
    from thinkspace.data.datasets.synthetic import SyntheticSpatial
    from thinkspace.objectives import LatentAlignment

    ckpt = stacked_checkpoint(tmp_path, second)
    sample = SyntheticSpatial(num_samples=3, settings=["leftmost"], image_size=112, num_views=(1, 1),
                              num_objects=(2, 2), split="val", seed=5)[2]
    truth = TEACHER.encode(sample)
    # a perfect projector: the cloud is the stacked teacher's decoding of the sample's truth
    monkeypatch.setattr(LatentAlignment, "project", lambda self, *a, **k: [truth.tokens()])
    out = tmp_path / "scene.ply"
    assert main(["points", "--ckpt", str(ckpt), "--config", str(TINY), "--config", str(second),
                 "--split", "train", "--sample", sample.id, "--out", str(out)]) == 0  # train: ${data.val}
    import open3d as o3d

    expected, valid = TEACHER.decode_points(truth, 112, 112)
    cloud = o3d.io.read_point_cloud(str(out))
    assert len(cloud.points) == int(valid.sum()) > 0


def test_export_and_load_read_the_stacked_config(tmp_path, second):
    import thinkspace

    ckpt = stacked_checkpoint(tmp_path, second)
    out = tmp_path / "model"
    assert main(["export", "--ckpt", str(ckpt), "--config", str(TINY), "--config", str(second),
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "thinkspace.json").read_text())
    latent = manifest["model"]["init_args"]["objectives"]["latent"]["init_args"]
    assert latent["k"] == 3 and latent["teacher"]["init_args"]["bands"] == 4
    assert manifest["exported_from"]["config"] == [str(TINY), str(second)]
    for model in (thinkspace.load(ckpt, config=[TINY, second]), thinkspace.load(out)):
        objective = model.objectives["latent"]
        assert objective.slot.k == 3 and objective.teacher.bands == 4


def test_ask_reads_the_stacked_config(tmp_path, second, capsys, monkeypatch):
    """`thinkspace ask --model CKPT --config A --config B`: the model it asks is the stacked one."""
    from PIL import Image

    from thinkspace.inference.model import SpatialModel

    ckpt = stacked_checkpoint(tmp_path, second)
    image = tmp_path / "view.png"
    Image.new("RGB", (112, 112), (200, 30, 30)).save(image)
    asked = []
    original = SpatialModel.ask
    monkeypatch.setattr(SpatialModel, "ask", lambda self, *a, **k: asked.append(self) or original(self, *a, **k))
    assert main(["ask", "--model", str(ckpt), "--config", str(TINY), "--config", str(second), "--images", str(image),
                 "--question", "Which is left? A. red B. blue", "--max-new-tokens", "4"]) == 0
    (model,) = asked
    assert model.objectives["latent"].slot.k == 3 and model.objectives["latent"].teacher.bands == 4
    assert "answer:" in capsys.readouterr().out


QUICK = REPO / "configs" / "quickstart.yaml"


@pytest.mark.slow
def test_fit_validate_test_predict_read_the_stacked_config(tmp_path, capsys):
    """The four Lightning subcommands in this process on quickstart.yaml plus a second file whose
    ``${...}`` values decide the steps trained and the samples tested and predicted."""
    import benchmark_fixtures as fx

    data = fx.mindcube(tmp_path)
    second = tmp_path / "second.yaml"
    second.write_text(f"""\
data:
  batch_size: 2
  num_workers: 0
  test:
    class_path: thinkspace.data.datasets.mindcube.MindCube
    init_args: {{path: {data}, image_root: {tmp_path}, limit: 2}}
  predict: ${{data.test}}
trainer:
  max_steps: ${{data.batch_size}}
  limit_val_batches: ${{data.batch_size}}
  enable_progress_bar: false
  enable_model_summary: false
model:
  generation: {{max_new_tokens: 3, do_sample: false}}
""")
    run = tmp_path / "run"
    args = ["--config", str(QUICK), "--config", str(second), "--run_dir", str(run)]
    assert main(["fit", *args]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 2  # max_steps: ${data.batch_size}
    assert main(["validate", *args, "--ckpt_path", str(ckpt)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())  # what validate ran with
    assert saved["trainer"]["limit_val_batches"] == 2 and saved["model"]["objectives"]["text"]  # both files
    capsys.readouterr()
    assert main(["test", *args, "--ckpt_path", str(ckpt)]) == 0
    tested = [json.loads(line)["id"] for line in (run / "predictions_test_mindcube.jsonl").read_text().splitlines()]
    assert len(tested) == 2  # data.test's limit, from the second file
    assert main(["predict", *args, "--ckpt_path", str(ckpt)]) == 0
    predicted = (run / "predictions_predict_mindcube.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in predicted] == tested  # data.predict: ${data.test}


def test_sweep_checks_and_runs_its_runs_on_the_stacked_base(tmp_path, capsys):
    """``thinkspace sweep --config A --config B``: every run's resolved config is the stack plus the
    run's overrides, and every stage is started with both files."""
    from thinkspace.sweep.grid import load_sweep
    from thinkspace.sweep.runner import stage_argv

    second = tmp_path / "second.yaml"
    second.write_text("data:\n  batch_size: 5\n  eval_batch_size: ${data.batch_size}\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"grid": {"model.optimizer.init_args.lr": [0.1]}}))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(QUICK), "--config", str(second), "--grid", str(grid), "--out", str(out),
                 "--dry-run", "--show-configs"]) == 0
    shown = capsys.readouterr().out
    resolved = yaml.safe_load(shown.split("--- resolved config\n", 1)[1].split("[sweep]", 1)[0])
    assert resolved["data"]["batch_size"] == 5 and resolved["data"]["eval_batch_size"] == 5  # B, ${...}
    assert resolved["model"]["optimizer"]["init_args"]["lr"] == 0.1  # the run's override
    assert resolved["trainer"]["max_steps"] == 300  # A
    plan = load_sweep(grid)
    argv = stage_argv(plan, plan.runs[0], [str(QUICK), str(second)], out / plan.runs[0].name, "fit")
    assert argv[argv.index("fit") + 1:][:4] == ["--config", str(QUICK), "--config", str(second)]
