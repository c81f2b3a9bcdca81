"""Build a training module from its config, and load a checkpoint into it strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from thinkspace.training.checkpoint_file import check_weights_match, read_checkpoint


def cli_from_config(files: list[str | Path], overrides: list[str] | None = None) -> Any:
    """The training config's objects as ``thinkspace fit`` builds them (on the CPU, one process, no
    logger), nothing run: ``.model`` and ``.datamodule``, read by the one config reader
    (:func:`thinkspace.lightning_cli.build_cli`). A run's own ``config.yaml`` is accepted (the keys
    of the invocation that wrote it, ``ckpt_path`` ..., are ignored).

    Raises:
        ValueError: naming the config files and the parser's complaint.
    """
    from thinkspace.lightning_cli import ConfigError, build_cli

    try:
        return build_cli(None, files, overrides or [], until="built")
    except ConfigError as error:
        names = ", ".join(map(str, files))
        raise ValueError(f"config {names} is not a valid training config: {error}") from None


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
    check_weights_match(state, module.state_dict(), path, str(config))
    state = state.get("state_dict", state)
    module.load_state_dict(state)
