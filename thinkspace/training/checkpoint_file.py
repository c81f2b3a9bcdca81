"""Read a ``.ckpt`` file with an error that names it when it is not a checkpoint."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def read_checkpoint(path: str | Path, what: str = "checkpoint", mmap: bool = False,
                    weights_only: bool = False) -> dict[str, Any]:
    """The dict ``torch.load`` reads from ``path`` (on the CPU).

    ``what`` names the file's role in the message (``checkpoint``, ``model.init_from``). ``mmap``:
    tensors stay memory-mapped from the file, so those never touched (a stage-1 checkpoint's
    optimizer states, twice the weights' size) are never read into memory. ``weights_only``: torch's
    restricted unpickler, as Lightning's trainer reads a ``--ckpt_path`` (a file it would refuse is
    refused here, first, naming it).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: naming ``path``, when the file is empty, truncated or not a torch checkpoint
            (torch raises ``EOFError``, ``UnpicklingError``, ``IndexError``... for these).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} {path} is an empty file; expected a torch checkpoint (.ckpt)")
    with path.open("rb") as handle:
        zip_start = handle.read(4) == b"PK\x03\x04"
    if zip_start and not zipfile.is_zipfile(path):
        raise ValueError(f"{what} {path} is truncated (a zip archive of {path.stat().st_size} bytes without its end: "
                         "copied or written partially?); expected a whole .ckpt written by thinkspace fit")
    try:
        # only a whole zip archive can be memory-mapped; anything else is read plainly, for torch's own reason
        state = torch.load(path, map_location="cpu", weights_only=weights_only, mmap=mmap and zipfile.is_zipfile(path))
    except (EOFError, pickle.UnpicklingError, IndexError, zipfile.BadZipFile, RuntimeError, ValueError,
            OSError) as error:
        raise ValueError(f"{what} {path} cannot be read as a torch checkpoint ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'truncated or not a checkpoint'}); "
                         "expected a .ckpt written by thinkspace fit") from error
    if not isinstance(state, dict):
        raise ValueError(f"{what} {path} holds a {type(state).__name__}; expected a checkpoint dict")
    return state


#: the checkpoint entry that records where a checkpoint came from (:func:`origin`): the config files
#: of the run that wrote it and its run directory
ORIGIN_KEY = "thinkspace_origin"


def origin(state: dict[str, Any], path: str | Path) -> str | None:
    """Where a checkpoint came from, for an error message: the config files recorded in it (every
    checkpoint ``thinkspace fit`` writes holds them under :data:`ORIGIN_KEY`), else the ``config.yaml``
    of the run directory it sits in (``RUN/checkpoints/last.ckpt`` -> ``RUN/config.yaml``), else ``None``."""
    recorded = state.get(ORIGIN_KEY)
    if isinstance(recorded, dict) and recorded.get("config"):
        run = f" (run dir {recorded['run_dir']})" if recorded.get("run_dir") else ""
        return f"config {', '.join(map(str, recorded['config']))}{run}"
    beside = Path(path).expanduser().resolve().parent.parent / "config.yaml"
    return f"the run whose config is {beside}" if beside.is_file() else None


def weights_mismatch(state: dict[str, Any], own: dict[str, Any]) -> list[str]:
    """How a checkpoint's ``state_dict`` (``state``) differs from a model's (``own``), as phrases naming
    the first few keys: weights missing from the checkpoint, weights with no place in the model, other
    shapes. Empty when every key and shape matches."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} weights of the model are not in the checkpoint (first: {missing[:3]})")
    if unexpected:
        parts.append(f"{len(unexpected)} checkpoint weights have no place in the model (first: {unexpected[:3]})")
    if shapes:
        parts.append(f"{len(shapes)} shapes differ (checkpoint vs model; first: {shapes[:2]})")
    return parts


def check_weights_match(state: dict[str, Any], own: dict[str, Any], path: str | Path, config: str) -> None:
    """Refuse a checkpoint whose weights are not the model's (trained with another config).

    Args:
        state: the checkpoint dict (its ``state_dict``, or the weights themselves).
        own: the model's ``state_dict()``.
        path: the checkpoint file (named in the message, and where its run's config is looked for).
        config: the config files of the model, as the message names them.

    Raises:
        ValueError: naming both configs and the first missing and unexpected keys.
    """
    parts = weights_mismatch(state.get("state_dict", state), own)
    if parts:
        came = origin(state, path)
        raise ValueError(f"checkpoint {Path(path).expanduser()} does not match the model of config {config}: "
                         + "; ".join(parts) + (f"; it came from {came}" if came else "")
                         + ". Was it trained with another config?")


class RecordOrigin(Callback):
    """Writes the run's config files and run directory into every checkpoint it saves (under
    :data:`ORIGIN_KEY`), so a checkpoint handed to another config says where it came from."""

    def __init__(self, config: list[str], run_dir: str) -> None:
        self.config, self.run_dir = config, run_dir

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[ORIGIN_KEY] = {"config": self.config, "run_dir": self.run_dir}
