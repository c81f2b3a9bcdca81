"""Read a ``.ckpt`` file with an error that names it when it is not a checkpoint."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """The dict ``torch.load`` reads from ``path`` (on the CPU).

    ``what`` names the file's role in the message (``checkpoint``, ``model.init_from``).

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
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, pickle.UnpicklingError, IndexError, zipfile.BadZipFile, RuntimeError, ValueError) as error:
        raise ValueError(f"{what} {path} cannot be read as a torch checkpoint ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'truncated or not a checkpoint'}); "
                         "expected a .ckpt written by thinkspace fit") from error
    if not isinstance(state, dict):
        raise ValueError(f"{what} {path} holds a {type(state).__name__}; expected a checkpoint dict")
    return state
