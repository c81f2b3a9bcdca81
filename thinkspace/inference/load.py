"""``thinkspace.load``: a whole model from an export directory or from a run's checkpoint."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

from thinkspace.backbones.registry import family_of_model_type, model_types
from thinkspace.inference.build import load_checkpoint, module_from_config
from thinkspace.inference.device import inference_device
from thinkspace.inference.export import MANIFEST
from thinkspace.inference.model import SpatialModel


def load(path: str | Path, config: str | Path | list[str | Path] | None = None,
         device: str | torch.device = "cpu") -> SpatialModel:
    """Restore a model for :meth:`SpatialModel.ask`, in eval mode on ``device``.

    The backbone keeps the dtype it was exported in (or, for a ``.ckpt``, the ``dtype`` its config
    loads it in: bfloat16 for the paper configs); the heads keep theirs (float32) and take the
    backbone's hidden states in it (:mod:`thinkspace.heads.precision`).

    Args:
        path: an export directory (``thinkspace export``), a plain Hugging Face model
            directory (loaded as a VLM without heads, with a warning), or a ``.ckpt``.
        config: the training config of a ``.ckpt``, or its stacked configs in order (default:
            ``config.yaml`` of its run directory, two levels above ``checkpoints/last.ckpt``).
        device: ``cpu``, ``cuda``, ``cuda:1``, ... (checked before anything is loaded).

    Raises:
        FileNotFoundError: nothing at ``path``, or a checkpoint whose config cannot be found.
        ValueError: a checkpoint that does not match its config; heads that do not match the manifest;
            a device this machine does not have.
    """
    device = inference_device(device)
    return _load(Path(path).expanduser(), config).to(device)


def _load(path: Path, config: str | Path | list[str | Path] | None) -> SpatialModel:
    if path.is_file():
        return _from_checkpoint(path, config)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model directory or checkpoint")
    if (path / MANIFEST).is_file():
        return _from_export(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: neither {MANIFEST} (thinkspace export) nor config.json (a model directory)")
    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    family = family_of_model_type(model_type)  # plain model directories: the family by model_type
    if family is None:
        raise ValueError(f"{path}: model_type {model_type!r} has no thinkspace backbone; expected one of "
                         f"{model_types()} or a thinkspace export")
    warnings.warn(f"{path} has no {MANIFEST}: loaded as a plain VLM, without latent, layout or situation heads",
                  stacklevel=3)
    spec = {"class_path": "thinkspace.modules.spatial_vlm.SpatialVLM",
            "init_args": {"backbone": {"class_path": family.class_path, "init_args": {"path": str(path)}}}}
    return SpatialModel(_build(spec), source=str(path))


def _from_checkpoint(ckpt: Path, config: str | Path | list[str | Path] | None) -> SpatialModel:
    given = config if isinstance(config, list) else [config] if config is not None else []
    files = [Path(c) for c in given] or [ckpt.parent.parent / "config.yaml"]
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"{ckpt}: no config at {file}; pass config= (the YAML the run was trained with)")
    module, _ = module_from_config(files)
    load_checkpoint(module, ckpt, ", ".join(map(str, files)))
    return SpatialModel(module.eval(), source=str(ckpt))


def _from_export(directory: Path) -> SpatialModel:
    manifest = json.loads((directory / MANIFEST).read_text())
    spec = manifest["model"]
    backbone = spec["init_args"]["backbone"]["init_args"]
    for key, value in list(backbone.items()):  # paths are relative to the export directory
        if key.endswith("path") and isinstance(value, str):
            backbone[key] = str(directory / value)
    module = _build(spec)
    heads_file = directory / manifest.get("heads", "thinkspace_heads.safetensors")
    heads = load_file(str(heads_file)) if heads_file.is_file() else {}
    own = {k for k in module.state_dict() if not k.startswith("backbone.")}
    missing, unexpected = sorted(own - heads.keys()), sorted(heads.keys() - own)
    if missing or unexpected:
        raise ValueError(f"{heads_file} does not match {directory / MANIFEST}: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    module.load_state_dict(heads, strict=False)
    return SpatialModel(module.eval(), source=str(directory))


def _build(spec: dict[str, Any]) -> Any:
    """The module of a ``{class_path, init_args}`` spec, through the same parser as training configs."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "model.yaml"
        file.write_text(yaml.safe_dump({"model": spec}, sort_keys=False))
        module, _ = module_from_config([file])
    return module
