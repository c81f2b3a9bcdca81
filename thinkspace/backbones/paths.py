"""Where a backbone's files come from: a directory or a Hub id (``tiny:`` names: :mod:`.registry`)."""

from __future__ import annotations

import json
from pathlib import Path


def resolve_model_path(path: str) -> str:
    """Turn a model directory or Hub id into something ``from_pretrained`` loads.

    An existing directory must hold a ``config.json``. Anything else (``owner/name``) is
    passed through as a Hub id (which needs the Hub or its local cache). ``tiny:<name>``
    references are resolved by :func:`thinkspace.backbones.registry.resolve`, which calls this.

    Raises:
        FileNotFoundError: a directory without ``config.json``, or a path-like
            reference (``./``, ``/``, ``~``) that does not exist.
    """
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"{local}: no config.json; expected a Hugging Face model directory")
        return str(local)
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise FileNotFoundError(f"model path {path!r} does not exist; expected a model directory or a Hub id")
    return path


def read_model_type(path: str) -> str:
    """The ``model_type`` in a model's ``config.json`` (local directory or Hub id)."""
    local = Path(path) / "config.json"
    if local.is_file():
        try:
            return json.loads(local.read_text())["model_type"]
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{local}: expected JSON with a 'model_type' key ({err})") from err
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type
