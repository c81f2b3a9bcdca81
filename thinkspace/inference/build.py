"""Build a training module from its config, and load a checkpoint into it strictly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from thinkspace.checkpoint_file import read_checkpoint


#: arguments of ``Trainer.fit/validate/test/predict`` that a run's saved ``config.yaml`` holds
#: (``ckpt_path: last``, ...): they belong to that invocation, not to the model, and are ignored here.
RUN_KEYS = ("ckpt_path", "weights_only", "verbose", "return_predictions")


def cli_from_config(files: list[str | Path], overrides: list[str] | None = None) -> Any:
    """Lightning's CLI over a training config, instantiated as ``thinkspace fit`` would (on the
    CPU, one process, no logger) but not run: ``.model`` and ``.datamodule`` are built.

    A run's own ``config.yaml`` is accepted: the keys of the invocation that wrote it
    (:data:`RUN_KEYS`) are read and ignored.

    Raises:
        ValueError: naming the config files and the parser's complaint (a library call never
            exits the process or prints a usage line).
    """
    from jsonargparse import ArgumentError
    from lightning.pytorch import LightningModule

    from thinkspace.cli import ThinkspaceCLI, names_model_class
    from thinkspace.data.datamodule import SpatialDataModule
    from thinkspace.modules.spatial_vlm import SpatialVLM

    class ModelOnlyCLI(ThinkspaceCLI):
        def add_arguments_to_parser(self, parser: Any) -> None:
            super().add_arguments_to_parser(parser)
            for key in RUN_KEYS:
                parser.add_argument(f"--{key}", type=Any, default=None, help="belongs to a run; ignored here")

    args = [a for f in files for a in ("--config", str(f))]
    args += [*(overrides or []), "--trainer.logger", "false", "--trainer.accelerator", "cpu",
             "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.num_nodes", "1"]
    subclass = names_model_class(args)
    argv, sys.argv = sys.argv, sys.argv[:1]  # a library call: the caller's command line is not ours
    try:
        return ModelOnlyCLI(LightningModule if subclass else SpatialVLM, SpatialDataModule,
                            subclass_mode_model=subclass, run=False, save_config_callback=None,
                            parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
                            auto_configure_optimizers=False, args=args)
    except ArgumentError as error:
        names = ", ".join(map(str, files))
        raise ValueError(f"config {names} is not a valid training config: {error}") from None
    finally:
        sys.argv = argv


def module_from_config(files: list[str | Path], overrides: list[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """The LightningModule of a training config (``SpatialVLM``, or the class ``model.class_path``
    names, e.g. ``SpatialGRPO``), built as ``thinkspace fit`` builds it, nothing trained or run.

    Returns:
        the module and its resolved spec ``{"class_path": ..., "init_args": {...}}``.
    """
    cli = cli_from_config(files, overrides)
    spec = cli.config.model.as_dict()
    if "class_path" not in spec:  # SpatialVLM, the default module: its init args only
        cls = type(cli.model)
        spec = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": spec}
    return cli.model, spec


def load_checkpoint(module: torch.nn.Module, ckpt: str | Path, config: str | Path) -> None:
    """Load ``ckpt``'s weights into ``module`` (built from ``config``), every key accounted for.

    Raises:
        FileNotFoundError: no checkpoint at ``ckpt``.
        ValueError: naming both files and the first keys, when the checkpoint's weights and the
            config's model differ (missing or unexpected keys, other shapes).
    """
    path = Path(ckpt).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    state = read_checkpoint(path)
    state = state.get("state_dict", state)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weights of the model are not in the checkpoint (first: {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} checkpoint weights have no place in the model (first: {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shapes differ (checkpoint vs model; first: {shapes[:2]})")
        raise ValueError(f"checkpoint {path} does not match the model of config {config}: " + "; ".join(parts)
                         + ". Was it trained with another config?")
    module.load_state_dict(state)
