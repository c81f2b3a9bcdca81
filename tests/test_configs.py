"""Configs are code: every YAML under configs/ parses and instantiates.

Real checkpoints are never loaded here: a backbone path that is not ``tiny:`` is
swapped for the tiny model of the same family, and datasets that read files from disk
are parsed but not instantiated.
"""

import importlib
from pathlib import Path

import pytest
import yaml
from lightning.pytorch import LightningModule

from thinkspace.lightning_cli import ThinkspaceCLI
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.modules.spatial_vlm import SpatialVLM

from cli_helpers import REPO

ALL_YAML = sorted((REPO / "configs").rglob("*.yaml"))


def is_sweep(path: Path) -> bool:
    """A sweep file (``thinkspace sweep --grid``): only sweep sections at its top level."""
    from thinkspace.sweep.grid import KNOWN

    raw = yaml.safe_load(path.read_text())
    return isinstance(raw, dict) and bool(raw) and set(raw) <= set(KNOWN)


SWEEPS = [p for p in ALL_YAML if is_sweep(p)]
CONFIGS = [p for p in ALL_YAML if p not in SWEEPS]
TINY_FOR = {"qwen2_vl": "tiny:qwen2_vl", "qwen3_vl": "tiny:qwen3_vl", "llava": "tiny:llava_onevision"}


def tiny_path(path: str) -> str:
    if path.startswith("tiny:"):
        return path
    lowered = path.lower().replace(".", "_").replace("-", "_")
    for family, tiny in TINY_FOR.items():
        if family in lowered:
            return tiny
    return "tiny:qwen2_5_vl"


def test_there_are_configs():
    assert any(p.name == "quickstart.yaml" for p in CONFIGS)


def base_of(config: Path) -> Path | None:
    """A fragment (a preset without ``model.backbone``) names its base on a ``# base: PATH`` line."""
    for line in config.read_text().splitlines():
        if line.startswith("# base:"):
            return REPO / line.split(":", 1)[1].strip()
    return None


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=[str(p.relative_to(p.parents[1])) for p in CONFIGS])
def test_config_parses_and_instantiates(config, tmp_path):
    raw = yaml.safe_load(config.read_text())
    files = [config]
    if "class_path" not in (raw.get("model") or {}) and "backbone" not in (raw.get("model") or {}):
        base = base_of(config)
        assert base is not None and base.exists(), f"{config}: no model.backbone and no '# base: CONFIG' line"
        files, raw = [base, config], merge(yaml.safe_load(base.read_text()), raw)
    if "DeepSpeedStrategy" in str((raw.get("trainer") or {}).get("strategy")):
        pytest.importorskip("deepspeed", reason="the deepspeed extra (CI installs it: .ci/run)")
    selected = "class_path" in (raw.get("model") or {})  # a config that names its LightningModule
    model = raw["model"]["init_args"] if selected else raw["model"]
    init = model["backbone"]["init_args"]
    if "lm_path" in init:  # a new composition (ComposedVLM): swapped whole for the tiny composed model
        swap = ["--model.backbone.init_args.path", "tiny:composed"]
        for key in ("lm_path", "encoder", "encoder_kwargs", "encoder_weights_path", "pool", "projector_depth"):
            swap += [f"--model.backbone.init_args.{key}", "null"]
    else:
        swap = ["--model.backbone.init_args.path", tiny_path(init["path"])]
    cli = ThinkspaceCLI(
        LightningModule if selected else SpatialVLM,
        SpatialDataModule,
        subclass_mode_model=selected,
        run=False,
        save_config_callback=None,
        parser_kwargs={"parser_mode": "omegaconf"},
        auto_configure_optimizers=False,
        args=[
            *[arg for f in files for arg in ("--config", str(f))],
            *swap,
            "--trainer.logger", "false",
            "--trainer.accelerator", "cpu",  # multi-GPU configs build up to where they would need a GPU
            "--trainer.default_root_dir", str(tmp_path),
        ],
    )
    if selected:  # e.g. thinkspace.rl.SpatialGRPO (GRPO): its rewards arrive, resolved to functions
        module, name = raw["model"]["class_path"].rsplit(".", 1)
        assert isinstance(cli.model, getattr(importlib.import_module(module), name))
        assert cli.model.rewards.names == list(model.get("rewards") or cli.model.rewards.names)
        assert cli.model.backbone.hidden_size > 0 and cli.datamodule.batch_size == raw["data"].get("batch_size", 8)
        return
    assert isinstance(cli.model, SpatialVLM)
    assert set(cli.model.objectives) == set(raw["model"].get("objectives") or {"text": None})
    assert cli.model.backbone.hidden_size > 0
    assert cli.datamodule.batch_size == raw["data"].get("batch_size", 8)
    for name, spec in (raw["model"].get("objectives") or {}).items():  # presets' weights arrive
        if isinstance(spec, dict) and "weight" in (spec.get("init_args") or {}):
            assert cli.model.objectives[name].weight == spec["init_args"]["weight"], name


#: sweep files with many runs to resolve (10-12 s each): in the full suite, not the inner loop
MANY_RUNS = {"cues_vs_supervision.yaml", "leftmost_study.yaml"}


@pytest.mark.parametrize("sweep", [pytest.param(p, marks=pytest.mark.slow) if p.name in MANY_RUNS else p
                                   for p in SWEEPS], ids=[str(p.relative_to(p.parents[1])) for p in SWEEPS])
def test_sweep_file_resolves_every_run_against_its_base(sweep):
    """Each run of a sweep file parses against the base named on its ``# base:`` line."""
    from thinkspace.sweep.grid import load_sweep
    from thinkspace.sweep.overrides import run_config

    base = base_of(sweep)
    assert base is not None and base.exists(), f"{sweep}: no '# base: CONFIG' line"
    plan = load_sweep(sweep)
    assert plan.runs
    for spec in plan.runs:
        resolved = yaml.safe_load(run_config("fit", [str(base)], spec.overrides))
        for key, value in spec.overrides.items():
            node = resolved
            for part in key.split("."):
                node = node[part]
            if isinstance(value, dict) and "class_path" in value:
                assert node["class_path"] == value["class_path"], (spec.name, key)
            elif not isinstance(value, dict):
                assert node == value, (spec.name, key)
